"""The engine interface: what the training loop asks of whatever does the arithmetic.

The Trainer (core/trainer.py) owns the run: the text and its windows, the carried state's place
in it, dropout masks, the schedule of evaluations and saves, the reports, the history, and the
run's arrays in core's own layout (`trainer.model.params`, `trainer.optimizer`, `trainer.state`,
`trainer.average`). An engine owns where the weights live while they train and how a step is
computed and applied. Two engines implement the interface:

- `NumpyEngine` (here): the model's own forward/backward in NumPy, straight on core's arrays;
- the PyTorch engine (tui/pytorch/engine.py): the same step in PyTorch on a CPU or GPU, on
  tensors that mirror core's arrays, copying them back when someone reads them (`sync`).

An engine is made for one trainer by a factory `make(trainer) -> Engine`, once the trainer has
its model, optimizer, windows and state, and is told `reload()` whenever core's arrays were
replaced from outside (a resumed checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from .batches import Window
from .config import TrainConfig
from .models import CharModel, State
from .optim import Optimizer, clip_by_global_norm
from .parallel import SplitScorer, Workers, join_states, slice_resets, slice_state, split

# A wavefront cuts the window into about this many spans of steps: more spans, a shorter fill and
# drain (layers - 1 spans of it) but more hand-overs between the layers' threads.
WAVEFRONT_SPANS = 10


class RunArrays(Protocol):
    """What an engine reads and writes of the run it trains (a core.trainer.Trainer): core's arrays."""

    config: TrainConfig
    model: CharModel  # the weights being trained, in core's layout
    optimizer: Optimizer  # its moments and step count; `lr` is the rate to step at
    state: State  # the carried state of every stream
    average: dict[str, np.ndarray] | None  # the moving average of the weights, when averaging
    controls: Any  # core.trainer.Controls (an engine may replace them: a data-parallel run agrees on stops)

    @property
    def batch(self) -> int: ...


class Engine(Protocol):
    """The arithmetic of one training run (see the module docstring)."""

    # True in the process that evaluates and saves (False in the other processes of a
    # data-parallel run, which train in step with it and write nothing).
    is_main: bool

    def describe(self) -> str | None:
        """One line for the start of a run (None: nothing worth saying)."""

    def limit_threads(self, n: int) -> None:
        """Use at most `n` threads for the arithmetic (the interface keeps a core for the screen)."""

    def reload(self) -> None:
        """Core's arrays (weights, optimizer state, carried state, average) were replaced: take them."""

    def learn(self, window: Window, masks: Any) -> tuple[float, float]:
        """Forward and backward over `window` from the carried state: its mean loss in nats per
        character and the gradient norm before clipping. The clipped gradients and the new carried
        state wait for `apply` (which is skipped when either number is not finite)."""

    def apply(self) -> None:
        """Update the weights with the gradients `learn` left (at the optimizer's current rate),
        count the step in the optimizer, and carry the new state on."""

    def update_average(self, keep: float) -> None:
        """Move the moving average of the weights toward them: avg += (1 - keep) (w - avg)."""

    def take_rollback(self) -> None:
        """Keep the weights and optimizer state (just shown finite) to return to on divergence."""

    def roll_back(self) -> None:
        """Return to what `take_rollback` kept, with a blank carried state."""

    def sync(self, everything: bool = False) -> None:
        """Bring core's arrays up to date: the weights and their average; with `everything`, the
        optimizer's moments and the carried state too (for a checkpoint)."""

    def scorer(self, model: CharModel) -> Any:
        """What core's Evaluator reads to score `model` (a frozen copy of the run's model): an object
        with initial_state(S) and forward(x, state) -> (logits, state, _)."""


EngineFactory = Callable[[RunArrays], Engine]


class NumpyEngine:
    """lstm-tui's own engine: the model's forward and backward in NumPy, on core's arrays.

    With `threads` n > 1, each step splits the window's streams over n threads (core/parallel.py),
    and evaluation splits its streams likewise. With `wavefront` and L >= 2 layers, each slice of
    streams runs as a wavefront on L threads, one per layer (core/models/recurrent.py: Wavefront),
    in n // L slices. The BLAS must then run each call on one thread, which the caller sets (core
    cannot: see core/parallel.py). A run is repeatable for a given arrangement.
    """

    is_main = True

    def __init__(self, trainer: RunArrays, threads: int = 1, wavefront: bool = False):
        self.trainer = trainer
        self.threads = max(1, int(threads))
        # With two layers or more: one thread per layer, a span of steps at a time (the model's
        # `wavefront`), times threads // layers slices of the streams.
        self.wavefront = wavefront
        self._workers: Workers | None = None
        self._replicas: list[CharModel] = []  # one per thread: the model with its own buffers
        self._learned: tuple[dict[str, np.ndarray], Any] | None = None  # what learn leaves for apply
        self._rollback: tuple[dict[str, np.ndarray], dict[str, np.ndarray], int] | None = None

    def describe(self) -> str | None:
        return None  # (the command line says how many threads it chose, and why)

    def limit_threads(self, n: int) -> None:
        """At most `n` threads from now on. (NumPy's BLAS threads are the caller's to set.)"""
        self.threads = max(1, min(self.threads, n))

    def reload(self) -> None:
        """Nothing to do: this engine works on core's arrays themselves."""

    def _pool(self, n: int) -> Workers:
        """The threads (started once, grown if more are asked for)."""
        if self._workers is None or self._workers.n < n:
            if self._workers is not None:
                self._workers.close()
            self._workers = Workers(n)
        return self._workers

    def arrangement(self) -> tuple[int, int]:
        """(stream slices, threads per slice) this engine computes a step with."""
        t = self.trainer
        layers = t.model.wavefront_layers() if self.wavefront else 1
        if layers > 1 and self.threads >= layers:
            return min(self.threads // layers, t.batch), layers
        return min(self.threads, t.batch), 1

    def learn(self, window: Window, masks: Any) -> tuple[float, float]:
        t = self.trainer
        slices, layers = self.arrangement()
        # Overflow is detected by the trainer and explained; NumPy's own warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if slices * layers == 1:
                loss, grads, state = t.model.loss_and_grads(window.x, window.y, t.state, window.resets, masks)
            else:
                loss, grads, state = self._learn_split(window, masks, slices, layers)
            norm = clip_by_global_norm(grads, t.config.clip)
        self._learned = (grads, state)
        return loss, norm

    def _learn_split(
        self, window: Window, masks: Any, n: int, layers: int = 1
    ) -> tuple[float, dict[str, np.ndarray], State]:
        """Forward and backward with the streams split over n slices, each on one thread (or, as a
        wavefront, on one thread per layer); the gradients added in slice order."""
        t = self.trainer
        B = t.batch
        slices = split(B, n)
        while len(self._replicas) < n:
            self._replicas.append(t.model.replica())
        replicas = self._replicas
        for model in replicas:
            model.params = t.model.params  # the weights trained (the same arrays)

        def args(i: int) -> dict[str, Any]:
            s = slices[i]
            return {
                "x": window.x[:, s],
                "y": window.y[:, s],
                "state": slice_state(t.state, s),
                "resets": slice_resets(window.resets, s),
                "masks": t.model.stream_masks(masks, s),
                "weight": (s.stop - s.start) / B,  # each slice's mean loss, weighed by its share
            }

        if layers == 1:

            def part(i: int) -> tuple[float, dict[str, np.ndarray], State]:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # (each thread has its own)
                    return replicas[i].loss_and_grads(**args(i))

            parts = self._pool(n).run(part, n)
        else:
            span = max(1, -(-window.x.shape[0] // WAVEFRONT_SPANS))
            waves = [replicas[i].wavefront(**args(i), span=span) for i in range(n)]

            def layer_part(j: int) -> None:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    waves[j // layers].run(j % layers)

            self._pool(n * layers).run(layer_part, n * layers)
            parts = [w.result() for w in waves]
        loss = 0.0
        for s, (part_loss, _, _) in zip(slices, parts, strict=True):
            loss += part_loss * (s.stop - s.start) / B
        grads = parts[0][1]
        for _, more, _ in parts[1:]:
            for k, g in grads.items():
                g += more[k]
        return loss, grads, join_states([p[2] for p in parts])

    def apply(self) -> None:
        assert self._learned is not None, "apply() needs a learn() first"
        grads, state = self._learned
        t = self.trainer
        t.optimizer.step(t.model.params, grads)
        t.state = state
        self._learned = None

    def update_average(self, keep: float) -> None:
        t = self.trainer
        assert t.average is not None
        for k, w in t.model.params.items():
            avg = t.average[k]
            avg += (1.0 - keep) * (w - avg)

    def take_rollback(self) -> None:
        t = self.trainer
        self._rollback = (
            {k: v.copy() for k, v in t.model.params.items()},
            {k: v.copy() for k, v in t.optimizer.state_arrays().items()},
            t.optimizer.t,
        )

    def roll_back(self) -> None:
        assert self._rollback is not None
        t = self.trainer
        params, opt_state, step = self._rollback
        for k, v in params.items():
            t.model.params[k][...] = v
        t.optimizer.load_state_arrays(opt_state, step)
        t.state = t.model.initial_state(t.batch)

    def sync(self, everything: bool = False) -> None:
        """Nothing to do: core's arrays are the ones trained."""

    def scorer(self, model: CharModel) -> CharModel | SplitScorer:
        if self.threads == 1:
            return model
        return SplitScorer(model, self._pool(self.threads))  # (evaluation splits its streams only)


def numpy_engine(trainer: RunArrays) -> Engine:
    """The default engine factory: one thread."""
    return NumpyEngine(trainer)


class NumpyEngineFactory:
    """Makes NumPy engines on `threads` threads (an EngineFactory), as a wavefront over the layers
    or not. Both may be changed before the next engine is made: a run restarted with fresh weights
    keeps what its run chose."""

    def __init__(self, threads: int = 1, wavefront: bool = False):
        self.threads = max(1, int(threads))
        self.wavefront = wavefront

    def __call__(self, trainer: RunArrays) -> NumpyEngine:
        return NumpyEngine(trainer, self.threads, self.wavefront)


def numpy_engine_threads(threads: int, wavefront: bool = False) -> NumpyEngineFactory:
    """The factory of NumPy engines on `threads` threads (see NumpyEngine)."""
    return NumpyEngineFactory(threads, wavefront)
