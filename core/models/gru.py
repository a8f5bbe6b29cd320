"""A character-level GRU language model in NumPy: stacked fused-gate layers and a linear readout.

The variant is PyTorch's `nn.GRU` (and cuDNN's): the reset gate multiplies the recurrent
product h_{t-1} Wh_n + bhn, not h_{t-1} before the product as in Cho et al. (2014). For layer l
at step t, with input x_t (a one-hot character for layer 0, the layer below's output otherwise)
and state h_{t-1}:

    a_t = x_t Wx + b                      input side, the three blocks in GRU_GATES order  (B, 3H)
    u_t = h_{t-1} Wh                      recurrent side, same order                        (B, 3H)
    r_t = sigmoid(a_t[r] + u_t[r])        reset gate: how much of the old state the candidate sees
    z_t = sigmoid(a_t[z] + u_t[z])        update gate: how much of the old state to keep
    n_t = tanh(a_t[n] + r_t * (u_t[n] + bhn))    candidate state
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}        computed as n_t + z_t * (h_{t-1} - n_t)

    logits_t = h^L_t Wy + by              readout of the top layer                          (B, V)

Parameters: Wx{l} (V or H, 3H), Wh{l} (H, 3H), b{l} (3H,) the input-side biases of r, z, n,
bhn{l} (H,) the candidate's recurrent bias (inside r * (...)), Wy (H, V), by (V,). They map one
to one onto nn.GRU: weight_ih_l{l} = Wx{l}.T, weight_hh_l{l} = Wh{l}.T, bias_ih_l{l} = b{l},
bias_hh_l{l} = [0, 0, bhn{l}] (PyTorch's r and z recurrent biases only add to b's, so a model
coming from PyTorch folds them in). Weights start uniform in +-1/sqrt(H) as in PyTorch, biases
at zero (so z starts near 1/2: each step keeps about half the old state).

Speed notes, as for the LSTM in core/models/lstm.py: arrays are time-major (T, B, ...); the input
projection is one product before the time loop (a row lookup for layer 0) and the weight
gradients one product after it; only h_{t-1} Wh runs per step. The r and z columns are pre-scaled
by 1/2 so that sigmoid(v) = (1 + tanh(v/2)) / 2 takes one tanh call for both gates.
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

# The order of the three blocks inside every fused (., 3H) matrix (PyTorch's order).
GRU_GATES = ("r", "z", "n")


def gate_scale(hidden: int, dtype: np.dtype | str) -> NDArray:
    """(3H,) column scale: 1/2 on the sigmoid gates (r, z), 1 on the candidate (n)."""
    s = np.full(3 * hidden, 0.5, dtype=dtype)
    s[2 * hidden :] = 1.0
    return s


def _recurrence(
    A: NDArray,
    Hs: NDArray,
    HN: NDArray,
    Wh_s: NDArray,
    bhn: NDArray,
    resets: Resets | None,
    t0: int = 0,
    t1: int | None = None,
    blank: tuple[NDArray, ...] | None = None,
) -> None:
    """The time loop of one layer, in place: the only part that must run step by step.

    A (T, B, 3H) holds x_t Wx + b (r, z columns halved) and becomes the activations r, z, n;
    Hs (T+1, B, H) holds the initial state at [0] and receives h_t at [t+1];
    HN (T, B, H) receives h_{t-1} Wh_n + bhn, which r multiplies (backward needs it).
    Wh_s (H, 3H) is the gate-scaled recurrent weight. Steps t0 to t1 - 1 (default: all).
    Reset streams start from `blank` (h0,), (H,), or from zeros when it is None.
    """
    T, B, H = HN.shape
    u = np.empty((B, 3 * H), A.dtype)  # (B, 3H) h_{t-1} Wh_s
    d = np.empty((B, H), A.dtype)  # (B, H) scratch
    # Per-step cost at small B is NumPy call overhead: ufuncs as locals, explicit out= calls.
    dot, add, sub, mul, tanh = np.dot, np.add, np.subtract, np.multiply, np.tanh
    RZ, R, Z, N = A[..., : 2 * H], A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]  # gate views
    u_rz, u_n = u[:, : 2 * H], u[:, 2 * H :]  # (B, 2H), (B, H)
    for t in range(t0, T if t1 is None else t1):
        h_prev = Hs[t]
        if resets and t in resets:  # these streams start afresh at step t
            h_prev = h_prev.copy()
            h_prev[resets[t]] = 0.0 if blank is None else blank[0]
        dot(h_prev, Wh_s, out=u)
        rz = RZ[t]  # (B, 2H) halved pre-activations, then r, z
        add(rz, u_rz, out=rz)
        tanh(rz, out=rz)
        mul(rz, 0.5, out=rz)  # sigmoid(v) = (1 + tanh(v/2)) / 2
        add(rz, 0.5, out=rz)
        hn = HN[t]
        add(u_n, bhn, out=hn)  # h_{t-1} Wh_n + bhn
        n = N[t]
        mul(R[t], hn, out=d)
        add(n, d, out=n)
        tanh(n, out=n)  # n = tanh(a_n + r * hn)
        sub(h_prev, n, out=d)
        mul(Z[t], d, out=d)
        add(n, d, out=Hs[t + 1])  # h = n + z (h_{t-1} - n)


def _local_derivatives(A: NDArray, Hprev: NDArray, HN: NDArray, M: NDArray, S: NDArray) -> None:
    """The local derivatives the backward loop chains, for k steps at once, with no temporaries.

    A (k, B, 3H) activations r, z, n; Hprev (k, B, H) h_{t-1}; HN (k, B, H) h_{t-1} Wh_n + bhn.
    Writes M (k, B, 3H), per block: M_r = hn r (1 - r) (d pre-r / d pre-n),
    M_z = (h_{t-1} - n) z (1 - z) (d pre-z / d h_t), M_n = (1 - z)(1 - n^2) (d pre-n / d h_t).
    S (k, B, H) is scratch.
    """
    H = HN.shape[-1]
    R, Z, N = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]
    Mr, Mz, Mn = M[..., :H], M[..., H : 2 * H], M[..., 2 * H :]
    np.subtract(1.0, R, out=Mr)
    Mr *= R
    Mr *= HN
    np.subtract(Hprev, N, out=Mz)
    np.subtract(1.0, Z, out=Mn)
    Mz *= Mn
    Mz *= Z
    np.multiply(N, N, out=S)
    np.subtract(1.0, S, out=S)
    Mn *= S


class LayerCache:
    """One layer's window: what its backward pass needs from its forward pass, and what the
    backward pass carries from one span of steps to the next."""

    __slots__ = (
        "layer", "x", "A", "Hs", "Hprev", "HN", "mask", "Y", "Wx_s", "b_s", "Wh_s", "blank",
        "WhT", "K", "M", "S", "dh", "dzh", "dh_next", "dblank",
    )  # fmt: skip

    def __init__(self) -> None:
        self.layer: int
        self.x: NDArray  # (T, B) ids for layer 0, else (T, B, H) the layer below's output
        self.A: NDArray  # (T, B, 3H) activations r, z in (0, 1) and n in (-1, 1)
        self.Hs: NDArray  # (T+1, B, H) hidden states, Hs[0] the initial one
        self.Hprev: NDArray  # (T, B, H) h_{t-1} as the step saw it (resets zeroed)
        self.HN: NDArray  # (T, B, H) h_{t-1} Wh_n + bhn
        self.mask: NDArray | None  # (T, B, H) scaled dropout mask on the output, or None
        self.Y: NDArray  # (T, B, H) the layer's output after dropout
        self.Wx_s: NDArray  # (V or H, 3H) gate-scaled input weight (layer 0: the lookup table)
        self.b_s: NDArray  # (3H,) gate-scaled bias
        self.Wh_s: NDArray  # (H, 3H) gate-scaled recurrent weight
        self.blank: tuple[NDArray, ...] | None  # (H,) h0 that reset streams start from (None: zeros)
        # backward
        self.WhT: NDArray  # (3H, H)
        self.K: int  # steps whose local derivatives are computed at once
        self.M: NDArray  # (K, B, 3H) M_r, M_z, M_n (see _local_derivatives)
        self.S: NDArray  # (K, B, H) scratch
        self.dh: NDArray  # (B, H) d loss / d h_t
        self.dzh: NDArray  # (B, H) dh z: straight through to h_{t-1}
        self.dh_next: NDArray  # (B, H) d loss / d h_{t-1}, carried to the step before
        self.dblank: tuple[NDArray, ...] | None  # (H,) d loss / d h0, summed over reset streams


class CharGRU(RecurrentModel):
    """The GRU model: a config and a dict of parameters, with forward/backward over a window."""

    name = "gru"
    title = "GRU"
    summary = "gated recurrent unit, PyTorch nn.GRU's equations"
    gates = GRU_GATES
    torch_gates = GRU_GATES  # nn.GRU's order already
    torch_module = "gru"
    torch_class = "nn.GRU"
    state_names = ("h",)
    inside_quantities = ("reset", "update", "candidate", "hidden")
    inside_default = "hidden"
    gate_quantities = ("reset", "update")

    @classmethod
    def extra_layer_params(cls, config: ModelConfig, layer: int) -> dict[str, tuple[int, ...]]:
        return {f"bhn{layer}": (config.hidden,)}  # the candidate's recurrent bias, inside r * (...)

    @classmethod
    def torch_hh_bias(cls, hidden: int) -> NDArray:
        """nn.GRU's bias_hh: its r and z thirds only add to bias_ih's (folded into b on import);
        its n third is our bhn, which r multiplies."""
        kept = np.zeros(3 * hidden)
        kept[2 * hidden :] = 1.0
        return kept

    @classmethod
    def hh_bias_to_torch(cls, layer: dict[str, NDArray]) -> NDArray:
        b_hh = np.zeros_like(layer["b"])
        b_hh[2 * layer["bhn"].shape[0] :] = layer["bhn"]
        return b_hh

    @classmethod
    def hh_bias_from_torch(cls, b_hh: NDArray) -> dict[str, NDArray]:
        H = b_hh.shape[0] // 3
        return {"bhn": np.ascontiguousarray(b_hh[2 * H :])}

    # ----------------------------------------------- one layer's forward and backward
    # (RecurrentModel.forward and .backward run these for every layer; Wavefront a span at a time)
    def _input_scale(self) -> NDArray:
        return gate_scale(self.config.hidden, self.config.dtype)  # (one tanh gives r and z)

    def _open_layer(self, layer: int, T: int, B: int, state: tuple[NDArray, ...]) -> LayerCache:
        pool, H, dt = self._pool, self.config.hidden, self.config.dtype
        lc = LayerCache()
        lc.A = pool.take((T, B, 3 * H), dt)  # (T, B, 3H) pre-activations, then r, z, n
        lc.Hs = pool.take((T + 1, B, H), dt)  # (T+1, B, H) hidden states, Hs[0] the initial one
        lc.HN = pool.take((T, B, H), dt)  # (T, B, H) h_{t-1} Wh_n + bhn
        (lc.Hs[0],) = state
        lc.Wh_s = self.params[f"Wh{layer}"] * gate_scale(H, dt)
        return lc

    def _run_steps(self, lc: LayerCache, t0: int, t1: int, resets: Resets | None) -> None:
        _recurrence(lc.A, lc.Hs, lc.HN, lc.Wh_s, self.params[f"bhn{lc.layer}"], resets, t0, t1, lc.blank)

    def _final_state(self, lc: LayerCache) -> tuple[NDArray, ...]:
        return (lc.Hs[lc.HN.shape[0]].copy(),)

    def _open_backward(self, lc: LayerCache, B: int) -> None:
        T, _, H = lc.HN.shape
        dt = lc.A.dtype
        # Local derivatives a chunk of K steps at a time, into small reused buffers that stay in
        # cache between being written and being read by the loop (as for the LSTM).
        lc.K = K = max(1, min(T, CHUNK_FLOATS // (B * 3 * H)))
        lc.M = self._pool.take((K, B, 3 * H), dt)  # (K, B, 3H) M_r, M_z, M_n (see _local_derivatives)
        lc.S = self._pool.take((K, B, H), dt)  # (K, B, H) scratch
        lc.WhT = np.ascontiguousarray(self.params[f"Wh{lc.layer}"].T)  # (3H, H)
        lc.dh = np.empty((B, H), dt)  # (B, H) d loss / d h_t
        lc.dzh = np.empty((B, H), dt)  # (B, H) dh z: straight through to h_{t-1}
        lc.dh_next = np.zeros((B, H), dt)  # (B, H) from step t+1

    def _back_steps(
        self, lc: LayerCache, dHout: NDArray, t0: int, t1: int, resets: Resets | None, grads: Params
    ) -> None:
        """Per step, with dh = d loss / d h_t (from above and from step t+1):
            dn  = dh (1 - z) (1 - n^2)          d loss / d pre-n (input side: a_n)
            dhn = dn r                          d loss / d (h_{t-1} Wh_n + bhn)
            dr  = dn hn r (1 - r)               d loss / d pre-r
            dz  = dh (h_{t-1} - n) z (1 - z)    d loss / d pre-z
            dh_{t-1} = dh z + [dr, dz, dhn] Wh^T
        [dr, dz, dhn] = d loss / d (h_{t-1} Wh + [0, 0, bhn]) is written over the activations; the
        steps' share of Wh's and bhn's gradients is taken from it, then its n block becomes dn, so
        that A[t0:t1] ends as d loss / d (x_t Wx + b)."""
        A, HN, Hprev, K, H = lc.A, lc.HN, lc.Hprev, lc.K, lc.HN.shape[2]
        B = A.shape[1]
        M, WhT, dh, dzh, dh_next = lc.M, lc.WhT, lc.dh, lc.dzh, lc.dh_next
        dot, add, mul = np.dot, np.add, np.multiply  # locals: see _recurrence
        R, Z, N = A[..., :H], A[..., H : 2 * H], A[..., 2 * H :]  # (T, B, H): r, z, n, then dr, dz, dhn
        Mr, Mz, Mn = M[..., :H], M[..., H : 2 * H], M[..., 2 * H :]  # (K, B, H)
        for s1 in range(t1, t0, -K):
            s0 = max(t0, s1 - K)
            k = s1 - s0
            _local_derivatives(A[s0:s1], Hprev[s0:s1], HN[s0:s1], M[:k], lc.S[:k])
            for t in range(s1 - 1, s0 - 1, -1):
                j = t - s0
                add(dHout[t], dh_next, out=dh)
                mul(dh, Z[t], out=dzh)  # (read z before its slot is reused)
                dn = HN[t]  # (B, H) d loss / d pre-n, written over hn (folded into M_r)
                mul(dh, Mn[j], out=dn)
                mul(dn, R[t], out=N[t])  # dhn = dn r (read r before its slot is reused)
                mul(dn, Mr[j], out=R[t])  # dr
                mul(dh, Mz[j], out=Z[t])  # dz
                dot(A[t], WhT, out=dh_next)  # [dr, dz, dhn] Wh^T
                add(dh_next, dzh, out=dh_next)
                if resets and t in resets:  # these streams saw h0, not h_{t-1}
                    accumulate_blank(lc.dblank[0] if lc.dblank else None, dh_next, resets[t])
        n = (t1 - t0) * B
        dU = A[t0:t1].reshape(n, 3 * H)  # (n, 3H) d loss / d (h_{t-1} Wh + [0, 0, bhn]) for these steps
        gWh = Hprev[t0:t1].reshape(n, H).T @ dU  # (H, 3H)
        gbhn = dU[:, 2 * H :].sum(axis=0)  # (H,)
        name = f"Wh{lc.layer}"
        if name in grads:  # an earlier span of the same window (Wavefront)
            grads[name] += gWh
            grads[f"bhn{lc.layer}"] += gbhn
        else:
            grads[name], grads[f"bhn{lc.layer}"] = gWh, gbhn
        N[t0:t1] = HN[t0:t1]  # the n block becomes dn: A is now d loss / d (x_t Wx + b)

    def _close_backward(self, lc: LayerCache, grads: Params) -> tuple[NDArray, ...]:
        self._pool.give(lc.M, lc.S)
        return (lc.dh_next,)

    def _release(self, lc: LayerCache) -> None:
        self._pool.give(lc.A, lc.Hs, lc.HN)

    # ---------------------------------------------------------------- inference
    def stepper(self) -> Stepper:
        """One-step inference on a frozen copy of the current weights."""
        return Stepper(self)

    def activations(self, ids: NDArray) -> dict[str, NDArray]:
        """r, z, n and h of every layer for each character of `ids` (n,), read from a blank state
        by a plain step-by-step pass in float64 that reads like the equations above."""
        cfg = self.config
        P = {k: v.astype(np.float64) for k, v in self.params.items()}  # a private copy
        H, L, n = cfg.hidden, cfg.layers, len(ids)
        out = {q: np.zeros((L, n, H)) for q in self.inside_quantities}
        h = [np.asarray(s[0][0], np.float64) for s in self.initial_state(1)]  # (H,) per layer
        for t, ch in enumerate(np.asarray(ids, dtype=np.int64)):
            x = P["Wx0"][ch]  # (3H,) layer 0: the one-hot input times Wx0 is a row of it
            for layer in range(L):
                a = (x if layer == 0 else x @ P[f"Wx{layer}"]) + P[f"b{layer}"]  # (3H,) input side: r, z, n
                u = h[layer] @ P[f"Wh{layer}"]  # (3H,) recurrent side
                r = sigmoid(a[:H] + u[:H])
                z = sigmoid(a[H : 2 * H] + u[H : 2 * H])
                nc = np.tanh(a[2 * H :] + r * (u[2 * H :] + P[f"bhn{layer}"]))
                h[layer] = (1 - z) * nc + z * h[layer]
                for q, v in zip(self.inside_quantities, (r, z, nc, h[layer]), strict=True):
                    out[q][layer, t] = v
                x = h[layer]
        return out


def _cell4(a: NDArray, h: NDArray, h_out: NDArray, d: NDArray, H: int) -> None:
    """One step of the cell from four-block pre-activations (Stepper's layout).

    a (..., 4H) holds [r, z (both halved), n_x, n_h] and becomes [r, z, n, n_h];
    h (..., H) is h_{t-1}; h_out (..., H) receives h_t (it may be h itself); d (..., H) is scratch.
    """
    RZ, R, Z, N, NH = a[..., : 2 * H], a[..., :H], a[..., H : 2 * H], a[..., 2 * H : 3 * H], a[..., 3 * H :]
    np.tanh(RZ, out=RZ)
    np.multiply(RZ, 0.5, out=RZ)  # sigmoid(v) = (1 + tanh(v/2)) / 2 for r, z
    np.add(RZ, 0.5, out=RZ)
    np.multiply(R, NH, out=d)
    np.add(N, d, out=N)
    np.tanh(N, out=N)  # n = tanh(n_x + r n_h)
    np.subtract(h, N, out=d)
    np.multiply(Z, d, out=d)
    np.add(N, d, out=h_out)  # h = n + z (h_{t-1} - n)


class Stepper:
    """One character at a time, for generation: step(ids, state) -> (logits, state).

    Holds its own copy of the weights, so training may go on changing the model. Each layer's
    pre-activations are one product into four blocks [r, z, n_x, n_h] (4H,): r and z sum the
    input and recurrent sides, n_x = x Wx_n + b_n and n_h = h Wh_n + bhn stay apart because r
    multiplies only n_h:

        layer 0:      a = table0[id] + h_{t-1} U0     table0 = [Wx0 + b0 | bhn0] (V, 4H)
                                                      U0 = [Wh0_rz | 0 | Wh0_n]  (H, 4H)
        layers >= 1:  a = [x_t, h_{t-1}, 1] S         S = [[Wx_rz, Wx_n, 0], [Wh_rz, 0, Wh_n],
                                                           [b_rz, b_n, bhn]]     (2H+1, 4H)
        readout:      logits = [h, 1] R               R = [[Wy]; [by]]           (H+1, V)

    (r, z columns halved, as in training). The zero blocks cost a third more multiply-adds
    than the 3H layout, and save a product and its additions per layer and character. `prime`
    reads a seed as one window in the same layout: the input side of every step is one product
    (or lookup) before the loop, and only h_{t-1} S[H:2H] runs per character.
    """

    def __init__(self, model: CharGRU):
        cfg = model.config
        H, dt = cfg.hidden, cfg.dtype
        scale = gate_scale(H, dt)  # (3H,)
        P = model.params
        self.config = cfg
        self._table0 = np.empty((cfg.vocab_size, 4 * H), dt)  # (V, 4H)
        np.add(P["Wx0"], P["b0"], out=self._table0[:, : 3 * H])
        self._table0[:, : 3 * H] *= scale
        self._table0[:, 3 * H :] = P["bhn0"]
        self._U0 = self._recurrent_block(P["Wh0"], scale)  # (H, 4H)
        self._stacked = []  # (2H+1, 4H) per layer above the first
        for layer in range(1, cfg.layers):
            S = np.empty((2 * H + 1, 4 * H), dt)
            np.multiply(P[f"Wx{layer}"], scale, out=S[:H, : 3 * H])
            S[:H, 3 * H :] = 0.0
            S[H : 2 * H] = self._recurrent_block(P[f"Wh{layer}"], scale)
            np.multiply(P[f"b{layer}"], scale, out=S[2 * H, : 3 * H])
            S[2 * H, 3 * H :] = P[f"bhn{layer}"]
            self._stacked.append(S)
        self._readout = np.empty((H + 1, cfg.vocab_size), dt)  # (H+1, V)
        self._readout[:H], self._readout[H] = P["Wy"], P["by"]
        self._blank = model.initial_state(1)  # (a copy: the state a blank start reads from)

    @staticmethod
    def _recurrent_block(Wh: NDArray, scale: NDArray) -> NDArray:
        """(H, 4H) [Wh_rz, 0, Wh_n] from Wh (H, 3H), r and z columns halved."""
        H = Wh.shape[0]
        U = np.empty((H, 4 * H), Wh.dtype)
        np.multiply(Wh[:, : 2 * H], scale[: 2 * H], out=U[:, : 2 * H])
        U[:, 2 * H : 3 * H] = 0.0
        U[:, 3 * H :] = Wh[:, 2 * H :]
        return U

    def initial_state(self, batch: int = 1) -> State:
        return repeat_state(self._blank, batch)

    def _weights(self, layer: int) -> tuple[NDArray | None, NDArray, NDArray | None]:
        """Layer `layer`'s input, recurrent and bias rows (Wx and b are None for layer 0, whose
        input projection and bias are the rows of table0): views into the stacked copy."""
        if layer == 0:
            return None, self._U0, None
        H, S = self.config.hidden, self._stacked[layer - 1]
        return S[:H], S[H : 2 * H], S[2 * H]

    def step(self, ids: NDArray, state: State) -> tuple[NDArray, State]:
        """Logits (B, V) for the next character after `ids` (B,), and the new state."""
        H = self.config.hidden
        new_state = []
        x: NDArray | None = None
        for layer in range(self.config.layers):
            Wx, U, b = self._weights(layer)
            h = np.array(state[layer][0])  # (B, H) a copy: the cell updates it in place
            if layer == 0:
                a = self._table0[ids] + h @ U  # (B, 4H)
            else:
                assert x is not None and Wx is not None
                a = x @ Wx + h @ U
                a += b
            _cell4(a, h, h, np.empty_like(h), H)
            new_state.append((h,))
            x = h
        assert x is not None
        R = self._readout
        return x @ R[:H] + R[H], tuple(new_state)

    def prime(self, ids: NDArray, state: State | None = None) -> tuple[NDArray | None, State]:
        """Feed the characters `ids` (n,) one after another; the logits after the last one (or None
        when `ids` is empty) and the state. The seed is read as one (n, 1) window, as `forward`
        reads one: each layer's input side is one product, only h_{t-1} U runs per character.
        """
        if state is None:
            state = self.initial_state(1)
        ids = np.asarray(ids).reshape(-1)  # (n,)
        n = len(ids)
        if n == 0:
            return None, state
        H, dt = self.config.hidden, self.config.dtype
        below: NDArray | None = None  # (n, H) the layer below's outputs
        new_state = []
        for layer in range(self.config.layers):
            Wx, U, b = self._weights(layer)
            if layer == 0:
                if int(ids.min()) < 0 or int(ids.max()) >= self.config.vocab_size:
                    raise IndexError(f"character ids must be in [0, {self.config.vocab_size})")
                A = self._table0[ids]  # (n, 4H) input sides, with the biases
            else:
                assert below is not None and Wx is not None
                A = below @ Wx  # (n, 4H)
                A += b
            Hs = np.empty((n + 1, H), dt)  # (n+1, H) h_t at [t+1], the initial state at [0]
            Hs[0] = np.reshape(state[layer][0], H)
            u = np.empty(4 * H, dt)  # (4H,) h_{t-1} U
            d = np.empty(H, dt)  # (H,) scratch
            for t in range(n):
                np.dot(Hs[t], U, out=u)
                a = A[t]
                np.add(a, u, out=a)
                _cell4(a, Hs[t], Hs[t + 1], d, H)
            new_state.append((Hs[n].reshape(1, H).copy(),))
            below = Hs[1:]
        assert below is not None
        R = self._readout
        return below[-1] @ R[:H] + R[H], tuple(new_state)

    def stream(self, state: State | None = None) -> Stream:
        """One stream that reads a character at a time from `state` (default: fresh)."""
        return Stream(self, self.initial_state(1) if state is None else state)


class Stream:
    """A single stream of text for generation: `feed(id)` reads one character and returns the
    logits for the next. The same maths as `Stepper.step` with a batch of one, every
    intermediate in a buffer allocated once; layer outputs live inside each other's input
    vectors (recurrent.StreamBuffers), so one character costs one product per layer plus a few small
    NumPy calls."""

    def __init__(self, stepper: Stepper, state: State):
        cfg = stepper.config
        H, dt = cfg.hidden, cfg.dtype
        self._stepper = stepper
        self._H = H
        buffers = StreamBuffers(H, cfg.layers, dt, [h for (h,) in state])
        self._u, self._top, self._h = buffers.u, buffers.top, buffers.h
        self._a = np.empty(4 * H, dt)  # (4H,) pre-activations [r, z, n_x, n_h], then r, z, n
        self._d = np.empty(H, dt)  # (H,) scratch
        self._logits = np.empty(cfg.vocab_size, dt)  # (V,)

    def feed(self, char_id: int) -> NDArray:
        """The logits (V,) after reading character `char_id`. The array is reused: read it (or
        copy it) before the next call."""
        st, H, a, hs, d = self._stepper, self._H, self._a, self._h, self._d
        dot, add, sub, mul, tanh = np.dot, np.add, np.subtract, np.multiply, np.tanh
        RZ, R, Z, N, NH = a[: 2 * H], a[:H], a[H : 2 * H], a[2 * H : 3 * H], a[3 * H :]
        for layer in range(len(hs)):
            h = hs[layer]
            if layer == 0:
                dot(h, st._U0, out=a)
                add(a, st._table0[char_id], out=a)
            else:
                u = self._u[layer - 1]
                if layer >= 2:
                    np.copyto(u[:H], hs[layer - 1])  # a middle layer's new output, moved up
                dot(u, st._stacked[layer - 1], out=a)
            tanh(RZ, out=RZ)
            mul(RZ, 0.5, out=RZ)  # sigmoid(v) = (1 + tanh(v/2)) / 2 for r, z
            add(RZ, 0.5, out=RZ)
            mul(R, NH, out=d)
            add(N, d, out=N)
            tanh(N, out=N)  # n = tanh(n_x + r n_h)
            sub(h, N, out=d)
            mul(Z, d, out=d)
            add(N, d, out=h)  # h = n + z (h - n)
        return dot(self._top, st._readout, out=self._logits)

    def state(self) -> State:
        """A copy of the current state, shaped as `Stepper.step` takes it (batch of one)."""
        H = self._H
        return tuple((h.reshape(1, H).copy(),) for h in self._h)


__all__ = ["GRU_GATES", "CharGRU", "Stepper", "Stream"]
