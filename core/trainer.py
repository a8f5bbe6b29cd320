"""The training loop as a generator of small immutable reports, and its thread-safe controls.

The Trainer knows nothing of threads or screens: whoever iterates `run()` owns the weights.
Other threads talk to it only through `Controls` (pause, resume, stop, learning rate, save
requests) and read only `Trainer.snapshot`, a copy of the weights published between steps.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt_io
from .batches import Batches, Window
from .corpus import Corpus
from .errors import CheckpointError, ConfigError, LstmTuiError
from .evaluate import Evaluation, Evaluator
from .model import CELLS, CharModel, ModelConfig, State, create_model
from .optim import Optimizer, clip_by_global_norm, make_optimizer

# How often (seconds of wall time) a fresh copy of the weights is published for other threads,
# and how often weights that just gave a finite loss are kept to roll back to on divergence.
SNAPSHOT_EVERY_S = 0.25
# With the default schedule an evaluation starts once this many times as many characters as the
# evaluation text holds have been trained on since the last one began (and at least
# EVAL_MIN_CHARS). Scoring a character costs about a third of training on one, so evaluation
# takes roughly a tenth of the run, whatever the text's length.
EVAL_INTERVAL = 4
# Cuts on a stalled validation stop at this fraction of the configured rate: a run that has
# learned all it can (the soliloquy, memorised within seconds) would otherwise halve its rate at
# every evaluation, to 1e-10 within seconds, and show it.
MIN_LR_FRACTION = 1e-3
EVAL_MIN_CHARS = 20_000
# Memory a run may plan for its activations, as a fraction of this machine's memory.
MEMORY_FRACTION = 0.75


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. The defaults learn the bundled soliloquy in seconds."""

    hidden: int = 128  # H: units per LSTM layer
    layers: int = 1  # L: stacked LSTM layers
    seq_len: int = 48  # T: steps of backprop through time per window
    batch: int = 8  # B: parallel streams per step (8 learns the soliloquy fastest: 0.69 s vs 1.0 s at 16)
    lr: float = 1e-2  # learning rate (Adam's step size)
    optimizer: str = "adam"  # adam, sgd or adagrad
    clip: float = 5.0  # max global gradient norm (0 = no clipping)
    dropout: float = 0.0  # dropout on each layer's output while training
    steps: int = 0  # optimizer steps to take (0 = until stopped)
    seed: int = 0  # seeds initial weights, dropout masks and sampling
    eval_every: int | None = None  # steps between evaluations; None = by characters trained
    # (EVAL_INTERVAL x the evaluation text, so scoring costs about a tenth of the time); 0 = never
    eval_chars: int = 0  # score at most this many characters of the evaluation text (0 = all of it)
    lr_decay: float = 0.5  # multiply the learning rate by this when validation stops improving (1 = never),
    # down to MIN_LR_FRACTION of `lr`
    lr_patience: int = 1  # evaluations without improvement before the learning rate is cut
    # Keep a moving average of the weights, with this weight of the past per step (0 = off). The
    # average is the run's model: evaluations score it, and generation, the best-model file and
    # the saved model use it (the weights being trained are saved beside it, to resume exactly).
    # Averaging anneals without a schedule: the average sits below the noise Adam's steps make.
    average: float = 0.0
    save_every: int = 0  # steps between automatic saves to the checkpoint (0 = never)
    dtype: str = "float32"  # float32 trains fast; float64 for exactness
    smoothing: float = 0.95  # weight of the past in the smoothed training loss
    cell: str = "lstm"  # the recurrent cell: lstm, gru or rnn

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        for name in ("hidden", "layers", "seq_len", "batch"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 1, f"{name.replace('_', '-')} must be a whole number >= 1, got {v}")
        need(self.hidden <= 8192, f"hidden size {self.hidden} is absurd here (at most 8192)")
        need(self.layers <= 16, f"{self.layers} layers is absurd here (at most 16)")
        need(self.seq_len <= 100_000, f"sequence length {self.seq_len} is absurd (at most 100000)")
        need(self.batch <= 100_000, f"batch {self.batch} is absurd (at most 100000)")
        need(math.isfinite(self.lr) and 0 < self.lr <= 100, f"learning rate must be in (0, 100], got {self.lr}")
        need(math.isfinite(self.clip) and self.clip >= 0, f"clip must be >= 0, got {self.clip}")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("steps", "save_every", "lr_patience"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 0, f"{name.replace('_', '-')} must be a whole number >= 0, got {v}")
        ee = self.eval_every
        need(ee is None or (isinstance(ee, int) and ee >= 0), f"eval-every must be a whole number >= 0, got {ee}")
        need(self.eval_chars == 0 or self.eval_chars >= 2, f"eval-chars must be 0 (all) or >= 2, got {self.eval_chars}")
        need(0 < self.lr_decay <= 1, f"lr-decay must be in (0, 1], got {self.lr_decay}")
        need(0 <= self.average < 1, f"average must be in [0, 1), got {self.average}")
        need(
            self.optimizer in ("adam", "sgd", "adagrad"),
            f"unknown optimizer {self.optimizer!r}; choose adam, sgd or adagrad",
        )
        need(self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype!r}")
        need(0 <= self.smoothing < 1, f"smoothing must be in [0, 1), got {self.smoothing}")
        need(self.cell in CELLS, f"unknown cell {self.cell!r}; choose {', '.join(CELLS)}")

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(vocab_size, self.hidden, self.layers, self.dropout, self.dtype, self.cell)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# ----------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class StepReport:
    """After each optimizer step."""

    step: int  # steps taken so far
    epoch: float  # passes over the training text
    loss: float  # this window's mean loss, nats per character
    smooth_loss: float  # exponential moving average of `loss`
    chars_per_s: float  # training throughput (B x T per step), averaged over recent steps
    lr: float
    grad_norm: float  # global gradient norm before clipping
    elapsed_s: float  # training time so far (pauses excluded)


@dataclass(frozen=True)
class EvalReport:
    """After an evaluation on the evaluation text, read as one sequence from a fresh state."""

    step: int
    epoch: float
    train_loss: float  # smoothed training loss at this step
    val_loss: float  # mean loss on the evaluation text, nats per character
    accuracy: float  # greedy teacher-forced accuracy on it
    evaluation: Evaluation  # ground truth against prediction, per character
    on_validation: bool  # True: held-out text; False: the training text itself
    best: bool  # lowest evaluation loss so far
    chars: int = 0  # characters scored
    sample: bool = False  # True: only the first `chars` of the evaluation text (--eval-chars)
    lr_cut: float | None = None  # the learning rate was cut to this after this evaluation


@dataclass(frozen=True)
class SaveReport:
    """After writing (or failing to write) a checkpoint."""

    step: int
    path: str
    kind: str  # "checkpoint" or "best"
    error: str | None = None  # one-line reason when the save failed; the model is still in memory


@dataclass(frozen=True)
class DivergedReport:
    """The loss or gradient became non-finite: weights rolled back, training paused."""

    step: int
    message: str


@dataclass(frozen=True)
class DoneReport:
    """The loop ended."""

    step: int
    reason: str  # "budget" (step budget reached) or "stopped"


Report = StepReport | EvalReport | SaveReport | DivergedReport | DoneReport


# ---------------------------------------------------------------------------- controls
class Controls:
    """Thread-safe knobs another thread turns while the trainer runs; checked every step."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._lr: float | None = None
        self._save: list[str | None] = []

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can finish

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def set_lr(self, lr: float) -> None:
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"learning rate must be a positive number, got {lr}")
        with self._lock:
            self._lr = lr

    def take_lr(self) -> float | None:
        with self._lock:
            lr, self._lr = self._lr, None
        return lr

    def request_save(self, path: str | None = None) -> None:
        """Ask for a save at the next step boundary (to `path`, or the run's checkpoint)."""
        with self._lock:
            self._save.append(path)

    def take_saves(self) -> list[str | None]:
        with self._lock:
            saves, self._save = self._save, []
        return saves

    def wait_running(self, timeout: float) -> bool:
        """Block up to `timeout` seconds while paused; True when running."""
        return self._running.wait(timeout)


# ----------------------------------------------------------------------------- trainer
def best_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where the lowest-validation-loss weights are kept, beside the checkpoint."""
    p = Path(checkpoint)
    return p.with_name(p.stem + ".best" + (p.suffix or ".npz"))


class Trainer:
    """Trains a model (an LSTM, GRU or RNN: TrainConfig.cell) on a corpus. Iterate `run()` in the
    thread that owns the weights."""

    def __init__(
        self,
        corpus: Corpus,
        config: TrainConfig | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        controls: Controls | None = None,
    ):
        self.corpus = corpus
        self.config = config = config or TrainConfig()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.controls = controls or Controls()
        self.rng = np.random.default_rng(config.seed)
        self.model = create_model(config.model_config(corpus.vocab.size), self.rng)
        self.optimizer: Optimizer = make_optimizer(config.optimizer, self.model.params, config.lr)
        self.batches = Batches(corpus.train_ids, config.batch, config.seq_len)
        check_memory(self.batches.batch, self.batches.seq_len, self.model.config)
        self.state: State = self.model.initial_state(self.batches.batch)
        self.step_count = 0
        self.smooth_loss = math.log(corpus.vocab.size)  # a uniform guess
        self.elapsed_s = 0.0
        self.loss_history: list[float] = []  # per step
        self.val_history: list[tuple[int, float]] = []  # (step, evaluation loss)
        self.best_val = math.inf
        self.snapshot: CharModel = self.model.copy()  # read-only for other threads
        self.last_eval: EvalReport | None = None
        self._rollback: tuple[dict[str, np.ndarray], dict[str, np.ndarray], int] | None = None
        self._learned: Any = None  # what _learn leaves for _apply
        self._snapshot_time = 0.0
        self._last_step_time = 0.0
        self._speed = 0.0  # smoothed seconds per step
        # the moving average of the weights (TrainConfig.average), or None
        self.average: dict[str, np.ndarray] | None = None
        if config.average:
            self.average = {k: v.copy() for k, v in self.model.params.items()}
        self._pending: _PendingEval | None = None  # an evaluation being read a chunk at a time
        self._eval_started_at = 0  # chars_seen when the last evaluation began
        self._stale_evals = 0  # evaluations in a row without a new best (for lr_decay)
        self._take_rollback()

    # ---------------------------------------------------------------- properties
    @property
    def batch(self) -> int:
        """B actually used (may be smaller than asked for a short text)."""
        return self.batches.batch

    @property
    def seq_len(self) -> int:
        """T actually used (may be smaller than asked for a short text)."""
        return self.batches.seq_len

    @property
    def shrunk(self) -> bool:
        return (self.batch, self.seq_len) != (self.config.batch, self.config.seq_len)

    @property
    def epoch(self) -> float:
        return self.batches.epoch

    @property
    def eval_ids(self) -> np.ndarray:
        """The evaluation text (validation part, or the whole text), capped at eval_chars if set."""
        ids = self.corpus.val_ids
        return ids[: self.config.eval_chars + 1] if self.config.eval_chars else ids

    @property
    def eval_is_sample(self) -> bool:
        """True when --eval-chars cuts the evaluation text short: its score is a sample."""
        return len(self.eval_ids) < len(self.corpus.val_ids)

    @property
    def eval_interval_chars(self) -> int:
        """Characters trained between the starts of two evaluations, with the default schedule."""
        return max(EVAL_MIN_CHARS, EVAL_INTERVAL * (len(self.eval_ids) - 1))

    # -------------------------------------------------------------------- steps
    def train_step(self) -> StepReport | DivergedReport:
        """One optimizer step on the next window."""
        cfg = self.config
        lr = self.controls.take_lr()
        if lr is not None:
            self.optimizer.lr = lr
        t0 = time.perf_counter()
        window = self.batches.next()
        masks = self.model.dropout_masks(self.seq_len, self.batch, self.rng)
        loss, norm = self._learn(window, masks)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return self._diverged(loss)
        if t0 - self._rollback_time >= SNAPSHOT_EVERY_S:
            self._take_rollback()  # these weights just gave a finite loss: safe to return to
        self._apply()
        self.step_count += 1
        self._update_average()
        dt = time.perf_counter() - t0
        self.elapsed_s += dt
        a = cfg.smoothing if self.step_count > 1 else 0.0
        self.smooth_loss = a * self.smooth_loss + (1 - a) * loss
        self.loss_history.append(loss)
        self._speed = dt if self.step_count == 1 else 0.9 * self._speed + 0.1 * dt
        return StepReport(
            step=self.step_count,
            epoch=self.epoch,
            loss=loss,
            smooth_loss=self.smooth_loss,
            chars_per_s=self.batch * self.seq_len / max(self._speed, 1e-9),
            lr=self.optimizer.lr,
            grad_norm=norm,
            elapsed_s=self.elapsed_s,
        )

    # The arithmetic of a step, which another engine (tui/torch_engine.py) overrides; everything
    # around it (windows, dropout masks, reports, rollback timing, checkpoints) is shared.
    def _learn(self, window: Window, masks: list[np.ndarray] | None) -> tuple[float, float]:
        """Forward and backward over `window`: its mean loss and the gradient norm before clipping.
        The clipped gradients and the new carried state wait for `_apply`."""
        # Overflow is detected by the caller and explained; NumPy's own warnings would only add noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, grads, state = self.model.loss_and_grads(window.x, window.y, self.state, window.resets, masks)
            norm = clip_by_global_norm(grads, self.config.clip)
        self._learned = (grads, state)
        return loss, norm

    def _apply(self) -> None:
        """Update the weights with the gradients `_learn` left, and carry its state on."""
        grads, state = self._learned
        self.optimizer.step(self.model.params, grads)
        self.state = state
        self._learned = None

    def _roll_back(self) -> None:
        """Return to the weights and optimizer state kept by `_take_rollback`; fresh carried state."""
        assert self._rollback is not None
        params, opt_state, t = self._rollback
        for k, v in params.items():
            self.model.params[k][...] = v
        self.optimizer.load_state_arrays(opt_state, t)
        self.state = self.model.initial_state(self.batch)

    def _diverged(self, loss: float) -> DivergedReport:
        """Roll back to the last published (finite) weights, reset the carried state, pause."""
        self._roll_back()
        self.publish()
        self.controls.pause()
        what = f"loss became {loss}" if not math.isfinite(loss) else "gradient became non-finite"
        return DivergedReport(
            step=self.step_count,
            message=(
                f"training diverged at step {self.step_count + 1} (the {what}); "
                "weights restored to the last finite ones and training paused. "
                f"Try a lower learning rate (now {self.optimizer.lr:g})."
            ),
        )

    def _take_rollback(self) -> None:
        self._rollback_time = time.perf_counter()
        self._rollback = (
            {k: v.copy() for k, v in self.model.params.items()},
            {k: v.copy() for k, v in self.optimizer.state_arrays().items()},
            self.optimizer.t,
        )

    def _update_average(self) -> None:
        """Move the average of the weights toward the weights just stepped to. The weight of the
        past starts low, (1 + n) / (10 + n) after n steps, so early weights are soon forgotten."""
        if self.average is None:
            return
        n = self.step_count
        keep = min(self.config.average, (1 + n) / (10 + n))
        for k, w in self.model.params.items():
            avg = self.average[k]
            avg += (1.0 - keep) * (w - avg)

    def run_model(self) -> CharModel:
        """The run's model: the average of the weights when averaging, else the weights themselves
        (shares their arrays: copy it to hand it to another thread)."""
        if self.average is None:
            return self.model
        return type(self.model)(self.model.config, self.average)

    def publish(self) -> None:
        """Publish a copy of the run's model for other threads to read (generation, inspection)."""
        self.snapshot = self.run_model().copy()
        self._snapshot_time = time.perf_counter()

    def evaluate(self, sample_rng: np.random.Generator | None = None) -> EvalReport:
        """Score the current weights on the evaluation text now, from a fresh state; remember the best."""
        pending = self._start_eval(sample_rng, keep_checkpoint=False)
        return self._finish_eval(pending)

    def _start_eval(self, sample_rng: np.random.Generator | None = None, keep_checkpoint: bool = True) -> _PendingEval:
        """Begin scoring a frozen copy of the run's model; read it with `Evaluator.advance`."""
        model = self.run_model().copy()
        self._eval_started_at = self.batches.chars_seen
        return _PendingEval(
            evaluator=Evaluator(model, self.eval_ids, self.corpus.vocab, rng=sample_rng),
            step=self.step_count,
            epoch=self.epoch,
            train_loss=self.smooth_loss,
            # what the best-model file gets if this evaluation sets a record: the run as it was
            checkpoint=self._frozen_checkpoint(model) if keep_checkpoint and self.checkpoint is not None else None,
        )

    def _finish_eval(self, pending: _PendingEval) -> EvalReport:
        ev = pending.evaluator.result()
        best = ev.loss < self.best_val
        lr_cut = None
        if best:
            self.best_val = ev.loss
            self._stale_evals = 0
        elif math.isfinite(ev.loss) and self.config.lr_decay < 1 and self.config.lr_patience:
            self._stale_evals += 1
            floor = self.config.lr * MIN_LR_FRACTION
            if self._stale_evals >= self.config.lr_patience and self.optimizer.lr > floor:  # stalled
                self._stale_evals = 0
                self.optimizer.lr = max(floor, self.optimizer.lr * self.config.lr_decay)
                lr_cut = self.optimizer.lr
        self.val_history.append((pending.step, ev.loss))
        report = EvalReport(
            step=pending.step,
            epoch=pending.epoch,
            train_loss=pending.train_loss,
            val_loss=ev.loss,
            accuracy=ev.accuracy,
            evaluation=ev,
            on_validation=self.corpus.split,
            best=best,
            chars=ev.n,
            sample=self.eval_is_sample,
            lr_cut=lr_cut,
        )
        self.last_eval = report
        return report

    def restart(self) -> Trainer:
        """A fresh run (new random weights) with the same text, settings, checkpoint and engine."""
        return type(self)(self.corpus, self.config, checkpoint=self.checkpoint)

    def _eval_due(self) -> bool:
        every = self.config.eval_every
        if every is None:
            return self.batches.chars_seen - self._eval_started_at >= self.eval_interval_chars
        return bool(every) and self.step_count % every == 0

    def _advance_eval(self) -> Iterator[Report]:
        """Read one chunk of the evaluation in progress; when it is complete, report it (and keep
        the weights it scored as the best model, if they are)."""
        pending = self._pending
        if pending is None or not pending.evaluator.advance():
            return
        self._pending = None
        report = self._finish_eval(pending)
        yield report
        if report.best and report.on_validation and pending.checkpoint is not None and self.checkpoint is not None:
            pending.checkpoint.meta["best_val"] = report.val_loss
            yield from self._save_reports(str(best_path(self.checkpoint)), kind="best", ck=pending.checkpoint)

    # --------------------------------------------------------------------- loop
    def run(self) -> Iterator[Report]:
        """Train until the step budget is reached or `controls.stop()`; yield a report per event.

        Evaluations are read a chunk at a time between training steps (on a frozen copy of the
        weights they score), so a long validation text never holds training or the controls up.
        While paused the loop idles (waking every 0.1 s), finishes an evaluation in progress and
        still answers save requests.
        """
        cfg, controls = self.config, self.controls
        self.publish()
        if self.step_count == 0 and cfg.eval_every != 0 and self._pending is None:
            self._pending = self._start_eval()
        while True:
            for path in controls.take_saves():
                yield from self._save_reports(path)
            if controls.stopped or (cfg.steps and self.step_count >= cfg.steps):
                if self._pending is not None and not controls.stopped:
                    while self._pending is not None:  # the budget is spent: finish the scoring
                        yield from self._advance_eval()
                self._pending = None
                self.publish()  # readers see the final weights
                yield DoneReport(self.step_count, "stopped" if controls.stopped else "budget")
                return
            if controls.paused:
                if self._snapshot_time < self._last_step_time:
                    self.publish()
                if self._pending is not None:
                    yield from self._advance_eval()
                    continue
                controls.wait_running(0.1)
                continue
            report = self.train_step()
            yield report
            if isinstance(report, DivergedReport):
                self._pending = None
                continue
            self._last_step_time = now = time.perf_counter()
            if now - self._snapshot_time >= SNAPSHOT_EVERY_S:
                self.publish()
            if self._eval_due():
                while self._pending is not None:  # evaluations asked for closer than one takes
                    yield from self._advance_eval()
                self._pending = self._start_eval()
                yield from self._advance_eval()
            elif self._pending is not None:
                yield from self._advance_eval()
            if cfg.save_every and self.step_count % cfg.save_every == 0 and self.checkpoint is not None:
                yield from self._save_reports(None)

    def _save_reports(
        self, path: str | None, kind: str = "checkpoint", ck: ckpt_io.Checkpoint | None = None
    ) -> Iterator[SaveReport]:
        target = path or (str(self.checkpoint) if self.checkpoint is not None else None)
        if target is None:
            yield SaveReport(self.step_count, "", kind, "no checkpoint path was given")
            return
        try:
            saved = ckpt_io.save(target, ck) if ck is not None else self.save(target)
            yield SaveReport(self.step_count, str(saved), kind)
        except LstmTuiError as e:
            yield SaveReport(self.step_count, target, kind, str(e))

    # -------------------------------------------------------------- checkpoints
    def to_checkpoint(self) -> ckpt_io.Checkpoint:
        """Everything needed to resume this run exactly."""
        arrays: dict[str, np.ndarray] = {f"opt/{k}": v for k, v in self.optimizer.state_arrays().items()}
        for layer, arrays_of_layer in enumerate(self.state):  # state/h{l}, and state/c{l} for an LSTM
            for name, a in zip(self.model.config.state_names, arrays_of_layer, strict=True):
                arrays[f"state/{name}{layer}"] = a
        if self.average is not None:  # the model saved is the average; these are the weights trained
            for k, v in self.model.params.items():
                arrays[f"train/{k}"] = v
        arrays["data/positions"] = self.batches.positions
        arrays["history/loss"] = np.asarray(self.loss_history, dtype=np.float32)
        vh = np.asarray(self.val_history, dtype=np.float64).reshape(-1, 2)
        arrays["history/val_step"] = vh[:, 0].astype(np.int64)
        arrays["history/val_loss"] = vh[:, 1]
        meta = {
            "train": self.config.to_dict(),
            "corpus": {
                "name": self.corpus.name,
                "size": self.corpus.size,
                "split": self.corpus.split,
                "n_train": self.corpus.n_train,  # where validation starts: a watcher re-reads it
                "path": self.corpus.path,  # where the text was read (lstm-tui watch looks there)
            },
            "epoch": self.epoch,
            "step": self.step_count,
            "chars_seen": self.batches.chars_seen,
            "batch_used": self.batch,
            "seq_len_used": self.seq_len,
            "optimizer_t": self.optimizer.t,
            "optimizer_lr": self.optimizer.lr,
            "smooth_loss": self.smooth_loss,
            "elapsed_s": self.elapsed_s,
            "best_val": self.best_val if math.isfinite(self.best_val) else None,
            "stale_evals": self._stale_evals,
            "rng": _jsonable_rng(self.rng),
        }
        return ckpt_io.Checkpoint(model=self.run_model(), vocab=self.corpus.vocab, meta=meta, arrays=arrays)

    def _frozen_checkpoint(self, model: CharModel) -> ckpt_io.Checkpoint:
        """The run as it is now, with `model` (a copy of the weights) and copies of every array."""
        ck = self.to_checkpoint()
        arrays = {k: np.array(v, copy=True) for k, v in ck.arrays.items()}
        return ckpt_io.Checkpoint(model=model, vocab=ck.vocab, meta=ck.meta, arrays=arrays)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save atomically to `path` (default: the run's checkpoint)."""
        target = path if path is not None else self.checkpoint
        if target is None:
            raise CheckpointError("no checkpoint path was given")
        return ckpt_io.save(target, self.to_checkpoint())

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        corpus: Corpus,
        checkpoint: str | os.PathLike[str] | None = None,
        controls: Controls | None = None,
        **overrides: Any,
    ) -> Trainer:
        """Continue the run saved at `path` on `corpus` (which must have the same vocabulary).

        `overrides` may change settings that do not alter the model's shape (steps, lr, ...).
        """
        ck = ckpt_io.load(path)
        if ck.vocab != corpus.vocab:
            extra = sorted(set(corpus.vocab.chars) - set(ck.vocab.chars))
            detail = ""
            if extra:
                detail = f" (the text has {len(extra)} characters the model never saw, e.g. {''.join(extra[:5])!r})"
            raise CheckpointError(
                f"{path} was trained on a different vocabulary ({ck.vocab.size} characters) than "
                f"{corpus.name} ({corpus.vocab.size}){detail}"
            )
        try:
            saved = TrainConfig.from_dict(ck.meta["train"])
        except (KeyError, TypeError, ConfigError) as e:
            raise CheckpointError(f"{path} has an unreadable training configuration ({e})") from None
        shape_keys = {"hidden", "layers", "dtype", "cell"}
        for k, v in overrides.items():
            if k in shape_keys and v != getattr(saved, k):
                raise CheckpointError(f"--{k} {v} does not match the checkpoint's {k} {getattr(saved, k)}")
        config = replace(saved, **{k: v for k, v in overrides.items() if v is not None})
        trainer = cls(corpus, config, checkpoint=checkpoint if checkpoint is not None else path, controls=controls)
        try:
            trainer._restore(ck)
        except (KeyError, ValueError, ConfigError) as e:
            raise CheckpointError(f"{path} cannot be resumed on {corpus.name}: {e}") from None
        return trainer

    def _restore(self, ck: ckpt_io.Checkpoint) -> None:
        meta = ck.meta
        if ck.model.config != self.model.config:
            raise ConfigError("the model's shape differs from the checkpoint's")
        trained = ck.group("train")  # the weights trained, when the model saved is their average
        for k, v in ck.model.params.items():
            self.model.params[k][...] = trained.get(k, v)
            if self.average is not None:
                self.average[k][...] = v  # (a run that did not average starts from its weights)
        self.optimizer.load_state_arrays(ck.group("opt"), int(meta["optimizer_t"]))
        if "optimizer_lr" in meta and self.config.lr == TrainConfig.from_dict(meta["train"]).lr:
            self.optimizer.lr = float(meta["optimizer_lr"])
        positions = ck.arrays["data/positions"]
        same_shape = (int(meta["batch_used"]), int(meta["seq_len_used"])) == (self.batch, self.seq_len)
        if same_shape:
            try:
                self.batches = Batches(self.corpus.train_ids, self.batch, self.seq_len, positions)
                self.batches.chars_seen = int(meta["chars_seen"])
                st = ck.group("state")
                names = self.model.config.state_names
                self.state = tuple(
                    tuple(st[f"{name}{layer}"] for name in names) for layer in range(self.model.config.layers)
                )
            except ConfigError:
                pass  # another text of the same vocabulary: start its streams afresh
        self.step_count = int(meta["step"])
        self.smooth_loss = float(meta["smooth_loss"])
        self.elapsed_s = float(meta.get("elapsed_s", 0.0))
        self.best_val = float(meta["best_val"]) if meta.get("best_val") is not None else math.inf
        self._stale_evals = int(meta.get("stale_evals", 0))
        self._eval_started_at = self.batches.chars_seen
        self.loss_history = [float(v) for v in ck.arrays.get("history/loss", np.zeros(0))]
        steps = ck.arrays.get("history/val_step", np.zeros(0, np.int64))
        losses = ck.arrays.get("history/val_loss", np.zeros(0))
        self.val_history = [(int(s), float(v)) for s, v in zip(steps, losses, strict=True)]
        self.rng.bit_generator.state = _rng_from_json(meta["rng"])
        self._speed = 0.0
        self._take_rollback()
        self.publish()


def _jsonable_rng(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state with its 128-bit integers as strings (JSON-safe everywhere)."""
    st = rng.bit_generator.state

    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, int) and not isinstance(v, bool):
            return {"int": str(v)}
        return v

    return conv(st)


def _rng_from_json(d: Any) -> Any:
    if isinstance(d, dict):
        if set(d) == {"int"}:
            return int(d["int"])
        return {k: _rng_from_json(v) for k, v in d.items()}
    return d


@dataclass
class _PendingEval:
    """An evaluation being read: what it scores, and the run as it was when it began."""

    evaluator: Evaluator
    step: int
    epoch: float
    train_loss: float
    checkpoint: ckpt_io.Checkpoint | None  # saved as the best model if this evaluation is a record


def activation_bytes(batch: int, seq_len: int, config: ModelConfig) -> int:
    """About how much memory one training step holds: per layer the (T, B, G*H) gates (G = 4 for
    an LSTM, 3 for a GRU, 1 for an RNN) and up to four (T+1, B, H) states (an LSTM's hidden, cell,
    tanh(cell), h_{t-1}); the (T, B, V) logits and their gradient."""
    itemsize = np.dtype(config.dtype).itemsize
    T, B, H, V = seq_len, batch, config.hidden, config.vocab_size
    per_layer = T * B * config.gates * H + 4 * (T + 1) * B * H
    return itemsize * (config.layers * per_layer + 3 * T * B * V)


def machine_memory() -> int:
    """This machine's physical memory in bytes (a generous guess where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 16 << 30


def check_memory(batch: int, seq_len: int, config: ModelConfig) -> None:
    """Refuse, in one line, a batch shape whose activations cannot fit in this machine's memory.

    Judged on the batch and window actually used, after they have shrunk to fit the text."""
    need, have = activation_bytes(batch, seq_len, config), machine_memory()
    if need > MEMORY_FRACTION * have:
        raise ConfigError(
            f"batch {batch} x seq-len {seq_len} x hidden {config.hidden} needs about {need / 2**30:.1f} GiB "
            f"for one training step, more than this machine can give ({have / 2**30:.1f} GiB in all); "
            "lower --batch, --seq-len or --hidden"
        )
