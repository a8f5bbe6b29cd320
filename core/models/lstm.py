"""A character-level LSTM language model in NumPy: stacked fused-gate layers and a linear readout.

For layer l at step t, with input x_t (a one-hot character for layer 0, the layer below's
output otherwise) and state (h_{t-1}, c_{t-1}):

    z_t = x_t Wx + h_{t-1} Wh + b        all four gates at once, in GATES order   (B, 4H)
    i_t = sigmoid(z_t[i])                input gate: how much of the candidate to write
    f_t = sigmoid(z_t[f])                forget gate: how much of the old cell to keep
    o_t = sigmoid(z_t[o])                output gate: how much of the cell to show
    g_t = tanh(z_t[g])                   candidate cell values
    c_t = f_t * c_{t-1} + i_t * g_t      cell state
    h_t = o_t * tanh(c_t)                hidden state, the layer's output

    logits_t = h^L_t Wy + by             readout of the top layer                  (B, V)

Layer 0's x_t Wx is the row lookup Wx[id]. Parameters are a dict of arrays named
Wx{l} (V or H, 4H), Wh{l} (H, 4H), b{l} (4H,), Wy (H, V), by (V,); gradients use the same names.
Its export is an nn.LSTM (PyTorch's gate order i, f, g, o) and an nn.Linear (core/models/recurrent.py).

Speed notes. Arrays are time-major (T, B, ...). Only the recurrence h_{t-1} Wh runs per
step: input projections are one large product before the time loop, and weight gradients one
large product after it. The three sigmoids and the tanh are evaluated by a single tanh call,
using sigmoid(z) = (1 + tanh(z / 2)) / 2: the i, f, o columns of the weights are pre-scaled by
1/2 (`gate_scale`) so one tanh of the whole (B, 4H) block gives all four gates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .base import ModelConfig, Params, Resets, State
from .recurrent import (
    CHUNK_FLOATS,
    RecurrentModel,
    StreamBuffers,
    accumulate_blank,
    repeat_state,
    sigmoid,
)

# The order of the four gate blocks inside every fused (., 4H) matrix.
GATES = ("i", "f", "o", "g")


def gate_scale(hidden: int, dtype: np.dtype | str) -> NDArray:
    """(4H,) column scale: 1/2 on the sigmoid gates (i, f, o), 1 on the tanh candidate (g)."""
    s = np.full(4 * hidden, 0.5, dtype=dtype)
    s[3 * hidden :] = 1.0
    return s


def _gate_derivatives(A: NDArray, Cprev: NDArray, TC: NDArray, M: NDArray, oD: NDArray, H: int) -> None:
    """The local derivatives the backward loop chains, for k steps at once, with no temporaries.

    A (k, B, 4H) activations i, f, o, g; Cprev (k, B, H) c_{t-1}; TC (k, B, H) tanh(c_t).
    Writes M (k, B, 4H), per gate block: dz_i/dc = g i(1-i), dz_f/dc = c_{t-1} f(1-f),
    dz_o/dh = tanh(c) o(1-o), dz_g/dc = i (1-g^2); and oD (k, B, H) = dh/dc = o (1 - tanh(c)^2).
    """
    np.multiply(A, A, out=M)  # a^2 for every gate
    np.subtract(A[..., : 3 * H], M[..., : 3 * H], out=M[..., : 3 * H])  # sigmoid' = s - s^2 (i, f, o)
    np.subtract(1.0, M[..., 3 * H :], out=M[..., 3 * H :])  # tanh' = 1 - g^2
    M[..., :H] *= A[..., 3 * H :]  # * g
    M[..., H : 2 * H] *= Cprev  # * c_{t-1}
    M[..., 2 * H : 3 * H] *= TC  # * tanh(c_t)
    M[..., 3 * H :] *= A[..., :H]  # * i
    np.multiply(TC, TC, out=oD)
    np.subtract(1.0, oD, out=oD)
    oD *= A[..., 2 * H : 3 * H]  # o (1 - tanh(c)^2)


def _recurrence(
    A: NDArray,
    Hs: NDArray,
    C: NDArray,
    TC: NDArray,
    Wh_s: NDArray,
    resets: Resets | None,
    t0: int = 0,
    t1: int | None = None,
    blank: tuple[NDArray, ...] | None = None,
) -> None:
    """The time loop of one layer, in place: the only part that must run step by step.

    A (T, B, 4H) holds x_t Wx + b (gate-scaled) and becomes the activations i, f, o, g;
    Hs, C (T+1, B, H) hold the initial state at [0] and receive h_t, c_t at [t+1];
    TC (T, B, H) receives tanh(c_t). Wh_s (H, 4H) is the gate-scaled recurrent weight.
    Steps t0 to t1 - 1 (default: all), Hs[t0], C[t0] holding the state they start from.
    Reset streams start from `blank` (h0, c0), each (H,), or from zeros when it is None.
    """
    T, B, H = TC.shape
    ig = np.empty((B, H), A.dtype)  # (B, H) scratch for i * g
    hz = np.empty((B, 4 * H), A.dtype)  # (B, 4H) scratch for h_{t-1} Wh
    # Per-step cost at small B is NumPy call overhead, so: ufuncs as locals (no attribute
    # lookups in the loop) and explicit out= calls rather than in-place operators.
    dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
    Gi, Gf, Go, Gg = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]  # (T, B, H) gate views
    S = A[..., : 3 * H]  # (T, B, 3H) the sigmoid gates
    for t in range(t0, T if t1 is None else t1):
        h_prev = Hs[t]
        if resets and t in resets:  # these streams start afresh at step t
            h_prev = h_prev.copy()
            h_prev[resets[t]] = 0.0 if blank is None else blank[0]
            C[t, resets[t]] = 0.0 if blank is None else blank[1]
        a = A[t]  # (B, 4H) preactivations, then activations in place
        dot(h_prev, Wh_s, out=hz)
        add(a, hz, out=a)
        tanh(a, out=a)
        sig = S[t]  # (B, 3H) tanh(z/2) -> sigmoid(z) = (1 + tanh(z/2)) / 2
        mul(sig, 0.5, out=sig)
        add(sig, 0.5, out=sig)
        c = C[t + 1]
        mul(Gf[t], C[t], out=c)  # f * c_{t-1}
        mul(Gi[t], Gg[t], out=ig)  # i * g
        add(c, ig, out=c)
        tc = TC[t]
        tanh(c, out=tc)
        mul(Go[t], tc, out=Hs[t + 1])  # o * tanh(c)


class LayerCache:
    """One layer's window: what its backward pass needs from its forward pass, and what the
    backward pass carries from one span of steps to the next."""

    __slots__ = (
        "layer", "x", "A", "Hs", "Hprev", "C", "TC", "mask", "Y", "Wx_s", "b_s", "Wh_s", "blank",
        "WhT", "K", "M", "oD", "dh", "dc", "dh_next", "dc_next", "dblank",
    )  # fmt: skip

    def __init__(self) -> None:
        self.layer: int
        self.x: NDArray  # (T, B) ids for layer 0, else (T, B, H) the layer below's output
        self.A: NDArray  # (T, B, 4H) gate activations i, f, o in (0, 1) and g in (-1, 1)
        self.Hs: NDArray  # (T+1, B, H) hidden states, Hs[0] the initial one
        self.Hprev: NDArray  # (T, B, H) h_{t-1} as the step saw it (resets zeroed)
        self.C: NDArray  # (T+1, B, H) cell states, C[t] as step t saw it
        self.TC: NDArray  # (T, B, H) tanh(c_t)
        self.mask: NDArray | None  # (T, B, H) scaled dropout mask on the output, or None
        self.Y: NDArray  # (T, B, H) the layer's output after dropout
        self.Wx_s: NDArray  # (V or H, 4H) gate-scaled input weight (layer 0: the lookup table)
        self.b_s: NDArray  # (4H,) gate-scaled bias
        self.Wh_s: NDArray  # (H, 4H) gate-scaled recurrent weight
        self.blank: tuple[NDArray, ...] | None  # (H,) h0, c0 that reset streams start from (None: zeros)
        # backward
        self.WhT: NDArray  # (4H, H)
        self.K: int  # steps whose gate derivatives are computed at once
        self.M: NDArray  # (K, B, 4H) d z / d (dc or dh), per gate block
        self.oD: NDArray  # (K, B, H) d h / d c = o (1 - tanh(c)^2)
        self.dh: NDArray  # (B, H)
        self.dc: NDArray  # (B, H)
        self.dh_next: NDArray  # (B, H) d loss / d h_{t-1}, carried to the step before
        self.dc_next: NDArray  # (B, H) d loss / d c_{t-1}
        self.dblank: tuple[NDArray, ...] | None  # (H,) d loss / d h0, c0, summed over reset streams


class CharLSTM(RecurrentModel):
    """The LSTM model: a config and a dict of parameters, with forward/backward over a window."""

    name = "lstm"
    title = "LSTM"
    summary = "long short-term memory, PyTorch nn.LSTM's equations"
    gates = GATES
    torch_gates = ("i", "f", "g", "o")  # nn.LSTM's order
    torch_module = "lstm"
    torch_class = "nn.LSTM"
    state_names = ("h", "c")
    inside_quantities = ("input", "forget", "output", "candidate", "cell", "hidden")
    inside_default = "cell"  # the cell carries the LSTM's memory
    gate_quantities = ("input", "forget", "output")

    @classmethod
    def init_params(cls, config: ModelConfig, rng: np.random.Generator) -> Params:
        """As every recurrent cell starts, with the forget gate's bias at 1: remember by default."""
        params = super().init_params(config, rng)
        H = config.hidden
        for layer in range(config.layers):
            params[f"b{layer}"][H : 2 * H] = 1.0
        return params

    # ----------------------------------------------- one layer's forward and backward
    # (RecurrentModel.forward and .backward run these for every layer; Wavefront a span at a time)
    def _input_scale(self) -> NDArray:
        return gate_scale(self.config.hidden, self.config.dtype)  # (one tanh gives all four gates)

    def _open_layer(self, layer: int, T: int, B: int, state: tuple[NDArray, ...]) -> LayerCache:
        pool, H, dt = self._pool, self.config.hidden, self.config.dtype
        lc = LayerCache()
        lc.A = pool.take((T, B, 4 * H), dt)  # (T, B, 4H) preactivations, then activations
        lc.Hs = pool.take((T + 1, B, H), dt)  # (T+1, B, H) hidden states, Hs[0] the initial one
        lc.C = pool.take((T + 1, B, H), dt)  # (T+1, B, H) cell states
        lc.TC = pool.take((T, B, H), dt)  # (T, B, H) tanh(c_t)
        lc.Hs[0], lc.C[0] = state
        lc.Wh_s = self.params[f"Wh{layer}"] * gate_scale(H, dt)  # (scaled Wh: one tanh gives all gates)
        return lc

    def _run_steps(self, lc: LayerCache, t0: int, t1: int, resets: Resets | None) -> None:
        _recurrence(lc.A, lc.Hs, lc.C, lc.TC, lc.Wh_s, resets, t0, t1, lc.blank)

    def _final_state(self, lc: LayerCache) -> tuple[NDArray, ...]:
        T = lc.TC.shape[0]
        return (lc.Hs[T].copy(), lc.C[T].copy())

    def _open_backward(self, lc: LayerCache, B: int) -> None:
        T, _, H = lc.TC.shape
        dt = lc.A.dtype
        # The gate derivatives are computed a chunk of K steps at a time, just before the loop
        # uses them, into one small reused buffer that stays in cache (instead of a whole-window
        # (T, B, 4H) array that is written once and read back from memory).
        lc.K = K = max(1, min(T, CHUNK_FLOATS // (B * 4 * H)))
        lc.M = self._pool.take((K, B, 4 * H), dt)  # (K, B, 4H) d z / d (dc or dh), per gate block
        lc.oD = self._pool.take((K, B, H), dt)  # (K, B, H) d h / d c = o (1 - tanh(c)^2)
        lc.WhT = np.ascontiguousarray(self.params[f"Wh{lc.layer}"].T)  # (4H, H)
        lc.dh = np.empty((B, H), dt)  # (B, H)
        lc.dc = np.empty((B, H), dt)  # (B, H)
        lc.dh_next = np.zeros((B, H), dt)  # (B, H) from step t+1
        lc.dc_next = np.zeros((B, H), dt)  # (B, H)

    def _back_steps(
        self, lc: LayerCache, dHout: NDArray, t0: int, t1: int, resets: Resets | None, grads: Params
    ) -> None:
        """Per step, with dh = d loss / d h_t (from above and from step t+1):
            dc = dh o (1 - tanh(c)^2) + dc_{t+1} f_{t+1}     d loss / d c_t
            dz_i, dz_f, dz_g = dc M_i, dc M_f, dc M_g         dz_o = dh M_o   (M: _gate_derivatives)
            dh_{t-1} = dz Wh^T,  dc_{t-1} = dc f_t
        d loss / d z is written over the gate activations, which it no longer needs. For a stream
        reset at step t, dh_{t-1} and dc_{t-1} go to the learned h0, c0 (or nowhere)."""
        A, C, TC, K, H = lc.A, lc.C, lc.TC, lc.K, lc.TC.shape[2]
        B = A.shape[1]
        M, oD, WhT, dh, dc, dh_next, dc_next = lc.M, lc.oD, lc.WhT, lc.dh, lc.dc, lc.dh_next, lc.dc_next
        dot, add, mul = np.dot, np.add, np.multiply  # locals: see _recurrence
        F, Dzo = A[..., H : 2 * H], A[..., 2 * H : 3 * H]  # (T, B, H) f_t, then dz_o
        M4, Mo = M.reshape(K, B, 4, H), M[..., 2 * H : 3 * H]  # (K, B, 4, H), (K, B, H)
        for s1 in range(t1, t0, -K):
            s0 = max(t0, s1 - K)
            k = s1 - s0
            _gate_derivatives(A[s0:s1], C[s0:s1], TC[s0:s1], M[:k], oD[:k], H)
            for t in range(s1 - 1, s0 - 1, -1):
                j = t - s0
                add(dHout[t], dh_next, out=dh)
                mul(dh, oD[j], out=dc)
                add(dc, dc_next, out=dc)  # d loss / d c_t
                mul(dc, F[t], out=dc_next)  # through f_t (read before A[t] is reused)
                dz = A[t]  # (B, 4H) d loss / d z_t, written over the activations it no longer needs
                mul(M4[j], dc[:, None, :], out=dz.reshape(B, 4, H))  # i, f, g blocks use dc
                mul(Mo[j], dh, out=Dzo[t])  # o uses dh
                dot(dz, WhT, out=dh_next)
                if resets and t in resets:  # these streams saw h0, c0, not h_{t-1}, c_{t-1}
                    dblank = lc.dblank or (None, None)
                    accumulate_blank(dblank[0], dh_next, resets[t])
                    accumulate_blank(dblank[1], dc_next, resets[t])

    def _close_backward(self, lc: LayerCache, grads: Params) -> tuple[NDArray, ...]:
        T, B, H = lc.TC.shape
        dZ = lc.A.reshape(T * B, 4 * H)  # (T*B, 4H) d loss / d z for the whole window
        grads[f"Wh{lc.layer}"] = lc.Hprev.reshape(T * B, H).T @ dZ  # (H, 4H)
        self._pool.give(lc.M, lc.oD)
        return (lc.dh_next, lc.dc_next)

    def _release(self, lc: LayerCache) -> None:
        self._pool.give(lc.A, lc.Hs, lc.C, lc.TC)

    # ---------------------------------------------------------------- inference
    def stepper(self) -> Stepper:
        """One-step inference on a frozen copy of the current weights."""
        return Stepper(self)

    def activations(self, ids: NDArray) -> dict[str, NDArray]:
        """i, f, o, g, c and h of every layer for each character of `ids` (n,), read from a blank
        state by a plain step-by-step pass in float64 that reads like the equations above."""
        cfg = self.config
        P = {k: v.astype(np.float64) for k, v in self.params.items()}  # a private copy
        H, L, n = cfg.hidden, cfg.layers, len(ids)
        out = {q: np.zeros((L, n, H)) for q in self.inside_quantities}
        h = [np.asarray(s[0][0], np.float64) for s in self.initial_state(1)]  # (H,) per layer
        c = [np.asarray(s[1][0], np.float64) for s in self.initial_state(1)]  # (H,) cell per layer
        for t, ch in enumerate(np.asarray(ids, dtype=np.int64)):
            x = P["Wx0"][ch]  # (4H,) layer 0: the one-hot input times Wx0 is a row of it
            for layer in range(L):
                xz = x if layer == 0 else x @ P[f"Wx{layer}"]  # (4H,) the input's contribution
                z = xz + h[layer] @ P[f"Wh{layer}"] + P[f"b{layer}"]  # (4H,) all gates, in GATES order
                i = sigmoid(z[:H])
                f = sigmoid(z[H : 2 * H])
                o = sigmoid(z[2 * H : 3 * H])
                g = np.tanh(z[3 * H :])
                c[layer] = f * c[layer] + i * g
                h[layer] = o * np.tanh(c[layer])
                for q, v in zip(self.inside_quantities, (i, f, o, g, c[layer], h[layer]), strict=True):
                    out[q][layer, t] = v
                x = h[layer]
        return out


class Stepper:
    """One character at a time, for generation: step(ids, state) -> (logits, state).

    Holds its own pre-scaled copy of the weights, so training may go on changing the model. The
    copy is arranged so that each layer's pre-activation is as few products as possible:

        layer 0:      z = table0[id] + h_{t-1} Wh0        table0 = Wx0 + b0 (row id of x_t Wx0 + b0)
        layers >= 1:  z = [x_t, h_{t-1}, 1] S             S = [[Wx]; [Wh]; [b]]   (2H+1, 4H)
        readout:      logits = [h, 1] R                   R = [[Wy]; [by]]        (H+1, V)

    (all gate columns pre-scaled by GATE_SCALE, as in training). `step` works on a batch of
    streams and returns new arrays; `stream` keeps one stream's state in reused buffers, which is
    what streaming generation wants.
    """

    def __init__(self, model: CharLSTM):
        cfg = model.config
        H = cfg.hidden
        scale = gate_scale(H, cfg.dtype)
        P = model.params
        self.config = cfg
        self._table0 = np.add(P["Wx0"], P["b0"])  # (V, 4H)
        self._table0 *= scale  # (scale is 1/2 or 1: exact, so this equals Wx0 s + b0 s)
        self._Wh0 = P["Wh0"] * scale  # (H, 4H)
        self._stacked = []  # (2H+1, 4H) per layer above the first, scaled as it is filled
        for layer in range(1, cfg.layers):
            S = np.empty((2 * H + 1, 4 * H), cfg.dtype)
            np.multiply(P[f"Wx{layer}"], scale, out=S[:H])
            np.multiply(P[f"Wh{layer}"], scale, out=S[H : 2 * H])
            np.multiply(P[f"b{layer}"], scale, out=S[2 * H])
            self._stacked.append(S)
        self._readout = np.empty((H + 1, cfg.vocab_size), cfg.dtype)  # (H+1, V)
        self._readout[:H], self._readout[H] = P["Wy"], P["by"]
        self._blank = model.initial_state(1)  # (a copy: the state a blank start reads from)

    def initial_state(self, batch: int = 1) -> State:
        return repeat_state(self._blank, batch)

    def _weights(self, layer: int) -> tuple[NDArray | None, NDArray, NDArray | None]:
        """Layer `layer`'s (Wx, Wh, b), gate-scaled: views into the stacked copy (Wx and b are
        None for layer 0, whose input projection and bias are the rows of table0)."""
        if layer == 0:
            return None, self._Wh0, None
        H, S = self.config.hidden, self._stacked[layer - 1]
        return S[:H], S[H : 2 * H], S[2 * H]

    def step(self, ids: NDArray, state: State) -> tuple[NDArray, State]:
        """Logits (B, V) for the next character after `ids` (B,), and the new state."""
        H = self.config.hidden
        new_state = []
        x: NDArray | None = None
        for layer in range(self.config.layers):
            h, c = state[layer]
            Wx_s, Wh_s, b_s = self._weights(layer)
            if layer == 0:
                a = self._table0[ids] + h @ Wh_s  # (B, 4H)
            else:
                assert x is not None and Wx_s is not None
                a = x @ Wx_s + h @ Wh_s
                a += b_s
            np.tanh(a, out=a)
            a[:, : 3 * H] *= 0.5
            a[:, : 3 * H] += 0.5
            c = a[:, H : 2 * H] * c + a[:, :H] * a[:, 3 * H :]  # (B, H)
            h = a[:, 2 * H : 3 * H] * np.tanh(c)  # (B, H)
            new_state.append((h, c))
            x = h
        assert x is not None
        R = self._readout
        return x @ R[:H] + R[H], tuple(new_state)

    def prime(self, ids: NDArray, state: State | None = None) -> tuple[NDArray | None, State]:
        """Feed the characters `ids` (n,) one after another; the logits after the last one (or None
        when `ids` is empty) and the state.

        The seed is read as one (n, 1) window, as `forward` reads one, rather than by n calls of
        `step`: each layer's input projection is one product and only the recurrence runs per
        character, with a third fewer NumPy calls.
        """
        if state is None:
            state = self.initial_state(1)
        ids = np.asarray(ids).reshape(-1, 1)  # (n, 1)
        n = len(ids)
        if n == 0:
            return None, state
        H, dt = self.config.hidden, self.config.dtype
        below: NDArray | None = None  # (n, 1, H)
        new_state = []
        for layer in range(self.config.layers):
            Wx_s, Wh_s, b_s = self._weights(layer)
            if layer == 0:
                A = self._table0[ids]  # (n, 1, 4H)
            else:
                assert below is not None and Wx_s is not None
                A = (below.reshape(n, H) @ Wx_s + b_s).reshape(n, 1, 4 * H)
            Hs = np.empty((n + 1, 1, H), dt)  # (n+1, 1, H)
            C = np.empty((n + 1, 1, H), dt)  # (n+1, 1, H)
            Hs[0], C[0] = state[layer]
            _recurrence(A, Hs, C, np.empty((n, 1, H), dt), Wh_s, None)
            new_state.append((Hs[n].copy(), C[n].copy()))
            below = Hs[1:]
        assert below is not None
        R = self._readout
        return below[-1, 0] @ R[:H] + R[H], tuple(new_state)

    def stream(self, state: State | None = None) -> Stream:
        """One stream that reads a character at a time from `state` (default: fresh)."""
        return Stream(self, self.initial_state(1) if state is None else state)


class Stream:
    """A single stream of text for generation: `feed(id)` reads one character and returns the
    logits for the next. The same maths as `Stepper.step` with a batch of one; here every
    intermediate lives in a buffer allocated once, so one character costs one product per layer
    (memory-bound: together they read every weight once) plus a few small NumPy calls.

    Where each layer's output h lives, so that no layer's input has to be assembled by copying:
    every layer l >= 1 reads one vector u_l = [h_{l-1}, h_l, 1] (2H+1,) (the layer below's new
    output, its own previous output, a 1 for the bias row of S) and writes its new h over the
    middle third (its own previous output, already read). Layer 0 keeps its h in the first third
    of u_1, where layer 1 reads it. The readout reads [h_top, 1], which is the last 2/3 of the
    top layer's u (or, with one layer, a separate [h_0, 1]). Only a middle layer (L >= 3) copies
    its h up into the next layer's u.
    """

    def __init__(self, stepper: Stepper, state: State):
        cfg = stepper.config
        H, L, dt = cfg.hidden, cfg.layers, cfg.dtype
        self._stepper = stepper
        self._H = H
        buffers = StreamBuffers(H, L, dt, [h for h, _ in state])
        self._u, self._top, self._h = buffers.u, buffers.top, buffers.h
        self._c = [np.array(c, dt).reshape(H) for _, c in state]  # (H,) cell per layer
        self._a = np.empty(4 * H, dt)  # (4H,) pre-activations, then gates
        self._ig = np.empty(H, dt)  # (H,) i * g
        self._tc = np.empty(H, dt)  # (H,) tanh(c)
        self._logits = np.empty(cfg.vocab_size, dt)  # (V,)

    def feed(self, char_id: int) -> NDArray:
        """The logits (V,) after reading character `char_id`. The array is reused: read it (or
        copy it) before the next call."""
        st, H, a, hs = self._stepper, self._H, self._a, self._h
        dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh  # locals: see _recurrence
        Gi, Gf, Go, Gg, S = a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :], a[: 3 * H]
        for layer, c in enumerate(self._c):
            if layer == 0:
                dot(hs[0], st._Wh0, out=a)
                add(a, st._table0[char_id], out=a)
            else:
                u = self._u[layer - 1]
                if layer >= 2:
                    np.copyto(u[:H], hs[layer - 1])  # a middle layer's new output, moved up
                dot(u, st._stacked[layer - 1], out=a)
            tanh(a, out=a)
            mul(S, 0.5, out=S)  # sigmoid(z) = (1 + tanh(z/2)) / 2 for i, f, o
            add(S, 0.5, out=S)
            mul(Gf, c, out=c)  # c = f c + i g
            mul(Gi, Gg, out=self._ig)
            add(c, self._ig, out=c)
            tanh(c, out=self._tc)
            mul(Go, self._tc, out=hs[layer])  # h = o tanh(c)
        return dot(self._top, st._readout, out=self._logits)

    def state(self) -> State:
        """A copy of the current state, shaped as `Stepper.step` takes it (batch of one)."""
        H = self._H
        return tuple((h.reshape(1, H).copy(), c.reshape(1, H).copy()) for h, c in zip(self._h, self._c, strict=True))
