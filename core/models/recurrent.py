"""What the recurrent models (LSTM, GRU, RNN) share: fused-gate parameters, their initialisation,
sizing and PyTorch names, and the parts of forward/backward that are the same for every cell.

A recurrent model has, per layer l, a fused input weight Wx{l} (V or H, G*H), a recurrent weight
Wh{l} (H, G*H) and a bias b{l} (G*H,), where G = len(gates) blocks of H columns are the cell's
gates in its `gates` order; then a readout Wy (H, V), by (V,). A cell may declare more per-layer
parameters (`extra_layer_params`: the GRU's bhn). Its export uses PyTorch's own module
(`torch_class`, e.g. nn.LSTM) under `torch_module.` and an nn.Linear under `readout.`:

    {module}.weight_ih_l{k} (G*H, in) = Wx[:, P].T     {module}.bias_ih_l{k} (G*H,) = b[P]
    {module}.weight_hh_l{k} (G*H, H)  = Wh[:, P].T     {module}.bias_hh_l{k} (G*H,) (see below)
    readout.weight (V, H) = Wy.T                       readout.bias (V,) = by

where P reorders our gate blocks into PyTorch's (`torch_gates`). PyTorch has a second bias vector
per layer; ours have one, so an export writes bias_hh = 0 and an import folds it into b, except
where a cell keeps part of it apart (`torch_hh_bias`: the GRU's candidate third, our bhn).

With ModelConfig.init_state "learned", every layer also has its blank state as parameters, one
(H,) vector per state array named after it: h0{l} (and c0{l} for the LSTM), starting at zero. A
stream that starts blank (the first window, a reset) starts from them, and the gradient that
reaches the state such a stream started from is summed over those streams into theirs. PyTorch's
modules take an initial state as an input, not a parameter, so such a model has no export.

Speed notes. Arrays are time-major (T, B, ...). Only the recurrence h_{t-1} Wh runs per step:
input projections are one large product before the time loop (a row lookup for layer 0) and
weight gradients one large product after it (`project_inputs`, `input_gradients`).
"""

from __future__ import annotations

import math
import threading
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from .base import Abandoned, Cache, CharModel, ModelConfig, Params, Pool, Resets, State, softmax_cross_entropy

# Gate derivatives are computed in chunks of about this many floats (256 KiB in float32), small
# enough to stay in the L2 cache between being written and being read by the backward loop.
CHUNK_FLOATS = 1 << 16
# Up to this many rows (distinct characters), the gradient of the row lookup is a one-hot product.
ONEHOT_MAX_ROWS = 128
READOUT = "readout"  # the nn.Linear of an export: readout.weight, readout.bias


class RecurrentModel(CharModel):
    """A stack of recurrent layers over one-hot characters and a linear readout (see the module
    docstring). Subclasses declare `gates`, `torch_gates`, `torch_module`, `state_names` and write
    forward, backward, stepper and activations."""

    gates: ClassVar[tuple[str, ...]] = ()  # the blocks of every fused (., G*H) matrix, in order
    torch_gates: ClassVar[tuple[str, ...]] = ()  # the same blocks in PyTorch's order
    torch_module: ClassVar[str] = ""  # the attribute name of the export's module: "lstm"

    # -------------------------------------------------------------- facts
    @classmethod
    def extra_layer_params(cls, config: ModelConfig, layer: int) -> dict[str, tuple[int, ...]]:
        """Per-layer parameters beyond Wx, Wh and b (the GRU's bhn)."""
        return {}

    @classmethod
    def param_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        V, H, G = config.vocab_size, config.hidden, len(cls.gates)
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(config.layers):
            shapes[f"Wx{layer}"] = (V if layer == 0 else H, G * H)
            shapes[f"Wh{layer}"] = (H, G * H)
            shapes[f"b{layer}"] = (G * H,)
            shapes.update(cls.extra_layer_params(config, layer))
            if config.init_state == "learned":
                for name in cls.state_names:
                    shapes[initial_param(name, layer)] = (H,)
        shapes["Wy"] = (H, V)
        shapes["by"] = (V,)
        return shapes

    @classmethod
    def shape_text(cls, config: ModelConfig) -> str:
        """The size in a few words ("2 layers x 256 hidden"), and whether the initial state is learned."""
        learned = ", learned initial state" if config.init_state == "learned" else ""
        return super().shape_text(config) + learned

    @classmethod
    def init_params(cls, config: ModelConfig, rng: np.random.Generator) -> Params:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) weights as PyTorch's LSTM, GRU and RNN start, and zero
        biases (PyTorch draws its biases from the same uniform; zero is the usual choice); a
        learned initial state starts at zero, so the model starts as one without it."""
        k = 1.0 / np.sqrt(config.hidden)
        params: Params = {}
        for name, shape in cls.param_shapes(config).items():
            if len(shape) == 1:
                params[name] = np.zeros(shape, dtype=config.dtype)
            else:
                params[name] = rng.uniform(-k, k, size=shape).astype(config.dtype)
        return params

    @classmethod
    def train_flops_per_char(cls, config: ModelConfig) -> float:
        """Multiply-adds x 2 for one character's forward and backward pass (backward = 2x forward):
        the recurrent products of every layer, the input products of layers above the first (layer
        0's is a row lookup), and the readout."""
        H, G, L = config.hidden, len(cls.gates), config.layers
        forward = L * G * H * H + (L - 1) * G * H * H + H * config.vocab_size
        return 3 * 2 * forward

    @classmethod
    def activation_bytes(cls, config: ModelConfig, batch: int, seq_len: int) -> int:
        """Per layer the (T, B, G*H) gates and up to four (T+1, B, H) states (an LSTM's hidden,
        cell, tanh(cell), h_{t-1}); the (T, B, V) logits and their gradient."""
        itemsize = np.dtype(config.dtype).itemsize
        T, B, H, V = seq_len, batch, config.hidden, config.vocab_size
        per_layer = T * B * len(cls.gates) * H + 4 * (T + 1) * B * H
        return itemsize * (config.layers * per_layer + 3 * T * B * V)

    # ------------------------------------------------------------ PyTorch
    @classmethod
    def torch_hh_bias(cls, hidden: int) -> NDArray:
        """(G*H,) 1 where PyTorch's bias_hh is a parameter of ours (trained), 0 where it is held at
        zero (folded into b on import). Default: none of it."""
        return np.zeros(len(cls.gates) * hidden)

    @classmethod
    def gate_permutation(cls, hidden: int) -> NDArray[np.intp]:
        """(G*H,) indices P such that x[..., P] has PyTorch's gate order when x has ours."""
        blocks = [cls.gates.index(g) for g in cls.torch_gates]
        return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in blocks])

    @classmethod
    def layer_to_torch(cls, layer: dict[str, NDArray]) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """One layer's {"Wx", "Wh", "b", ...extra} as PyTorch's (weight_ih, weight_hh, bias_ih,
        bias_hh). Linear in the arrays, so it maps gradients and Adam's moments the same way."""
        Wx, Wh, b = layer["Wx"], layer["Wh"], layer["b"]
        P = cls.gate_permutation(Wh.shape[0])
        return (
            np.ascontiguousarray(Wx[:, P].T),  # (GH, in)
            np.ascontiguousarray(Wh[:, P].T),  # (GH, H)
            np.ascontiguousarray(b[P]),  # (GH,)
            cls.hh_bias_to_torch(layer)[P],  # (GH,)
        )

    @classmethod
    def hh_bias_to_torch(cls, layer: dict[str, NDArray]) -> NDArray:
        """PyTorch's bias_hh, in our gate order, for one layer: zero unless the cell keeps one."""
        return np.zeros_like(layer["b"])

    @classmethod
    def layer_from_torch(cls, w_ih: NDArray, w_hh: NDArray, b_ih: NDArray, b_hh: NDArray) -> dict[str, NDArray]:
        """The inverse of `layer_to_torch`: {"Wx", "Wh", "b", ...extra} from PyTorch's four. The
        parts of bias_hh the cell does not keep apart add to b."""
        H = w_hh.shape[1]
        P = cls.gate_permutation(H)
        inverse = np.argsort(P)  # from PyTorch's order back to ours
        kept = cls.torch_hh_bias(H)  # (GH,) in our order
        b_hh_ours = b_hh[inverse]
        out = {
            "Wx": np.ascontiguousarray(w_ih.T[:, inverse]),  # (in, GH)
            "Wh": np.ascontiguousarray(w_hh.T[:, inverse]),  # (H, GH)
            "b": np.ascontiguousarray(b_ih[inverse] + b_hh_ours * (1 - kept)),  # (GH,)
        }
        out.update(cls.hh_bias_from_torch(b_hh_ours))
        return out

    @classmethod
    def hh_bias_from_torch(cls, b_hh: NDArray) -> dict[str, NDArray]:
        """The cell's own parameters held in PyTorch's bias_hh (in our gate order): none by default."""
        return {}

    @classmethod
    def check_exportable(cls, config: ModelConfig) -> None:
        """ConfigError when the model's parameters do not all fit in its PyTorch module."""
        if config.init_state == "learned":
            raise ConfigError(
                f"this {cls.title} learned its initial state (--init-state learned), which {cls.torch_class} "
                "has no parameter for (it takes the initial state as an input); export a model trained "
                "with --init-state zeros"
            )

    @classmethod
    def torch_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        cls.check_exportable(config)
        m, H, GH = cls.torch_module, config.hidden, len(cls.gates) * config.hidden
        shapes: dict[str, tuple[int, ...]] = {}
        for k in range(config.layers):
            shapes[f"{m}.weight_ih_l{k}"] = (GH, config.vocab_size if k == 0 else H)
            shapes[f"{m}.weight_hh_l{k}"] = (GH, H)
            shapes[f"{m}.bias_ih_l{k}"] = (GH,)
            shapes[f"{m}.bias_hh_l{k}"] = (GH,)
        shapes[f"{READOUT}.weight"] = (config.vocab_size, H)
        shapes[f"{READOUT}.bias"] = (config.vocab_size,)
        return shapes

    @classmethod
    def layer_arrays(cls, params: Params, layer: int) -> dict[str, NDArray]:
        """One layer's parameters without the layer number: {"Wx": ..., "Wh": ..., "b": ..., ...}."""
        suffix = str(layer)
        return {k[: -len(suffix)]: v for k, v in params.items() if k.endswith(suffix) and k[: -len(suffix)].isalpha()}

    @classmethod
    def to_torch(cls, params: Params, config: ModelConfig) -> dict[str, NDArray]:
        cls.check_exportable(config)
        out: dict[str, NDArray] = {}
        m = cls.torch_module
        for k in range(config.layers):
            w_ih, w_hh, b_ih, b_hh = cls.layer_to_torch(cls.layer_arrays(params, k))
            out[f"{m}.weight_ih_l{k}"], out[f"{m}.weight_hh_l{k}"] = w_ih, w_hh
            out[f"{m}.bias_ih_l{k}"], out[f"{m}.bias_hh_l{k}"] = b_ih, b_hh
        out[f"{READOUT}.weight"] = np.ascontiguousarray(params["Wy"].T)  # (V, H)
        out[f"{READOUT}.bias"] = params["by"].copy()  # (V,)
        return out

    @classmethod
    def from_torch(cls, tensors: dict[str, NDArray], config: ModelConfig) -> Params:
        params: Params = {}
        m = cls.torch_module
        for k in range(config.layers):
            four = (tensors[f"{m}.{name}_l{k}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for name, v in cls.layer_from_torch(*four).items():
                params[f"{name}{k}"] = v
        params["Wy"] = np.ascontiguousarray(tensors[f"{READOUT}.weight"].T)  # (H, V)
        params["by"] = np.ascontiguousarray(tensors[f"{READOUT}.bias"])  # (V,)
        return {name: v.astype(config.dtype, copy=False) for name, v in params.items()}

    @classmethod
    def torch_config(cls, tensors: dict[str, NDArray], saved: dict[str, Any]) -> dict[str, Any] | None:
        m = cls.torch_module
        if f"{m}.weight_hh_l0" not in tensors:
            return None
        if f"{READOUT}.weight" not in tensors:
            raise ConfigError(f"no tensor {READOUT}.weight (an nn.Linear(H, V) under '{READOUT}.')")
        readout = tensors[f"{READOUT}.weight"]
        if readout.ndim != 2 or tensors[f"{m}.weight_hh_l0"].ndim != 2:
            raise ConfigError(f"{READOUT}.weight and {m}.weight_hh_l0 must be matrices")
        layers = 0
        while f"{m}.weight_hh_l{layers}" in tensors:
            layers += 1
        V, H = readout.shape
        return {"vocab_size": V, "hidden": H, "layers": layers}

    @classmethod
    def torch_vocab_axes(cls, config: ModelConfig) -> dict[str, int]:
        return {f"{cls.torch_module}.weight_ih_l0": 1, f"{READOUT}.weight": 0, f"{READOUT}.bias": 0}

    # ----------------------------------------------------------- instances
    def initial_state(self, batch: int = 1) -> State:
        """The blank state for `batch` streams (fresh arrays): zeros, or the learned initial state."""
        if self.config.init_state != "learned":
            return zero_state(self.config, len(self.state_names), batch)
        P, names = self.params, self.state_names
        return tuple(
            tuple(np.repeat(P[initial_param(name, layer)][None], batch, axis=0) for name in names)  # (B, H)
            for layer in range(self.config.layers)
        )

    def _blank(self, layer: int) -> tuple[NDArray, ...] | None:
        """The layer's learned initial state, an (H,) array per state array (the parameters
        themselves); None when the blank state is zeros."""
        if self.config.init_state != "learned":
            return None
        return tuple(self.params[initial_param(name, layer)] for name in self.state_names)

    def dropout_masks(self, T: int, B: int, rng: np.random.Generator) -> list[NDArray] | None:
        """Inverted-dropout masks (T, B, H) for each layer's output, or None when dropout is 0."""
        p = self.config.dropout
        if p == 0.0:
            return None
        H, dt = self.config.hidden, self.config.dtype
        keep = 1.0 - p
        return [
            ((rng.random((T, B, H)) < keep) / keep).astype(dt)  # (T, B, H)
            for _ in range(self.config.layers)
        ]

    # ------------------------------------------------------ forward and backward
    # Written once for every cell, layer by layer and a span of steps [t0, t1) at a time: the
    # serial pass below runs each layer over the whole window; a wavefront (Wavefront, below) runs
    # each layer on its own thread, a chunk of steps at a time. A cell writes only its layer's
    # arithmetic: _open_layer, _run_steps, _final_state, _open_backward, _back_steps, _close_backward.

    def _input_scale(self) -> NDArray | None:
        """(G*H,) column scale applied to the input weights and bias (None: none)."""
        return None

    def _open_layer(self, layer: int, T: int, B: int, state: tuple[NDArray, ...]) -> Any:
        """Take the layer's arrays for T steps x B streams from the pool (A (T, B, G*H) among them,
        and Hs (T+1, B, H) holding `state`'s h at [0]), put the initial state in, scale weights."""
        raise NotImplementedError

    def _run_steps(self, lc: Any, t0: int, t1: int, resets: Resets | None) -> None:
        """The recurrence over steps [t0, t1), A[t0:t1] holding x_t Wx + b (scaled); `resets`
        numbered from t0."""
        raise NotImplementedError

    def _final_state(self, lc: Any) -> tuple[NDArray, ...]:
        """The layer's state after the window (copies)."""
        raise NotImplementedError

    def _open_backward(self, lc: Any, B: int) -> None:
        """Buffers and the carried d loss / d state (zero) for the backward steps."""
        raise NotImplementedError

    def _back_steps(self, lc: Any, dHout: NDArray, t0: int, t1: int, resets: Resets | None, grads: Params) -> None:
        """Backward through steps t1-1 down to t0, given d loss / d h_t from above (dHout[t0:t1]):
        leaves d loss / d (x_t Wx + b) in A[t0:t1] and carries d loss / d state to step t0-1."""
        raise NotImplementedError

    def _close_backward(self, lc: Any, grads: Params) -> tuple[NDArray, ...]:
        """The recurrent weights' gradients (into `grads`), the buffers given back; d loss / d the
        initial state."""
        raise NotImplementedError

    def _release(self, lc: Any) -> None:
        """Give the layer's window arrays back to the pool (its input, the layer below's, stays)."""
        raise NotImplementedError

    def _blank_gradients(self, lc: Any, grads: Params) -> None:
        """The learned initial state's gradients (summed by `_back_steps` into lc.dblank) into `grads`."""
        if lc.dblank is not None:
            for name, g in zip(self.state_names, lc.dblank, strict=True):
                grads[initial_param(name, lc.layer)] = g

    def _scaled_inputs(self, layer: int) -> tuple[NDArray, NDArray]:
        """The layer's gate-scaled input weight and bias; for layer 0 the (V, G*H) lookup table
        Wx0 + b0 (scaled) and a zero bias."""
        P, scale = self.params, self._input_scale()
        Wx, b = P[f"Wx{layer}"], P[f"b{layer}"]
        if scale is not None:
            Wx, b = Wx * scale, b * scale
        if layer == 0:
            return Wx + b, np.zeros_like(b)
        return Wx, b

    def _project(self, lc: Any, t0: int, t1: int) -> None:
        """A[t0:t1] = x_t Wx + b for the steps [t0, t1) (see project_inputs)."""
        below = lc.x[t0:t1] if lc.layer > 0 else None
        project_inputs(lc.layer, lc.x[t0:t1], below, lc.Wx_s, lc.b_s, lc.A[t0:t1], table=lc.layer == 0)

    def _output(self, lc: Any, t0: int, t1: int) -> None:
        """Y[t0:t1]: the layer's output for those steps, after dropout."""
        if lc.mask is not None:
            np.multiply(lc.Hs[t0 + 1 : t1 + 1], lc.mask[t0:t1], out=lc.Y[t0:t1])

    def _start_layer(self, layer: int, x: NDArray, below: NDArray | None, state: State, masks: Any) -> Any:
        """Open layer `layer` for the window: its arrays, inputs, scaled weights, mask and output."""
        T, B = x.shape
        lc = self._open_layer(layer, T, B, state[layer])
        lc.layer = layer
        lc.x = x if layer == 0 else below
        lc.Wx_s, lc.b_s = self._scaled_inputs(layer)
        lc.mask = masks[layer] if masks is not None else None
        lc.blank = self._blank(layer)  # what reset streams start from (None: zeros)
        # d loss / d the learned initial state, summed over the streams that started from it
        lc.dblank = None if lc.blank is None else tuple(np.zeros_like(v) for v in lc.blank)
        lc.Y = np.empty_like(lc.Hs[1:]) if lc.mask is not None else lc.Hs[1:]  # (T, B, H)
        return lc

    def forward(
        self, x: NDArray, state: State, resets: Resets | None = None, masks: list[NDArray] | None = None
    ) -> tuple[NDArray, State, Cache]:
        """Logits (T, B, V) for ids `x` (T, B) from `state`; the final state; the cache for backward."""
        P = self.params
        T, B = x.shape
        H = self.config.hidden
        caches: list[Any] = []
        below: NDArray | None = None  # (T, B, H) output of the layer below
        new_state = []
        for layer in range(self.config.layers):
            lc = self._start_layer(layer, x, below, state, masks)
            self._project(lc, 0, T)
            self._run_steps(lc, 0, T, resets)
            self._output(lc, 0, T)
            lc.Hprev = reset_prev(lc.Hs, resets, lc.blank)  # (T, B, H) h_{t-1} as each step saw it
            caches.append(lc)
            new_state.append(self._final_state(lc))
            below = lc.Y
        assert below is not None
        top = below.reshape(T * B, H)  # (T*B, H)
        logits = top @ P["Wy"] + P["by"]  # (T*B, V)
        return logits.reshape(T, B, -1), tuple(new_state), Cache(caches, resets, top)

    def wavefront_layers(self) -> int:
        return self.config.layers

    def wavefront(
        self,
        x: NDArray,
        y: NDArray,
        state: State,
        resets: Resets | None = None,
        masks: list[NDArray] | None = None,
        weight: float = 1.0,
        span: int = 10,
    ) -> Wavefront:
        """A window's forward and backward laid out for one thread per layer (see Wavefront)."""
        return Wavefront(self, x, y, state, resets, masks, weight, span)

    def backward(self, dlogits: NDArray, cache: Cache) -> tuple[Params, State]:
        """Gradients of every parameter and of the initial state, given d loss / d logits (T, B, V).

        Spends the cache: its arrays are overwritten (gradients are written over the activations
        they no longer need) and recycled for the next forward pass, so each cache is
        backpropagated once.
        """
        cache.spend()
        cfg, P, pool = self.config, self.params, self._pool
        T, B, V = dlogits.shape
        H = cfg.hidden
        dl = dlogits.reshape(T * B, V)  # (T*B, V)
        grads: Params = {"Wy": cache.top.T @ dl, "by": dl.sum(axis=0)}
        dY: NDArray | None = (dl @ P["Wy"].T).reshape(T, B, H)  # (T, B, H) d loss / d top output (ours to modify)
        dstate: list[tuple[NDArray, ...]] = [()] * cfg.layers
        for layer in reversed(range(cfg.layers)):
            lc = cache.layers[layer]
            assert dY is not None
            dHout = dY
            if lc.mask is not None:
                dHout *= lc.mask  # (T, B, H) through the dropout on this layer's output
            self._open_backward(lc, B)
            self._back_steps(lc, dHout, 0, T, cache.resets, grads)
            dstate[layer] = self._close_backward(lc, grads)
            self._blank_gradients(lc, grads)
            dZ = lc.A.reshape(T * B, -1)  # (T*B, G*H) d loss / d (x_t Wx + b) for the whole window
            dY = input_gradients(layer, lc.x, dZ, P, pool, grads)  # None after layer 0
            self._release(lc)  # this layer is done; lc.x (the layer below's Hs) is not yet
        return grads, tuple(dstate)


class Wavefront:
    """One window's loss and gradients with each layer on its own thread, a span of steps at a time
    (W-Par's wavefront over layers and time, Sharma and Casas, ICS 2020).

    Forward, layer l runs span k while layer l+1 runs span k-1 (each span of layer l+1 starts once
    layer l has finished it); the top layer's thread then reads out, scores the window and starts
    backward, where layer l+1 runs span k (and d loss / d its input for that span) while layer l
    runs span k+1. Each layer's weight gradients come from its own thread. The arithmetic is the
    model's own (RecurrentModel's layer methods), so the results equal the serial pass's but for
    rounding (a GRU's recurrent gradients are summed span by span); they are the same for the
    same spans every time.

    Call `run(layer)` from L threads at once (one per layer), then `result()`. A failure in one
    thread wakes the others, which stop with it.
    """

    def __init__(
        self,
        model: RecurrentModel,
        x: NDArray,
        y: NDArray,
        state: State,
        resets: Resets | None,
        masks: list[NDArray] | None,
        weight: float,
        span: int,
    ):
        T, B = x.shape
        L = model.config.layers
        self.model, self.y, self.resets, self.weight = model, y, resets, weight
        self.T, self.B = T, B
        self.spans = [(t0, min(T, t0 + span)) for t0 in range(0, T, max(1, span))]
        self.layers: list[Any] = []
        below: NDArray | None = None
        for layer in range(L):  # every layer's arrays, taken here (one thread)
            lc = model._start_layer(layer, x, below, state, masks)
            below = lc.Y
            self.layers.append(lc)
        H = model.config.hidden
        # d loss / d each layer's output, filled span by span by the layer above (the top's by the loss)
        self.dY: list[NDArray] = [np.empty((T, B, H), model.config.dtype) for _ in range(L - 1)]
        self.forward_done = [[threading.Event() for _ in self.spans] for _ in range(L)]
        self.backward_done = [[threading.Event() for _ in self.spans] for _ in range(L)]
        self.grads: list[Params] = [{} for _ in range(L)]  # each layer's, from its own thread
        self.dstate: list[tuple[NDArray, ...]] = [() for _ in range(L)]
        self.new_state: list[tuple[NDArray, ...]] = [() for _ in range(L)]
        self.loss = math.nan
        self.top_grads: Params = {}
        self.failed = False

    def _wait(self, event: threading.Event) -> None:
        event.wait()
        if self.failed:
            raise Abandoned("another layer's thread failed")

    def run(self, layer: int) -> None:
        """Layer `layer`'s whole part of the window (one thread per layer)."""
        try:
            self._run(layer)
        except BaseException:
            self.failed = True  # wake everyone waiting on anything
            for events in self.forward_done + self.backward_done:
                for e in events:
                    e.set()
            raise

    def _run(self, layer: int) -> None:
        m, lc, resets = self.model, self.layers[layer], self.resets
        L, T, B = len(self.layers), self.T, self.B
        for k, (t0, t1) in enumerate(self.spans):
            if layer > 0:
                self._wait(self.forward_done[layer - 1][k])
            m._project(lc, t0, t1)
            m._run_steps(lc, t0, t1, resets)
            m._output(lc, t0, t1)
            self.forward_done[layer][k].set()
        lc.Hprev = reset_prev(lc.Hs, resets, lc.blank)
        self.new_state[layer] = m._final_state(lc)
        grads = self.grads[layer]
        if layer == L - 1:
            dHout = self._read_out(lc)
        else:
            dHout = self.dY[layer]
        m._open_backward(lc, B)
        for k in reversed(range(len(self.spans))):
            t0, t1 = self.spans[k]
            if layer < L - 1:
                self._wait(self.backward_done[layer + 1][k])
            if lc.mask is not None:
                dHout[t0:t1] *= lc.mask[t0:t1]  # through the dropout on this layer's output
            m._back_steps(lc, dHout, t0, t1, resets, grads)
            if layer > 0:  # d loss / d this layer's input for these steps, for the layer below
                n = (t1 - t0) * B
                dZ = lc.A[t0:t1].reshape(n, -1)
                np.matmul(dZ, m.params[f"Wx{layer}"].T, out=self.dY[layer - 1][t0:t1].reshape(n, -1))
            self.backward_done[layer][k].set()
        self.dstate[layer] = m._close_backward(lc, grads)
        m._blank_gradients(lc, grads)
        input_weight_gradients(layer, lc.x, lc.A.reshape(T * B, -1), m.params, m._pool, grads)

    def _read_out(self, lc: Any) -> NDArray:
        """The readout, the loss and its gradient, from the top layer's output: d loss / d it."""
        P, T, B = self.model.params, self.T, self.B
        H = lc.Y.shape[-1]
        top = lc.Y.reshape(T * B, H)  # (T*B, H)
        logits = top @ P["Wy"] + P["by"]  # (T*B, V)
        self.loss, dl = softmax_cross_entropy(logits, self.y.reshape(-1))
        if self.weight != 1.0:
            dl *= self.weight
        self.top_grads = {"Wy": top.T @ dl, "by": dl.sum(axis=0)}
        return (dl @ P["Wy"].T).reshape(T, B, H)  # (T, B, H)

    def result(self) -> tuple[float, Params, State]:
        """The window's mean loss, the gradients (of `weight` times it; in the order the serial
        backward pass makes them, top down, which the global norm adds them in) and the final
        state; the layers' arrays go back to the pool."""
        every: Params = dict(self.top_grads)
        for g in reversed(self.grads):
            every.update(g)
        for lc in self.layers:
            self.model._release(lc)
        return self.loss, every, tuple(self.new_state)


def zero_state(config: ModelConfig, arrays: int, batch: int) -> State:
    """The fresh (all-zero) state for `batch` streams: `arrays` (B, H) arrays per layer."""
    H, dt = config.hidden, config.dtype
    return tuple(tuple(np.zeros((batch, H), dt) for _ in range(arrays)) for _ in range(config.layers))


def repeat_state(state: State, batch: int) -> State:
    """A batch-of-one `state` repeated for `batch` streams (fresh arrays)."""
    return tuple(tuple(np.repeat(a, batch, axis=0) for a in layer) for layer in state)


def sigmoid(z: NDArray) -> NDArray:
    """1 / (1 + e^-z), for the inside view's plain step-by-step forward pass."""
    return 1.0 / (1.0 + np.exp(-z))


def scatter_rows(ids: NDArray, dz: NDArray, rows: int, scratch: NDArray | None = None) -> NDArray:
    """sum of dz[n] into row ids[n] of a (rows, GH) matrix: the gradient of the row lookup.

    For a small vocabulary a one-hot (rows, N) @ dz product: one BLAS call that reads dz once.
    It does `rows` times the additions needed, so for a large one (a CJK text has thousands of
    symbols) positions are sorted by id and one sum per character present adds its rows: N x GH
    additions, but dz is read twice and written once more. Measured here: with 32 symbols the
    product makes a whole training step 4-7% faster (B=32-64); with 3,000 symbols the sort alone
    is 8-13x faster than the product (0.95 vs 7.8 ms at N=384, 3.2 vs 43 ms at N=2048).
    np.add.at is slower than both. `scratch`, shaped like dz, receives the sorted rows.
    """
    if rows <= ONEHOT_MAX_ROWS:
        N = ids.shape[0]
        onehot = np.zeros((rows, N), dtype=dz.dtype)  # (V, N)
        onehot[ids, np.arange(N)] = 1.0
        return onehot @ dz  # (V, GH)
    order = np.argsort(ids, kind="stable")  # (N,) positions grouped by character
    counts = np.bincount(ids, minlength=rows)  # (rows,)
    ends = np.cumsum(counts)
    grouped = np.take(dz, order, axis=0, out=scratch)  # (N, GH)
    out = np.zeros((rows, dz.shape[1]), dtype=dz.dtype)
    for v in np.flatnonzero(counts).tolist():
        grouped[ends[v] - counts[v] : ends[v]].sum(axis=0, out=out[v])
    return out


def project_inputs(
    layer: int, x: NDArray, below: NDArray | None, Wx_s: NDArray, b_s: NDArray, A: NDArray, table: bool = False
) -> None:
    """A (T, B, G*H) = x_t Wx + b for every step at once, from (gate-scaled) Wx_s, b_s.

    Layer 0 reads ids `x` (T, B): a one-hot x_t times Wx is a row of Wx, so this is one lookup in
    the (V, G*H) table Wx + b (`table`: Wx_s is that table already) (ids are checked first
    because mode="clip" would hide a bad one; mode="raise" would buffer the whole output). Higher
    layers read `below` (T, B, H), the layer below's output: one large product.
    """
    T, B, GH = A.shape
    if layer == 0:
        V = Wx_s.shape[0]
        if x.size and (int(x.min()) < 0 or int(x.max()) >= V):
            raise IndexError(f"character ids must be in [0, {V}), got {x.min()}..{x.max()}")
        np.take(Wx_s if table else Wx_s + b_s, x, axis=0, out=A, mode="clip")
    else:
        assert below is not None
        np.matmul(below.reshape(T * B, -1), Wx_s, out=A.reshape(T * B, GH))
        A += b_s


def input_gradients(layer: int, x: NDArray, dZ: NDArray, P: Params, pool: Pool, grads: Params) -> NDArray | None:
    """Fill grads Wx{layer} and b{layer} from dZ (T*B, G*H) = d loss / d (x_t Wx + b); return
    d loss / d the layer's input (T, B, H) for the layer below (None for layer 0, whose input is ids).

    The weight gradient is one product over the whole window (for layer 0 a scatter of dZ rows
    into the rows the ids looked up; see scatter_rows).
    """
    input_weight_gradients(layer, x, dZ, P, pool, grads)
    if layer == 0:
        return None
    T, B, H = x.shape
    return (dZ @ P[f"Wx{layer}"].T).reshape(T, B, H)  # (T, B, H) into the layer below


def input_weight_gradients(layer: int, x: NDArray, dZ: NDArray, P: Params, pool: Pool, grads: Params) -> None:
    """Fill grads Wx{layer} and b{layer} from dZ (T*B, G*H) = d loss / d (x_t Wx + b)."""
    if layer == 0:
        V = P["Wx0"].shape[0]
        scratch = pool.take(dZ.shape, dZ.dtype) if V > ONEHOT_MAX_ROWS else None
        grads["Wx0"] = scatter_rows(x.reshape(-1), dZ, V, scratch)  # (V, G*H)
        if scratch is not None:
            pool.give(scratch)
        # every position reads exactly one row of Wx0, so the bias gradient (the sum of dz over
        # all T*B positions) is the sum of the V rows just accumulated: no pass over dZ
        grads["b0"] = grads["Wx0"].sum(axis=0)  # (G*H,)
        return
    H = x.shape[-1]
    T, B = x.shape[:2]
    grads[f"b{layer}"] = dZ.sum(axis=0)  # (G*H,)
    grads[f"Wx{layer}"] = x.reshape(T * B, H).T @ dZ  # (H, G*H)


def reset_prev(Hs: NDArray, resets: Resets | None, blank: tuple[NDArray, ...] | None = None) -> NDArray:
    """(T, B, H) h_{t-1} as each step saw it: Hs[:-1] with the reset streams' h set to the blank
    one (`blank`[0], the learned h0 (H,); zero when None)."""
    Hprev = Hs[:-1]
    if resets:
        Hprev = Hprev.copy()
        for t, streams in resets.items():
            Hprev[t, streams] = 0.0 if blank is None else blank[0]
    return Hprev


def initial_param(state_name: str, layer: int) -> str:
    """The name of layer `layer`'s learned initial value of the state array `state_name`: h0{l}, c0{l}."""
    return f"{state_name}0{layer}"


def accumulate_blank(dblank: NDArray | None, dnext: NDArray, streams: NDArray) -> None:
    """At a reset: add d loss / d the state the reset `streams` started from (rows of `dnext`
    (B, H)) into the learned initial state's gradient `dblank` (H,) (None: a zero start, nothing
    to learn), then drop it from `dnext`: those streams never saw the state carried before."""
    if dblank is not None:
        dblank += dnext[streams].sum(axis=0)
    dnext[streams] = 0.0


class StreamBuffers:
    """Where each layer's output h lives in a one-character-at-a-time stream, so that no layer's
    input has to be assembled by copying (shared by every cell's Stream).

    Every layer l >= 1 reads one vector u_l = [h_{l-1}, h_l, 1] (2H+1,) (the layer below's new
    output, its own previous output, a 1 for the bias row) and writes its new h over the middle
    third. Layer 0 keeps its h in the first third of u_1. The readout reads `top` = [h_top, 1],
    the last 2/3 of the top layer's u (or, with one layer, a separate (H+1,) vector). Only a
    middle layer (L >= 3) copies its h up into the next layer's u.
    """

    def __init__(self, H: int, L: int, dt: str, hs: list[NDArray]):
        self.u = [np.empty(2 * H + 1, dt) for _ in range(1, L)]  # (2H+1,) per layer >= 1
        self.top = np.empty(H + 1, dt) if L == 1 else self.u[-1][H:]  # (H+1,) [h_top, 1]
        # h_l for every layer: views into the buffers above
        self.h = [self.top[:H] if L == 1 else self.u[0][:H]] + [u[H : 2 * H] for u in self.u]
        for layer, h in enumerate(hs):
            self.h[layer][:] = np.reshape(h, H)
        for layer, u in enumerate(self.u, start=1):
            u[2 * H] = 1.0
            if layer >= 2:
                u[:H] = self.h[layer - 1]
        self.top[H] = 1.0
