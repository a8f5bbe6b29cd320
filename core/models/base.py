"""What every model shares: its configuration, the interface the trainer, evaluation, generation
and the PyTorch bridge use, and the pieces of arithmetic that do not depend on the model.

A model is a `CharModel` subclass in its own module under core/models/, registered by name in
core/models/__init__.py. It declares its own facts once, as class attributes and classmethods:

    name, title            "lstm", "LSTM": the registry key and how screens print it
    state_names            the arrays of one layer's carried state, in State order (() for none)
    inside_quantities      what the inside view can show, in display order; `inside_default`
    inside_attention       True for a model with attention heads: the inside view shows what each
                           head attends to (`attention(ids)`) instead of its units
    param_shapes(config)   every parameter's name and shape, in a fixed order
    init_params(config, rng)
    train_flops_per_char(config), activation_bytes(config, B, T)   sizing and memory planning
    torch_shapes / to_torch / from_torch / torch_config   the PyTorch names of its parameters

and implements the arithmetic: `forward`, `backward`, `stepper` (one character at a time, for
generation) and `activations` (every gate and state per character, for the inside view).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from ..errors import ConfigError

Params = dict[str, NDArray]
# Per layer a tuple of (B, H) arrays named by the model's state_names: (h, c) for the LSTM,
# (h,) for the GRU and the RNN.
State = tuple[tuple[NDArray, ...], ...]
# Steps at which some streams start afresh: t -> indices of the streams whose state is set to the
# blank one before step t (a stream that wrapped around the end of the text, or that reads its
# first window): zeros, or the model's learned initial state (ModelConfig.init_state).
Resets = dict[int, NDArray]
# ModelConfig.init_state: what a stream starts from when it starts blank. "zeros": a zero state;
# "learned": a state per layer that is trained with the other parameters (the recurrent cells).
INIT_STATES = ("zeros", "learned")


@dataclass(frozen=True)
class ModelConfig:
    """The shape of the network. The limits here are the only ones: TrainConfig checks its model
    fields by building one of these."""

    vocab_size: int  # V: distinct characters, the size of input and output
    hidden: int = 128  # H: units per layer
    layers: int = 1  # L: stacked layers
    dropout: float = 0.0  # probability of zeroing a layer output while training (0 = off)
    dtype: str = "float32"  # float32 to train fast; float64 for gradient checks
    cell: str = "lstm"  # the model's registry name (core.models.MODELS)
    # The attention models' fields (the recurrent cells ignore them):
    heads: int = 1  # attention heads per layer; they split the width `hidden` between them
    block: int = 64  # the longest context, in characters: windows of at most `block` steps
    bias: bool = False  # biases in the linear maps and LayerNorms
    # The recurrent cells' blank state: "zeros", or "learned" (parameters h0{l}, and c0{l} for the
    # LSTM, trained like the others; see INIT_STATES)
    init_state: str = "zeros"

    def __post_init__(self) -> None:
        def whole(name: str, low: int, high: int) -> None:
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and low <= v <= high):
                raise ConfigError(f"{name.replace('_', ' ')} must be a whole number from {low} to {high}, got {v}")

        if not (isinstance(self.vocab_size, (int, np.integer)) and self.vocab_size >= 2):
            raise ConfigError(f"vocabulary size must be at least 2, got {self.vocab_size}")
        whole("hidden", 1, 8192)
        whole("layers", 1, 16)
        whole("heads", 1, 1024)
        whole("block", 1, 65536)
        if not isinstance(self.bias, (bool, np.bool_)):
            raise ConfigError(f"bias must be true or false, got {self.bias!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.init_state not in INIT_STATES:
            raise ConfigError(f"unknown init-state {self.init_state!r}; choose {' or '.join(INIT_STATES)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class Abandoned(RuntimeError):
    """A thread stopped because another thread working on the same window failed (the other's
    error is the one to report)."""


class Pool:
    """Spare arrays for forward/backward, reused from one training step to the next.

    A training step allocates tens of megabytes of activations at the larger sizes. Fresh arrays
    that big come straight from the kernel (mmap) and page-fault on first touch every step; reused
    ones are already mapped and often in cache. Arrays come back only from `backward`, once its
    cache is spent, so nothing the caller still holds (logits, state, gradients: all freshly
    allocated) is ever handed out again. A forward pass that is never backpropagated (evaluation)
    simply keeps its arrays.
    """

    def __init__(self, per_shape: int = 4) -> None:
        # spares kept per (shape, dtype): as many as a step gives back (more would only hold
        # memory). A recurrent model caches a few arrays of each shape; a GPT several per layer.
        self.per_shape = per_shape
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
            if len(spares) < self.per_shape:
                spares.append(a)


class Cache:
    """Everything `backward` needs from `forward`."""

    __slots__ = ("layers", "resets", "top", "spent")

    def __init__(self, layers: list[Any], resets: Resets | None, top: NDArray):
        self.layers = layers  # one cache per layer, of the model's own module
        self.resets = resets
        self.top = top  # (T*B, H) readout input
        self.spent = False  # backward has run: its arrays were overwritten and recycled

    def spend(self) -> None:
        """Mark the cache used by `backward` (which overwrites and recycles its arrays)."""
        if self.spent:
            raise ValueError("this cache was already backpropagated; run forward again")
        self.spent = True


# What generation carries from one character to the next: a recurrent model's State, a GPT's
# key/value cache. Only the model's own stepper reads it.
GenState = Any


class StreamLike(Protocol):
    """One stream of text read a character at a time (each model's Stream)."""

    def feed(self, char_id: int) -> NDArray: ...

    def state(self) -> GenState: ...


class StepperLike(Protocol):
    """One-step inference on a frozen copy of a model's weights (each model's Stepper)."""

    config: ModelConfig

    def initial_state(self, batch: int = 1) -> GenState: ...

    def step(self, ids: NDArray, state: GenState) -> tuple[NDArray, GenState]: ...

    def prime(self, ids: NDArray, state: GenState | None = None) -> tuple[NDArray | None, GenState]: ...

    def stream(self, state: GenState | None = None) -> StreamLike: ...


_M = TypeVar("_M", bound="CharModel")


class CharModel:
    """A character-level language model: a config and a dict of parameters, with forward/backward
    over a window of ids and one-step inference. Each model (core/models/lstm.py, ...) subclasses
    it, declares its facts (see the module docstring) and writes its own arithmetic."""

    name: ClassVar[str] = ""  # the registry key, ModelConfig.cell
    title: ClassVar[str] = ""  # how screens and reports print it: "LSTM"
    summary: ClassVar[str] = ""  # one line for --help: "long short-term memory (nn.LSTM's equations)"
    state_names: ClassVar[tuple[str, ...]] = ()  # arrays of one layer's carried state
    inside_quantities: ClassVar[tuple[str, ...]] = ()  # what the inside view can show
    inside_default: ClassVar[str] = ""  # the quantity it shows first
    gate_quantities: ClassVar[tuple[str, ...]] = ()  # those of them in (0, 1): sequential colours
    inside_attention: ClassVar[bool] = False  # the inside view shows attention heads (attention(ids))
    torch_class: ClassVar[str] = ""  # the PyTorch module its export loads into: "nn.LSTM"

    def __init__(self, config: ModelConfig, params: Params):
        if config.cell != self.name:
            raise ConfigError(f"a {type(self).__name__} cannot hold a {config.cell} configuration")
        self.check_config(config)
        shapes = self.param_shapes(config)
        if set(params) != set(shapes):
            raise ConfigError("parameter names do not match the model configuration")
        for name, shape in shapes.items():
            if params[name].shape != shape:
                raise ConfigError(f"parameter {name} has shape {params[name].shape}, expected {shape}")
        self.config = config
        self.params = params
        self._pool = Pool()

    # -------------------------------------------------------------- facts
    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        """Raise ConfigError for a configuration this model cannot take (beyond ModelConfig's limits).
        A subclass that adds its own checks calls this one too."""
        if config.init_state == "learned" and not cls.state_names:
            raise ConfigError(
                f"--init-state learned is for the recurrent cells: the {cls.title or cls.name} carries no "
                "state from one character to the next"
            )

    @classmethod
    def param_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape, in a fixed order."""
        raise NotImplementedError

    @classmethod
    def num_params(cls, config: ModelConfig) -> int:
        return sum(int(np.prod(s)) for s in cls.param_shapes(config).values())

    @classmethod
    def longest_window(cls, config: ModelConfig) -> int | None:
        """The most steps one training window may have (None: no limit; a GPT: its block)."""
        return None

    @classmethod
    def shape_text(cls, config: ModelConfig) -> str:
        """The model's size in a few words, for reports: "2 layers x 256 hidden"."""
        return f"{config.layers} layer{'s' if config.layers > 1 else ''} x {config.hidden} hidden"

    @classmethod
    def decayed(cls, config: ModelConfig) -> tuple[str, ...]:
        """The parameters weight decay (TrainConfig.weight_decay) shrinks: by default those with two
        axes or more (matrices and embeddings), never a bias or a gain (nanoGPT's rule)."""
        return tuple(name for name, s in cls.param_shapes(config).items() if len(s) >= 2)

    @classmethod
    def init_params(cls, config: ModelConfig, rng: np.random.Generator) -> Params:
        """Freshly initialised parameters."""
        raise NotImplementedError

    @classmethod
    def train_flops_per_char(cls, config: ModelConfig) -> float:
        """Floating-point operations of one character's forward and backward pass (sizing). By
        default the usual estimate for a model that multiplies every parameter once per character:
        2 for the forward pass, 4 for the backward."""
        return 6.0 * cls.num_params(config)

    @classmethod
    def activation_bytes(cls, config: ModelConfig, batch: int, seq_len: int) -> int:
        """About how much memory one training step of `batch` x `seq_len` holds (memory planning).
        By default the logits, their softmax and their gradient: (T, B, V) three times."""
        return np.dtype(config.dtype).itemsize * 3 * batch * seq_len * config.vocab_size

    @classmethod
    def torch_shapes(cls, config: ModelConfig) -> dict[str, tuple[int, ...]]:
        """Every tensor an export holds, under PyTorch's names, with its shape."""
        raise ConfigError(f"the {cls.title or cls.name} model has no PyTorch counterpart to export to")

    @classmethod
    def to_torch(cls, params: Params, config: ModelConfig) -> dict[str, NDArray]:
        """The parameters under PyTorch's names and layouts (linear: gradients map the same way)."""
        raise ConfigError(f"the {cls.title or cls.name} model has no PyTorch counterpart to export to")

    @classmethod
    def from_torch(cls, tensors: dict[str, NDArray], config: ModelConfig) -> Params:
        """The inverse of `to_torch` (names and shapes already checked)."""
        raise ConfigError(f"the {cls.title or cls.name} model has no PyTorch counterpart to import from")

    @classmethod
    def export_config(cls, config: ModelConfig) -> dict[str, Any]:
        """The metadata `config` of an export (JSON), which names the model under "cell"."""
        return config.to_dict()

    @classmethod
    def torch_config(cls, tensors: dict[str, NDArray], saved: dict[str, Any]) -> dict[str, Any] | None:
        """The ModelConfig fields of an export of this model, read from its tensors (and `saved`, the
        config in its metadata); None when the tensors are not this model's."""
        return None

    @classmethod
    def torch_vocab_axes(cls, config: ModelConfig) -> dict[str, int]:
        """The tensors of an export with an axis over the vocabulary, and that axis (an import from
        a file that numbers characters in another order permutes them)."""
        return {}

    # ----------------------------------------------------------- instances
    @classmethod
    def create(cls: type[_M], config: ModelConfig, rng: np.random.Generator) -> _M:
        """A freshly initialised model."""
        return cls(config, cls.init_params(config, rng))

    def copy(self: _M) -> _M:
        """An independent copy of the weights (a snapshot for another thread)."""
        return type(self)(self.config, {k: v.copy() for k, v in self.params.items()})

    def replica(self: _M) -> _M:
        """The same model on the same weight arrays (not copies), with its own spare buffers: what
        one of several threads computes with, each on its own streams (core/parallel.py)."""
        twin = copy.copy(self)
        twin._pool = Pool()
        return twin

    def initial_state(self, batch: int = 1) -> State:
        """The blank state for `batch` streams, fresh arrays (by default none: a model that carries
        nothing); what a stream in `resets` starts from too."""
        return ()

    def dropout_masks(self, T: int, B: int, rng: np.random.Generator) -> Any:
        """The dropout masks of one training window (whatever `forward` takes), or None when off."""
        return None

    def stream_masks(self, masks: Any, streams: slice) -> Any:
        """The part of `dropout_masks(T, B, rng)` that streams `streams` (a slice of the B) use.
        By default the masks are time-major per-stream arrays (T, B, ...), alone or in a list."""
        if masks is None:
            return None
        if isinstance(masks, np.ndarray):
            return masks[:, streams]
        return [m[:, streams] for m in masks]

    def forward(
        self, x: NDArray, state: State, resets: Resets | None = None, masks: Any = None
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
        masks: Any = None,
        weight: float = 1.0,
    ) -> tuple[float, Params, State]:
        """Mean loss in nats per character of predicting `y` from `x` (both (T, B)), the gradients
        of `weight` times it, and the final state to carry into the next window. (A thread that
        reads b of a window's B streams weighs its mean by b / B: the threads' gradients then add
        up to the whole window's.)"""
        logits, new_state, cache = self.forward(x, state, resets, masks)
        T, B, V = logits.shape
        loss, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))
        if weight != 1.0:
            dlogits *= weight
        grads, _ = self.backward(dlogits.reshape(T, B, V), cache)
        return loss, grads, new_state

    def wavefront_layers(self) -> int:
        """How many threads `wavefront` can keep busy: one per layer (1: the model has none)."""
        return 1

    def wavefront(
        self,
        x: NDArray,
        y: NDArray,
        state: State,
        resets: Resets | None = None,
        masks: Any = None,
        weight: float = 1.0,
        span: int = 10,
    ) -> Any:
        """`loss_and_grads` laid out as a wavefront over the layers: an object whose `run(layer)`
        the caller runs on one thread per layer, all at once, and whose `result()` is then
        (loss, grads, state) as `loss_and_grads` gives them (core/models/recurrent.py)."""
        raise NotImplementedError

    def stepper(self) -> StepperLike:
        """One-step inference on a frozen copy of the current weights. By default the model's own
        forward pass, one character at a time; a model overrides it with something faster."""
        return ForwardStepper(self.copy())

    def score_windows(self, n: int) -> list[tuple[int, int, int]] | None:
        """How evaluation reads a text of n positions: None (the default) to read it as one
        sequence, carrying the state; or windows (start, stop, first), each read as a fresh context
        with the predictions at positions first..stop-1 kept, every position exactly once (a model
        whose context is bounded, the GPT)."""
        return None

    def activations(self, ids: NDArray) -> dict[str, NDArray]:
        """Every inside quantity for each character of `ids` (n,) read from a blank state:
        quantity -> (L, n, H), row t the value after reading ids[t]. For the inside view; a model
        with nothing to show there (no `inside_quantities`) returns nothing."""
        return {}

    def attention(self, ids: NDArray) -> NDArray:
        """(L, heads, n, n): every head's attention weights over `ids` (n,) read as one context, row
        t how position t spreads its attention over positions 0..t. Only a model that declares
        `inside_attention` has them."""
        raise NotImplementedError(f"the {self.title} model has no attention heads")


class ForwardStepper:
    """One-step inference through a model's `forward`: each character is a window of one step."""

    def __init__(self, model: CharModel):
        self.model = model  # a copy nobody else holds
        self.config = model.config

    def initial_state(self, batch: int = 1) -> State:
        return self.model.initial_state(batch)

    def step(self, ids: NDArray, state: State) -> tuple[NDArray, State]:
        """Logits (B, V) for the next character after `ids` (B,), and the new state."""
        logits, state, _ = self.model.forward(np.asarray(ids).reshape(1, -1), state)  # (1, B, V)
        return logits[0], state

    def prime(self, ids: NDArray, state: State | None = None) -> tuple[NDArray | None, State]:
        """Read `ids` (n,) as one window; the logits after the last one (None when empty) and the state."""
        state = self.initial_state(1) if state is None else state
        ids = np.asarray(ids).reshape(-1, 1)  # (n, 1)
        if len(ids) == 0:
            return None, state
        logits, state, _ = self.model.forward(ids, state)  # (n, 1, V)
        return logits[-1, 0], state

    def stream(self, state: State | None = None) -> ForwardStream:
        return ForwardStream(self, self.initial_state(1) if state is None else state)


class ForwardStream:
    """A single stream read a character at a time through `ForwardStepper.step`."""

    def __init__(self, stepper: ForwardStepper, state: State):
        self._stepper, self._state = stepper, state

    def feed(self, char_id: int) -> NDArray:
        """The logits (V,) after reading character `char_id`."""
        logits, self._state = self._stepper.step(np.array([char_id]), self._state)
        return logits[0]

    def state(self) -> State:
        return self._state
