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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import checkpoint as ckpt_io
from . import run_state
from .batches import Batches
from .config import EVAL_INTERVAL, EVAL_MIN_CHARS, MIN_LR_FRACTION, TrainConfig
from .corpus import Corpus
from .engine import Engine, EngineFactory, numpy_engine
from .errors import CheckpointError, ConfigError, LstmTuiError
from .evaluate import Evaluation, Evaluator
from .memory import check_memory
from .models import CharModel, State, create_model
from .optim import Optimizer, make_optimizer
from .schedule import anneals, lr_factor

# How often (seconds of wall time) a fresh copy of the weights is published for other threads,
# and how often weights that just gave a finite loss are kept to roll back to on divergence.
SNAPSHOT_EVERY_S = 0.25


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
    """Trains a model (TrainConfig.cell names it) on a corpus. Iterate `run()` in the thread that
    owns the weights. The arithmetic of each step is the engine's (core.engine): NumPy's by default."""

    def __init__(
        self,
        corpus: Corpus,
        config: TrainConfig | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        controls: Controls | None = None,
        engine: EngineFactory | None = None,
    ):
        self.corpus = corpus
        self.config = config = config or TrainConfig()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.controls = controls or Controls()
        self.rng = np.random.default_rng(config.seed)
        self.model = create_model(config.model_config(corpus.vocab.size), self.rng)
        self.optimizer: Optimizer = make_optimizer(
            config.optimizer,
            self.model.params,
            config.lr,
            beta2=config.beta2,
            weight_decay=config.weight_decay,
            decayed=self.model.decayed(self.model.config),
        )
        # The rate the schedule scales (core.schedule): config.lr, cut on a stalled validation,
        # set from the controls. The optimizer steps at base_lr x the schedule's factor.
        self.base_lr = config.lr
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
        self._make_engine = engine or numpy_engine
        self.engine: Engine = self._make_engine(self)  # the arithmetic (core.engine)
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
            self.base_lr = lr
        self._schedule_rate()
        t0 = time.perf_counter()
        window = self.batches.next()
        masks = self.model.dropout_masks(self.seq_len, self.batch, self.rng)
        loss, norm = self.engine.learn(window, masks)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return self._diverged(loss)
        if t0 - self._rollback_time >= SNAPSHOT_EVERY_S:
            self._take_rollback()  # these weights just gave a finite loss: safe to return to
        self.engine.apply()
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

    def _schedule_rate(self) -> None:
        """The optimizer's rate for the next step: base_lr as the schedule scales it there."""
        self.optimizer.lr = self.base_lr * lr_factor(self.config, self.step_count, self.elapsed_s)

    def _diverged(self, loss: float) -> DivergedReport:
        """Roll back to the last published (finite) weights, reset the carried state, pause."""
        self.engine.roll_back()
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
        self.engine.take_rollback()

    def _update_average(self) -> None:
        """Move the average of the weights toward the weights just stepped to. The weight of the
        past starts low, (1 + n) / (10 + n) after n steps, so early weights are soon forgotten."""
        if self.average is None:
            return
        n = self.step_count
        self.engine.update_average(min(self.config.average, (1 + n) / (10 + n)))

    def run_model(self) -> CharModel:
        """The run's model: the average of the weights when averaging, else the weights themselves
        (shares their arrays: copy it to hand it to another thread)."""
        if self.average is None:
            return self.model
        return type(self.model)(self.model.config, self.average)

    def publish(self) -> None:
        """Publish a copy of the run's model for other threads to read (generation, inspection)."""
        if not self.engine.is_main:
            return  # nobody reads another process's snapshot
        self.engine.sync()
        self.snapshot = self.run_model().copy()
        self._snapshot_time = time.perf_counter()

    def evaluate(self, sample_rng: np.random.Generator | None = None) -> EvalReport:
        """Score the current weights on the evaluation text now, from a fresh state; remember the best."""
        pending = self._start_eval(sample_rng, keep_checkpoint=False)
        if pending is None:
            raise LstmTuiError("only the main process of a data-parallel run evaluates")
        return self._finish_eval(pending)

    def _start_eval(
        self, sample_rng: np.random.Generator | None = None, keep_checkpoint: bool = True
    ) -> _PendingEval | None:
        """Begin scoring a frozen copy of the run's model; read it with `Evaluator.advance`. (None
        in a process that does not evaluate: the others of a data-parallel run.)"""
        self._eval_started_at = self.batches.chars_seen
        if not self.engine.is_main:
            return None
        self.engine.sync()
        model = self.run_model().copy()
        scorer = self.engine.scorer(model)
        return _PendingEval(
            evaluator=Evaluator(scorer, self.eval_ids, self.corpus.vocab, rng=sample_rng),
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
        elif (
            math.isfinite(ev.loss) and self.config.lr_decay < 1 and self.config.lr_patience and not anneals(self.config)
        ):
            self._stale_evals += 1
            floor = self.config.lr * MIN_LR_FRACTION
            if self._stale_evals >= self.config.lr_patience and self.base_lr > floor:  # stalled
                self._stale_evals = 0
                self.base_lr = max(floor, self.base_lr * self.config.lr_decay)
                lr_cut = self.base_lr
                self._schedule_rate()
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
        return type(self)(self.corpus, self.config, checkpoint=self.checkpoint, engine=self._make_engine)

    def budget_spent(self) -> bool:
        """The run has taken its steps or its seconds of training (TrainConfig.steps, .seconds)."""
        cfg = self.config
        return bool(cfg.steps and self.step_count >= cfg.steps) or bool(cfg.seconds and self.elapsed_s >= cfg.seconds)

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
            if controls.stopped or self.budget_spent():
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
        """Everything needed to resume this run exactly (core.run_state)."""
        self.engine.sync(everything=True)
        return run_state.checkpoint_of(self)

    def _frozen_checkpoint(self, model: CharModel) -> ckpt_io.Checkpoint:
        """The run as it is now, with `model` (a copy of the weights) and copies of every array."""
        ck = self.to_checkpoint()
        arrays = {k: np.array(v, copy=True) for k, v in ck.arrays.items()}
        return ckpt_io.Checkpoint(model=model, vocab=ck.vocab, meta=ck.meta, arrays=arrays)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save atomically to `path` (default: the run's checkpoint). In a process other than the
        main one of a data-parallel run, nothing is written (the main one holds the same run)."""
        target = path if path is not None else self.checkpoint
        if target is None:
            raise CheckpointError("no checkpoint path was given")
        if not self.engine.is_main:
            return Path(target)
        return ckpt_io.save(target, self.to_checkpoint())

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        corpus: Corpus,
        checkpoint: str | os.PathLike[str] | None = None,
        controls: Controls | None = None,
        engine: EngineFactory | None = None,
        **overrides: object,
    ) -> Trainer:
        """Continue the run saved at `path` on `corpus` (which must have the same vocabulary).

        `overrides` may change settings that do not alter the model's shape (steps, lr, ...).
        """
        ck = ckpt_io.load(path)
        config = run_state.resumed_config(path, ck, corpus, overrides)
        trainer = cls(
            corpus, config, checkpoint=checkpoint if checkpoint is not None else path, controls=controls, engine=engine
        )
        try:
            run_state.restore(trainer, ck)
        except (KeyError, ValueError, ConfigError) as e:
            raise CheckpointError(f"{path} cannot be resumed on {corpus.name}: {e}") from None
        trainer.engine.reload()
        trainer._take_rollback()
        trainer.publish()
        return trainer


@dataclass
class _PendingEval:
    """An evaluation being read: what it scores, and the run as it was when it began."""

    evaluator: Evaluator
    step: int
    epoch: float
    train_loss: float
    checkpoint: ckpt_io.Checkpoint | None  # saved as the best model if this evaluation is a record
