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

Speed notes. Arrays are time-major (T, B, ...). Only the recurrence h_{t-1} Wh runs per step:
input projections are one large product before the time loop (a row lookup for layer 0) and
weight gradients one large product after it (`project_inputs`, `input_gradients`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError
from .base import CharModel, ModelConfig, Params, Pool, Resets, State

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
        shapes["Wy"] = (H, V)
        shapes["by"] = (V,)
        return shapes

    @classmethod
    def init_params(cls, config: ModelConfig, rng: np.random.Generator) -> Params:
        """Uniform(-1/sqrt(H), 1/sqrt(H)) weights as PyTorch's LSTM, GRU and RNN start, and zero
        biases (PyTorch draws its biases from the same uniform; zero is the usual choice)."""
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
    def torch_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
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
        return zero_state(self.config, len(self.state_names), batch)

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


def project_inputs(layer: int, x: NDArray, below: NDArray | None, Wx_s: NDArray, b_s: NDArray, A: NDArray) -> None:
    """A (T, B, G*H) = x_t Wx + b for every step at once, from (gate-scaled) Wx_s, b_s.

    Layer 0 reads ids `x` (T, B): a one-hot x_t times Wx is a row of Wx, so this is one lookup in
    the (V, G*H) table Wx + b (ids are checked first because mode="clip" would hide a bad one;
    mode="raise" would buffer the whole output). Higher layers read `below` (T, B, H), the layer
    below's output: one large product.
    """
    T, B, GH = A.shape
    if layer == 0:
        V = Wx_s.shape[0]
        if x.size and (int(x.min()) < 0 or int(x.max()) >= V):
            raise IndexError(f"character ids must be in [0, {V}), got {x.min()}..{x.max()}")
        np.take(Wx_s + b_s, x, axis=0, out=A, mode="clip")
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
    if layer == 0:
        V = P["Wx0"].shape[0]
        scratch = pool.take(dZ.shape, dZ.dtype) if V > ONEHOT_MAX_ROWS else None
        grads["Wx0"] = scatter_rows(x.reshape(-1), dZ, V, scratch)  # (V, G*H)
        if scratch is not None:
            pool.give(scratch)
        # every position reads exactly one row of Wx0, so the bias gradient (the sum of dz over
        # all T*B positions) is the sum of the V rows just accumulated: no pass over dZ
        grads["b0"] = grads["Wx0"].sum(axis=0)  # (G*H,)
        return None
    H = x.shape[-1]
    T, B = x.shape[:2]
    grads[f"b{layer}"] = dZ.sum(axis=0)  # (G*H,)
    grads[f"Wx{layer}"] = x.reshape(T * B, H).T @ dZ  # (H, G*H)
    return (dZ @ P[f"Wx{layer}"].T).reshape(T, B, H)  # (T, B, H) into the layer below


def reset_prev(Hs: NDArray, resets: Resets | None) -> NDArray:
    """(T, B, H) h_{t-1} as each step saw it: Hs[:-1] with the reset streams zeroed."""
    Hprev = Hs[:-1]
    if resets:
        Hprev = Hprev.copy()
        for t, streams in resets.items():
            Hprev[t, streams] = 0.0
    return Hprev


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
