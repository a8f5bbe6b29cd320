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

This module also holds what every cell shares: ModelConfig (whose `cell` picks the LSTM here,
the GRU in core/gru.py or the vanilla RNN in core/rnn.py), the CharModel base class with the
interface all three models have, softmax/cross-entropy, the buffer pool, and `create_model`.

Speed notes. Arrays are time-major (T, B, ...). Only the recurrence h_{t-1} Wh runs per
step: input projections are one large product before the time loop, and weight gradients one
large product after it. The three sigmoids and the tanh are evaluated by a single tanh call,
using sigmoid(z) = (1 + tanh(z / 2)) / 2: the i, f, o columns of the weights are pre-scaled by
1/2 (GATE_SCALE) so one tanh of the whole (B, 4H) block gives all four gates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError

# The order of the four gate blocks inside every fused (., 4H) matrix.
GATES = ("i", "f", "o", "g")

# The recurrent cells there are, each with its model class (see `model_class`).
CELLS = ("lstm", "gru", "rnn")

Params = dict[str, NDArray]
# Per layer a tuple of (B, H) arrays named by ModelConfig.state_names: (h, c) for the LSTM,
# (h,) for the GRU and the RNN.
State = tuple[tuple[NDArray, ...], ...]
# Steps at which some streams start afresh: t -> indices of the streams whose state is zeroed
# before step t (a stream that wrapped around the end of the text).
Resets = dict[int, NDArray]


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the network."""

    vocab_size: int  # V: distinct characters, the size of input and output
    hidden: int = 128  # H: units per layer
    layers: int = 1  # L: stacked recurrent layers
    dropout: float = 0.0  # probability of zeroing a layer output while training (0 = off)
    dtype: str = "float32"  # float32 to train fast; float64 for gradient checks
    cell: str = "lstm"  # the recurrent cell: lstm, gru or rnn

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ConfigError(f"vocabulary size must be at least 2, got {self.vocab_size}")
        if not 1 <= self.hidden <= 8192:
            raise ConfigError(f"hidden size must be between 1 and 8192, got {self.hidden}")
        if not 1 <= self.layers <= 16:
            raise ConfigError(f"layers must be between 1 and 16, got {self.layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell {self.cell!r}; choose {', '.join(CELLS)}")

    @property
    def gates(self) -> int:
        """Blocks of H columns in the fused Wx, Wh and b: 4 (LSTM i f o g), 3 (GRU r z n), 1 (RNN)."""
        return {"lstm": 4, "gru": 3, "rnn": 1}[self.cell]

    @property
    def state_names(self) -> tuple[str, ...]:
        """The arrays of one layer's state, in State order: ("h", "c") for the LSTM, else ("h",)."""
        return ("h", "c") if self.cell == "lstm" else ("h",)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in a fixed order."""
        V, H, G = self.vocab_size, self.hidden, self.gates
        shapes: dict[str, tuple[int, ...]] = {}
        for layer in range(self.layers):
            shapes[f"Wx{layer}"] = (V if layer == 0 else H, G * H)
            shapes[f"Wh{layer}"] = (H, G * H)
            shapes[f"b{layer}"] = (G * H,)
            if self.cell == "gru":
                shapes[f"bhn{layer}"] = (H,)  # the candidate's recurrent bias, inside r * (...)
        shapes["Wy"] = (H, V)
        shapes["by"] = (V,)
        return shapes

    def num_params(self) -> int:
        return sum(int(np.prod(s)) for s in self.param_shapes().values())


def gate_scale(hidden: int, dtype: np.dtype | str) -> NDArray:
    """(4H,) column scale: 1/2 on the sigmoid gates (i, f, o), 1 on the tanh candidate (g)."""
    s = np.full(4 * hidden, 0.5, dtype=dtype)
    s[3 * hidden :] = 1.0
    return s


def init_params(config: ModelConfig, rng: np.random.Generator) -> Params:
    """Uniform(-1/sqrt(H), 1/sqrt(H)) weights as PyTorch's LSTM, GRU and RNN start, and zero
    biases (PyTorch draws its biases from the same uniform; zero is the usual choice, and the
    LSTM's forget bias starts at 1 so that it remembers by default)."""
    H = config.hidden
    k = 1.0 / np.sqrt(H)
    params: Params = {}
    for name, shape in config.param_shapes().items():
        if name.startswith(("b", "by")):
            params[name] = np.zeros(shape, dtype=config.dtype)
        else:
            params[name] = rng.uniform(-k, k, size=shape).astype(config.dtype)
    if config.cell == "lstm":
        for layer in range(config.layers):
            params[f"b{layer}"][H : 2 * H] = 1.0  # forget gate starts open: remember by default
    return params


def zero_state(config: ModelConfig, batch: int) -> State:
    """The fresh (all-zero) state for `batch` streams."""
    H, dt, n = config.hidden, config.dtype, len(config.state_names)
    return tuple(tuple(np.zeros((batch, H), dt) for _ in range(n)) for _ in range(config.layers))


def softmax_cross_entropy(logits: NDArray, targets: NDArray) -> tuple[float, NDArray]:
    """Mean cross-entropy in nats of `logits` (N, V) against `targets` (N,), and d loss / d logits."""
    N = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, V) stable: max is 0
    exp = np.exp(shifted)  # (N, V)
    sums = exp.sum(axis=1, keepdims=True)  # (N, 1)
    rows = np.arange(N)
    loss = float(np.mean(np.log(sums[:, 0]) - shifted[rows, targets]))
    dlogits = exp / sums  # (N, V) softmax
    dlogits[rows, targets] -= 1.0
    dlogits /= N
    return loss, dlogits


def log_softmax(logits: NDArray) -> NDArray:
    """log p for every row of `logits` (..., V), computed stably."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


# Up to this many rows (distinct characters), the gradient of the row lookup is a one-hot product.
_ONEHOT_MAX_ROWS = 128


def _scatter_rows(ids: NDArray, dz: NDArray, rows: int, scratch: NDArray | None = None) -> NDArray:
    """sum of dz[n] into row ids[n] of a (rows, 4H) matrix: the gradient of the row lookup.

    For a small vocabulary a one-hot (rows, N) @ dz product: one BLAS call that reads dz once.
    It does `rows` times the additions needed, so for a large one (a CJK text has thousands of
    symbols) positions are sorted by id and one sum per character present adds its rows: N x 4H
    additions, but dz is read twice and written once more. Measured here: with 32 symbols the
    product makes a whole training step 4-7% faster (B=32-64); with 3,000 symbols the sort alone
    is 8-13x faster than the product (0.95 vs 7.8 ms at N=384, 3.2 vs 43 ms at N=2048).
    np.add.at is slower than both. `scratch`, shaped like dz, receives the sorted rows.
    """
    if rows <= _ONEHOT_MAX_ROWS:
        N = ids.shape[0]
        onehot = np.zeros((rows, N), dtype=dz.dtype)  # (V, N)
        onehot[ids, np.arange(N)] = 1.0
        return onehot @ dz  # (V, 4H)
    order = np.argsort(ids, kind="stable")  # (N,) positions grouped by character
    counts = np.bincount(ids, minlength=rows)  # (rows,)
    ends = np.cumsum(counts)
    grouped = np.take(dz, order, axis=0, out=scratch)  # (N, 4H)
    out = np.zeros((rows, dz.shape[1]), dtype=dz.dtype)
    for v in np.flatnonzero(counts).tolist():
        grouped[ends[v] - counts[v] : ends[v]].sum(axis=0, out=out[v])
    return out


# Gate derivatives are computed in chunks of about this many floats (256 KiB in float32), small
# enough to stay in the L2 cache between being written and being read by the backward loop.
_CHUNK_FLOATS = 1 << 16


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


def _recurrence(A: NDArray, Hs: NDArray, C: NDArray, TC: NDArray, Wh_s: NDArray, resets: Resets | None) -> None:
    """The time loop of one layer, in place: the only part that must run step by step.

    A (T, B, 4H) holds x_t Wx + b (gate-scaled) and becomes the activations i, f, o, g;
    Hs, C (T+1, B, H) hold the initial state at [0] and receive h_t, c_t at [t+1];
    TC (T, B, H) receives tanh(c_t). Wh_s (H, 4H) is the gate-scaled recurrent weight.
    """
    T, B, H = TC.shape
    ig = np.empty((B, H), A.dtype)  # (B, H) scratch for i * g
    hz = np.empty((B, 4 * H), A.dtype)  # (B, 4H) scratch for h_{t-1} Wh
    # Per-step cost at small B is NumPy call overhead, so: ufuncs as locals (no attribute
    # lookups in the loop) and explicit out= calls rather than in-place operators.
    dot, add, mul, tanh = np.dot, np.add, np.multiply, np.tanh
    Gi, Gf, Go, Gg = A[..., :H], A[..., H : 2 * H], A[..., 2 * H : 3 * H], A[..., 3 * H :]  # (T, B, H) gate views
    S = A[..., : 3 * H]  # (T, B, 3H) the sigmoid gates
    for t in range(T):
        h_prev = Hs[t]
        if resets and t in resets:  # these streams start afresh at step t
            h_prev = h_prev.copy()
            h_prev[resets[t]] = 0.0
            C[t, resets[t]] = 0.0
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


class _Pool:
    """Spare arrays for forward/backward, reused from one training step to the next.

    A training step allocates tens of megabytes of activations at the larger sizes (A alone is
    T*B*4H floats per layer). Fresh arrays that big come straight from the kernel (mmap) and
    page-fault on first touch every step; reused ones are already mapped and often in cache.
    Arrays come back only from `backward`, once its cache is spent, so nothing the caller still
    holds (logits, state, gradients: all freshly allocated) is ever handed out again. A forward
    pass that is never backpropagated (evaluation) simply keeps its arrays.
    """

    MAX_PER_SHAPE = 4  # spares kept per (shape, dtype); more would only hold memory

    def __init__(self) -> None:
        self._free: dict[tuple[tuple[int, ...], str], list[NDArray]] = {}

    def take(self, shape: tuple[int, ...], dtype: np.dtype | str) -> NDArray:
        """An uninitialised array of `shape`: a spare one if there is one."""
        try:
            return self._free[(shape, np.dtype(dtype).str)].pop()  # list.pop is atomic: thread-safe
        except (KeyError, IndexError):
            return np.empty(shape, dtype)

    def give(self, *arrays: NDArray) -> None:
        """Return arrays nobody else holds to the spares."""
        for a in arrays:
            spares = self._free.setdefault((a.shape, a.dtype.str), [])
            if len(spares) < self.MAX_PER_SHAPE:
                spares.append(a)


class LayerCache:
    """What one layer's backward pass needs from its forward pass."""

    __slots__ = ("x", "A", "Hs", "Hprev", "C", "TC", "mask", "Y")

    def __init__(self) -> None:
        self.x: NDArray  # (T, B) ids for layer 0, else (T, B, H) the layer below's output
        self.A: NDArray  # (T, B, 4H) gate activations i, f, o in (0, 1) and g in (-1, 1)
        self.Hs: NDArray  # (T+1, B, H) hidden states, Hs[0] the initial one
        self.Hprev: NDArray  # (T, B, H) h_{t-1} as the step saw it (resets zeroed)
        self.C: NDArray  # (T+1, B, H) cell states, C[t] as step t saw it
        self.TC: NDArray  # (T, B, H) tanh(c_t)
        self.mask: NDArray | None  # (T, B, H) scaled dropout mask on the output, or None
        self.Y: NDArray  # (T, B, H) the layer's output after dropout


class Cache:
    """Everything `backward` needs from `forward`."""

    __slots__ = ("layers", "resets", "top", "spent")

    def __init__(self, layers: list[Any], resets: Resets | None, top: NDArray):
        self.layers = layers  # one LayerCache per layer, of the cell's own module
        self.resets = resets
        self.top = top  # (T*B, H) readout input
        self.spent = False  # backward has run: its arrays were overwritten and recycled


class StreamLike(Protocol):
    """One stream of text read a character at a time (each cell's Stream)."""

    def feed(self, char_id: int) -> NDArray: ...

    def state(self) -> State: ...


class StepperLike(Protocol):
    """One-step inference on a frozen copy of a model's weights (each cell's Stepper)."""

    config: ModelConfig

    def initial_state(self, batch: int = 1) -> State: ...

    def step(self, ids: NDArray, state: State) -> tuple[NDArray, State]: ...

    def prime(self, ids: NDArray, state: State | None = None) -> tuple[NDArray | None, State]: ...

    def stream(self, state: State | None = None) -> StreamLike: ...


_M = TypeVar("_M", bound="CharModel")


class CharModel:
    """What every cell's model shares: a config and a dict of parameters, with forward/backward
    over a window and one-step inference. Subclasses (CharLSTM here, CharGRU in core/gru.py,
    CharRNN in core/rnn.py) write their own `forward`, `backward` and `stepper`."""

    cell: ClassVar[str] = ""  # the ModelConfig.cell this class implements

    def __init__(self, config: ModelConfig, params: Params):
        if config.cell != self.cell:
            raise ConfigError(f"a {type(self).__name__} cannot hold a {config.cell} configuration")
        shapes = config.param_shapes()
        if set(params) != set(shapes):
            raise ConfigError("parameter names do not match the model configuration")
        for name, shape in shapes.items():
            if params[name].shape != shape:
                raise ConfigError(f"parameter {name} has shape {params[name].shape}, expected {shape}")
        self.config = config
        self.params = params
        self._pool = _Pool()

    @classmethod
    def create(cls: type[_M], config: ModelConfig, rng: np.random.Generator) -> _M:
        """A freshly initialised model."""
        return cls(config, init_params(config, rng))

    def copy(self: _M) -> _M:
        """An independent copy of the weights (a snapshot for another thread)."""
        return type(self)(self.config, {k: v.copy() for k, v in self.params.items()})

    def initial_state(self, batch: int = 1) -> State:
        return zero_state(self.config, batch)

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

    def forward(
        self,
        x: NDArray,
        state: State,
        resets: Resets | None = None,
        masks: list[NDArray] | None = None,
    ) -> tuple[NDArray, State, Cache]:
        """Logits (T, B, V) for ids `x` (T, B) from `state`; the final state; the cache for backward."""
        raise NotImplementedError

    def backward(self, dlogits: NDArray, cache: Cache) -> tuple[Params, State]:
        """Gradients of every parameter and of the initial state, given d loss / d logits (T, B, V)."""
        raise NotImplementedError

    def loss_and_grads(
        self,
        x: NDArray,
        y: NDArray,
        state: State,
        resets: Resets | None = None,
        masks: list[NDArray] | None = None,
    ) -> tuple[float, Params, State]:
        """Mean loss in nats per character of predicting `y` from `x` (both (T, B)), its gradients,
        and the final state to carry into the next window."""
        logits, new_state, cache = self.forward(x, state, resets, masks)
        T, B, V = logits.shape
        loss, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))
        grads, _ = self.backward(dlogits.reshape(T, B, V), cache)
        return loss, grads, new_state

    def stepper(self) -> StepperLike:
        """One-step inference on a frozen copy of the current weights."""
        raise NotImplementedError


def model_class(cell: str) -> type[CharModel]:
    """The model class of `cell` ("lstm", "gru" or "rnn")."""
    if cell == "lstm":
        return CharLSTM
    if cell == "gru":
        from .gru import CharGRU  # imported here: core/gru.py builds on this module

        return CharGRU
    if cell == "rnn":
        from .rnn import CharRNN

        return CharRNN
    raise ConfigError(f"unknown cell {cell!r}; choose {', '.join(CELLS)}")


def create_model(config: ModelConfig, rng: np.random.Generator) -> CharModel:
    """A freshly initialised model of the cell `config.cell`."""
    return model_class(config.cell).create(config, rng)


def load_model(config: ModelConfig, params: Params) -> CharModel:
    """The model of the cell `config.cell` holding `params` (checked against the config)."""
    return model_class(config.cell)(config, params)


# ----------------------------------------------------------------- shared by the cells
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


def input_gradients(layer: int, x: NDArray, dZ: NDArray, P: Params, pool: _Pool, grads: Params) -> NDArray | None:
    """Fill grads Wx{layer} and b{layer} from dZ (T*B, G*H) = d loss / d (x_t Wx + b); return
    d loss / d the layer's input (T, B, H) for the layer below (None for layer 0, whose input is ids).

    The weight gradient is one product over the whole window (for layer 0 a scatter of dZ rows
    into the rows the ids looked up; see _scatter_rows).
    """
    if layer == 0:
        V = P["Wx0"].shape[0]
        scratch = pool.take(dZ.shape, dZ.dtype) if V > _ONEHOT_MAX_ROWS else None
        grads["Wx0"] = _scatter_rows(x.reshape(-1), dZ, V, scratch)  # (V, G*H)
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
    input has to be assembled by copying (shared by every cell's Stream; see Stream below).

    Every layer l >= 1 reads one vector u_l = [h_{l-1}, h_l, 1] (2H+1,) (the layer below's new
    output, its own previous output, a 1 for the bias row) and writes its new h over the middle
    third. Layer 0 keeps its h in the first third of u_1. The readout reads `top` = [h_top, 1],
    the last 2/3 of the top layer's u (or, with one layer, a separate (H+1,) vector).
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


class CharLSTM(CharModel):
    """The LSTM model: a config and a dict of parameters, with forward/backward over a window."""

    cell = "lstm"

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: NDArray,
        state: State,
        resets: Resets | None = None,
        masks: list[NDArray] | None = None,
    ) -> tuple[NDArray, State, Cache]:
        """Logits (T, B, V) for ids `x` (T, B) from `state`; the final state; the cache for backward."""
        cfg, P, pool = self.config, self.params, self._pool
        T, B = x.shape
        H, dt = cfg.hidden, cfg.dtype
        scale = gate_scale(H, dt)  # (4H,)
        caches: list[LayerCache] = []
        below: NDArray | None = None  # (T, B, H) output of the layer below
        new_state = []
        for layer in range(cfg.layers):
            A = pool.take((T, B, 4 * H), dt)  # (T, B, 4H) preactivations, then activations
            project_inputs(layer, x, below, P[f"Wx{layer}"] * scale, P[f"b{layer}"] * scale, A)
            Hs = pool.take((T + 1, B, H), dt)  # (T+1, B, H) hidden states, Hs[0] the initial one
            C = pool.take((T + 1, B, H), dt)  # (T+1, B, H) cell states
            TC = pool.take((T, B, H), dt)  # (T, B, H) tanh(c_t)
            Hs[0], C[0] = state[layer]
            _recurrence(A, Hs, C, TC, P[f"Wh{layer}"] * scale, resets)  # (scaled Wh: one tanh gives all gates)
            Hprev = reset_prev(Hs, resets)  # (T, B, H) h_{t-1} as each step saw it
            lc = LayerCache()
            lc.x = x if layer == 0 else below  # type: ignore[assignment]
            lc.A, lc.Hs, lc.Hprev, lc.C, lc.TC = A, Hs, Hprev, C, TC
            lc.mask = masks[layer] if masks is not None else None
            lc.Y = Hs[1:] * lc.mask if lc.mask is not None else Hs[1:]  # (T, B, H)
            caches.append(lc)
            new_state.append((Hs[T].copy(), C[T].copy()))
            below = lc.Y
        assert below is not None
        top = below.reshape(T * B, H)  # (T*B, H)
        logits = top @ P["Wy"] + P["by"]  # (T*B, V)
        return logits.reshape(T, B, -1), tuple(new_state), Cache(caches, resets, top)

    # ----------------------------------------------------------------- backward
    def backward(self, dlogits: NDArray, cache: Cache) -> tuple[Params, State]:
        """Gradients of every parameter and of the initial state, given d loss / d logits (T, B, V).

        Spends the cache: its arrays are overwritten (d loss / d z is written over the gate
        activations) and recycled for the next forward pass, so each cache is backpropagated once.
        """
        if cache.spent:
            raise ValueError("this cache was already backpropagated; run forward again")
        cache.spent = True
        cfg, P, pool = self.config, self.params, self._pool
        T, B, V = dlogits.shape
        H = cfg.hidden
        dl = dlogits.reshape(T * B, V)  # (T*B, V)
        grads: Params = {"Wy": cache.top.T @ dl, "by": dl.sum(axis=0)}
        dY: NDArray | None = (dl @ P["Wy"].T).reshape(T, B, H)  # (T, B, H) d loss / d top output (ours to modify)
        dstate: list[tuple[NDArray, NDArray]] = [None] * cfg.layers  # type: ignore[list-item]
        resets = cache.resets
        # The gate derivatives are computed a chunk of K steps at a time, just before the loop
        # uses them, into one small reused buffer that stays in cache (instead of a whole-window
        # (T, B, 4H) array that is written once and read back from memory).
        K = max(1, min(T, _CHUNK_FLOATS // (B * 4 * H)))
        M = pool.take((K, B, 4 * H), dlogits.dtype)  # (K, B, 4H) d z / d (dc or dh), per gate block
        oD = pool.take((K, B, H), dlogits.dtype)  # (K, B, H) d h / d c = o (1 - tanh(c)^2)
        for layer in reversed(range(cfg.layers)):
            lc = cache.layers[layer]
            assert dY is not None
            dHout = dY
            if lc.mask is not None:
                dHout *= lc.mask  # (T, B, H) through the dropout on this layer's output
            A, C, TC = lc.A, lc.C, lc.TC
            WhT = np.ascontiguousarray(P[f"Wh{layer}"].T)  # (4H, H)
            dh = np.empty((B, H), A.dtype)  # (B, H)
            dc = np.empty((B, H), A.dtype)  # (B, H)
            dh_next = np.zeros((B, H), A.dtype)  # (B, H) from step t+1
            dc_next = np.zeros((B, H), A.dtype)  # (B, H)
            dot, add, mul = np.dot, np.add, np.multiply  # locals: see _recurrence
            F, Dzo = A[..., H : 2 * H], A[..., 2 * H : 3 * H]  # (T, B, H) f_t, then dz_o
            M4, Mo = M.reshape(K, B, 4, H), M[..., 2 * H : 3 * H]  # (K, B, 4, H), (K, B, H)
            for t1 in range(T, 0, -K):
                t0 = max(0, t1 - K)
                k = t1 - t0
                _gate_derivatives(A[t0:t1], C[t0:t1], TC[t0:t1], M[:k], oD[:k], H)
                for t in range(t1 - 1, t0 - 1, -1):
                    j = t - t0
                    add(dHout[t], dh_next, out=dh)
                    mul(dh, oD[j], out=dc)
                    add(dc, dc_next, out=dc)  # d loss / d c_t
                    mul(dc, F[t], out=dc_next)  # through f_t (read before A[t] is reused)
                    dz = A[t]  # (B, 4H) d loss / d z_t, written over the activations it no longer needs
                    mul(M4[j], dc[:, None, :], out=dz.reshape(B, 4, H))  # i, f, g blocks use dc
                    mul(Mo[j], dh, out=Dzo[t])  # o uses dh
                    dot(dz, WhT, out=dh_next)
                    if resets and t in resets:  # these streams did not see h_{t-1}, c_{t-1}
                        dh_next[resets[t]] = 0.0
                        dc_next[resets[t]] = 0.0
            dstate[layer] = (dh_next, dc_next)
            dZ2 = A.reshape(T * B, 4 * H)  # (T*B, 4H) d loss / d z for the whole window
            grads[f"Wh{layer}"] = lc.Hprev.reshape(T * B, H).T @ dZ2  # (H, 4H)
            dY = input_gradients(layer, lc.x, dZ2, P, pool, grads)  # None after layer 0
            pool.give(A, lc.Hs, C, TC)  # this layer is done; lc.x (the layer below's Hs) is not yet
        pool.give(M, oD)
        return grads, tuple(dstate)

    # ---------------------------------------------------------------- inference
    def stepper(self) -> Stepper:
        """One-step inference on a frozen copy of the current weights."""
        return Stepper(self)


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

    def initial_state(self, batch: int = 1) -> State:
        return zero_state(self.config, batch)

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
