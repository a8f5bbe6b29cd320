"""A character-level vanilla RNN language model in NumPy (the cell of min-char-rnn), stacked
layers and a linear readout.

For layer l at step t, with input x_t (a one-hot character for layer 0, the layer below's
output otherwise) and state h_{t-1}:

    h_t = tanh(x_t Wx + h_{t-1} Wh + b)          hidden state, the layer's output     (B, H)

    logits_t = h^L_t Wy + by                     readout of the top layer             (B, V)

Parameters: Wx{l} (V or H, H), Wh{l} (H, H), b{l} (H,), Wy (H, V), by (V,); as nn.RNN (tanh):
weight_ih_l{l} = Wx{l}.T, weight_hh_l{l} = Wh{l}.T, bias_ih_l{l} = b{l}, bias_hh_l{l} = 0.
Weights start uniform in +-1/sqrt(H) as in PyTorch, biases at zero.

Speed notes, as for the LSTM in core/models/lstm.py: arrays are time-major (T, B, ...); the input
projection is one product before the time loop (a row lookup for layer 0) and the weight
gradients one product after it; per step only h_{t-1} Wh, one addition and one tanh remain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from .base import ModelConfig, Params, Resets, State
from .recurrent import (
    RecurrentModel,
    StreamBuffers,
    accumulate_blank,
    project_inputs,
    repeat_state,
)


def _recurrence(
    A: NDArray,
    Hs: NDArray,
    Wh: NDArray,
    resets: Resets | None,
    t0: int = 0,
    t1: int | None = None,
    blank: tuple[NDArray, ...] | None = None,
) -> None:
    """The time loop of one layer: A (T, B, H) holds x_t Wx + b and receives x_t Wx + b + h_{t-1} Wh;
    Hs (T+1, B, H) holds the initial state at [0] and receives h_t at [t+1]. Steps t0 to t1 - 1
    (default: all). Reset streams start from `blank` (h0,), (H,), or from zeros when it is None."""
    T, B, H = A.shape
    u = np.empty((B, H), A.dtype)  # (B, H) h_{t-1} Wh
    dot, add, tanh = np.dot, np.add, np.tanh  # locals: no attribute lookups in the loop
    for t in range(t0, T if t1 is None else t1):
        h_prev = Hs[t]
        if resets and t in resets:  # these streams start afresh at step t
            h_prev = h_prev.copy()
            h_prev[resets[t]] = 0.0 if blank is None else blank[0]
        a = A[t]  # (B, H)
        dot(h_prev, Wh, out=u)
        add(a, u, out=a)
        tanh(a, out=Hs[t + 1])


def _tanh_derivative(Hout: NDArray, D: NDArray) -> None:
    """D (T, B, H) = 1 - h_t^2, the derivative of h_t = tanh(a_t), for the whole window at once."""
    np.multiply(Hout, Hout, out=D)
    np.subtract(1.0, D, out=D)


class LayerCache:
    """One layer's window: what its backward pass needs from its forward pass, and what the
    backward pass carries from one span of steps to the next."""

    __slots__ = (
        "layer", "x", "A", "Hs", "Hprev", "mask", "Y", "Wx_s", "b_s", "blank", "WhT", "dh", "dh_next", "dblank",
    )  # fmt: skip

    def __init__(self) -> None:
        self.layer: int
        self.x: NDArray  # (T, B) ids for layer 0, else (T, B, H) the layer below's output
        self.A: NDArray  # (T, B, H) pre-activations (backward writes d loss / d them over it)
        self.Hs: NDArray  # (T+1, B, H) hidden states, Hs[0] the initial one
        self.Hprev: NDArray  # (T, B, H) h_{t-1} as the step saw it (resets zeroed)
        self.mask: NDArray | None  # (T, B, H) scaled dropout mask on the output, or None
        self.Y: NDArray  # (T, B, H) the layer's output after dropout
        self.Wx_s: NDArray  # (V or H, H) input weight (layer 0: the lookup table Wx0 + b0)
        self.b_s: NDArray  # (H,) bias
        self.blank: tuple[NDArray, ...] | None  # (H,) h0 that reset streams start from (None: zeros)
        # backward
        self.WhT: NDArray  # (H, H)
        self.dh: NDArray  # (B, H) d loss / d h_t
        self.dh_next: NDArray  # (B, H) d loss / d h_{t-1}, carried to the step before
        self.dblank: tuple[NDArray, ...] | None  # (H,) d loss / d h0, summed over reset streams


class CharRNN(RecurrentModel):
    """The vanilla RNN model: a config and a dict of parameters, with forward/backward over a window."""

    name = "rnn"
    title = "RNN"
    summary = "vanilla tanh RNN, the cell of min-char-rnn and PyTorch's nn.RNN"
    gates = ("h",)
    torch_gates = ("h",)
    torch_module = "rnn"
    torch_class = "nn.RNN"
    state_names = ("h",)
    inside_quantities = ("hidden",)
    inside_default = "hidden"

    @classmethod
    def torch_config(cls, tensors: dict[str, NDArray], saved: dict[str, Any]) -> dict[str, Any] | None:
        """As every recurrent cell's; an nn.RNN must use tanh, as ours does."""
        if saved.get("nonlinearity", "tanh") != "tanh" and f"{cls.torch_module}.weight_hh_l0" in tensors:
            raise ConfigError(f"an nn.RNN with nonlinearity {saved['nonlinearity']!r}; lstm-tui's RNN uses tanh")
        return super().torch_config(tensors, saved)

    # ----------------------------------------------- one layer's forward and backward
    # (RecurrentModel.forward and .backward run these for every layer; Wavefront a span at a time)
    def _open_layer(self, layer: int, T: int, B: int, state: tuple[NDArray, ...]) -> LayerCache:
        pool, H, dt = self._pool, self.config.hidden, self.config.dtype
        lc = LayerCache()
        lc.A = pool.take((T, B, H), dt)  # (T, B, H) pre-activations
        lc.Hs = pool.take((T + 1, B, H), dt)  # (T+1, B, H) hidden states, Hs[0] the initial one
        (lc.Hs[0],) = state
        return lc

    def _run_steps(self, lc: LayerCache, t0: int, t1: int, resets: Resets | None) -> None:
        _recurrence(lc.A, lc.Hs, self.params[f"Wh{lc.layer}"], resets, t0, t1, lc.blank)

    def _final_state(self, lc: LayerCache) -> tuple[NDArray, ...]:
        return (lc.Hs[lc.A.shape[0]].copy(),)

    def _open_backward(self, lc: LayerCache, B: int) -> None:
        H, dt = self.config.hidden, lc.A.dtype
        lc.WhT = np.ascontiguousarray(self.params[f"Wh{lc.layer}"].T)  # (H, H)
        lc.dh = np.empty((B, H), dt)  # (B, H) d loss / d h_t
        lc.dh_next = np.zeros((B, H), dt)  # (B, H) from step t+1

    def _back_steps(
        self, lc: LayerCache, dHout: NDArray, t0: int, t1: int, resets: Resets | None, grads: Params
    ) -> None:
        """Per step, with dh = d loss / d h_t (from above and from step t+1):
            da = dh (1 - h_t^2)          d loss / d pre-activation
            dh_{t-1} = da Wh^T
        d loss / d a is written over the pre-activations."""
        A, WhT, dh, dh_next = lc.A, lc.WhT, lc.dh, lc.dh_next
        _tanh_derivative(lc.Hs[t0 + 1 : t1 + 1], A[t0:t1])  # over the pre-activations, no longer needed
        dot, add, mul = np.dot, np.add, np.multiply
        for t in range(t1 - 1, t0 - 1, -1):
            add(dHout[t], dh_next, out=dh)
            da = A[t]  # (B, H) d loss / d a_t, written over tanh'
            mul(dh, da, out=da)
            dot(da, WhT, out=dh_next)
            if resets and t in resets:  # these streams saw h0, not h_{t-1}
                accumulate_blank(lc.dblank[0] if lc.dblank else None, dh_next, resets[t])

    def _close_backward(self, lc: LayerCache, grads: Params) -> tuple[NDArray, ...]:
        T, B, H = lc.A.shape
        dA = lc.A.reshape(T * B, H)  # (T*B, H) d loss / d a for the whole window
        grads[f"Wh{lc.layer}"] = lc.Hprev.reshape(T * B, H).T @ dA  # (H, H)
        return (lc.dh_next,)

    def _release(self, lc: LayerCache) -> None:
        self._pool.give(lc.A, lc.Hs)

    # ---------------------------------------------------------------- inference
    def stepper(self) -> Stepper:
        """One-step inference on a frozen copy of the current weights."""
        return Stepper(self)

    def activations(self, ids: NDArray) -> dict[str, NDArray]:
        """h of every layer for each character of `ids` (n,), read from a blank state by a plain
        step-by-step pass in float64 that reads like the equation above."""
        cfg = self.config
        P = {k: v.astype(np.float64) for k, v in self.params.items()}  # a private copy
        L, n = cfg.layers, len(ids)
        out = np.zeros((L, n, cfg.hidden))
        h = [np.asarray(s[0][0], np.float64) for s in self.initial_state(1)]  # (H,) per layer
        for t, ch in enumerate(np.asarray(ids, dtype=np.int64)):
            x = P["Wx0"][ch]  # (H,) layer 0: the one-hot input times Wx0 is a row of it
            for layer in range(L):
                xz = x if layer == 0 else x @ P[f"Wx{layer}"]  # (H,) the input's contribution
                h[layer] = np.tanh(xz + h[layer] @ P[f"Wh{layer}"] + P[f"b{layer}"])
                out[layer, t] = h[layer]
                x = h[layer]
        return {"hidden": out}


class Stepper:
    """One character at a time, for generation: step(ids, state) -> (logits, state).

    Holds its own copy of the weights, so training may go on changing the model:

        layer 0:      a = table0[id] + h_{t-1} Wh0     table0 = Wx0 + b0          (V, H)
        layers >= 1:  a = [x_t, h_{t-1}, 1] S          S = [[Wx]; [Wh]; [b]]      (2H+1, H)
        readout:      logits = [h, 1] R                R = [[Wy]; [by]]           (H+1, V)
    """

    def __init__(self, model: CharRNN):
        cfg = model.config
        H, dt = cfg.hidden, cfg.dtype
        P = model.params
        self.config = cfg
        self._table0 = np.add(P["Wx0"], P["b0"])  # (V, H)
        self._Wh0 = P["Wh0"].copy()  # (H, H)
        self._stacked = []  # (2H+1, H) per layer above the first
        for layer in range(1, cfg.layers):
            S = np.empty((2 * H + 1, H), dt)
            S[:H], S[H : 2 * H], S[2 * H] = P[f"Wx{layer}"], P[f"Wh{layer}"], P[f"b{layer}"]
            self._stacked.append(S)
        self._readout = np.empty((H + 1, cfg.vocab_size), dt)  # (H+1, V)
        self._readout[:H], self._readout[H] = P["Wy"], P["by"]
        self._blank = model.initial_state(1)  # (a copy: the state a blank start reads from)

    def initial_state(self, batch: int = 1) -> State:
        return repeat_state(self._blank, batch)

    def _weights(self, layer: int) -> tuple[NDArray, NDArray, NDArray]:
        """Layer `layer`'s (Wx, Wh, b): views into the stacked copy (for layer 0, Wx + b is the
        lookup table and b is zero)."""
        if layer == 0:
            return self._table0, self._Wh0, np.zeros(self.config.hidden, self.config.dtype)
        H, S = self.config.hidden, self._stacked[layer - 1]
        return S[:H], S[H : 2 * H], S[2 * H]

    def step(self, ids: NDArray, state: State) -> tuple[NDArray, State]:
        """Logits (B, V) for the next character after `ids` (B,), and the new state."""
        new_state = []
        x: NDArray | None = None
        for layer in range(self.config.layers):
            (h,) = state[layer]
            Wx, Wh, b = self._weights(layer)
            if layer == 0:
                a = Wx[ids] + h @ Wh  # (B, H)
            else:
                assert x is not None
                a = x @ Wx + h @ Wh + b  # (B, H)
            h = np.tanh(a)
            new_state.append((h,))
            x = h
        assert x is not None
        R = self._readout
        H = self.config.hidden
        return x @ R[:H] + R[H], tuple(new_state)

    def prime(self, ids: NDArray, state: State | None = None) -> tuple[NDArray | None, State]:
        """Feed the characters `ids` (n,) one after another; the logits after the last one (or None
        when `ids` is empty) and the state, reading the seed as one (n, 1) window as `forward` does."""
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
            Wx, Wh, b = self._weights(layer)
            A = np.empty((n, 1, H), dt)  # (n, 1, H)
            project_inputs(layer, ids, below, Wx, b, A)
            Hs = np.empty((n + 1, 1, H), dt)  # (n+1, 1, H)
            (Hs[0],) = state[layer]
            _recurrence(A, Hs, Wh, None)
            new_state.append((Hs[n].copy(),))
            below = Hs[1:]
        assert below is not None
        R = self._readout
        return below[-1, 0] @ R[:H] + R[H], tuple(new_state)

    def stream(self, state: State | None = None) -> Stream:
        """One stream that reads a character at a time from `state` (default: fresh)."""
        return Stream(self, self.initial_state(1) if state is None else state)


class Stream:
    """A single stream of text for generation: `feed(id)` reads one character and returns the
    logits for the next. The same maths as `Stepper.step` with a batch of one, every
    intermediate in a buffer allocated once; layer outputs live inside each other's input
    vectors (model.StreamBuffers), so one character costs one product per layer and a tanh."""

    def __init__(self, stepper: Stepper, state: State):
        cfg = stepper.config
        H, dt = cfg.hidden, cfg.dtype
        self._stepper = stepper
        self._H = H
        buffers = StreamBuffers(H, cfg.layers, dt, [h for (h,) in state])
        self._u, self._top, self._h = buffers.u, buffers.top, buffers.h
        self._a = np.empty(H, dt)  # (H,) pre-activations
        self._logits = np.empty(cfg.vocab_size, dt)  # (V,)

    def feed(self, char_id: int) -> NDArray:
        """The logits (V,) after reading character `char_id`. The array is reused: read it (or
        copy it) before the next call."""
        st, H, a, hs = self._stepper, self._H, self._a, self._h
        dot, add, tanh = np.dot, np.add, np.tanh
        for layer in range(len(hs)):
            if layer == 0:
                dot(hs[0], st._Wh0, out=a)
                add(a, st._table0[char_id], out=a)
            else:
                u = self._u[layer - 1]
                if layer >= 2:
                    np.copyto(u[:H], hs[layer - 1])  # a middle layer's new output, moved up
                dot(u, st._stacked[layer - 1], out=a)
            tanh(a, out=hs[layer])
        return dot(self._top, st._readout, out=self._logits)

    def state(self) -> State:
        """A copy of the current state, shaped as `Stepper.step` takes it (batch of one)."""
        H = self._H
        return tuple((h.reshape(1, H).copy(),) for h in self._h)


__all__ = ["CharRNN", "ModelConfig", "Stepper", "Stream"]
