"""The training loop as a generator of small immutable reports, and its thread-safe controls.

The Trainer knows nothing of threads or screens: whoever iterates `run()` owns the weights.
Other threads talk to it only through `Controls` (pause, resume, stop, learning rate, save
requests) and read only `Trainer.snapshot`, a copy of the weights published between steps.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import best as best_io
from . import checkpoint as ckpt_io
from . import run_state
from .batches import Batches
from .config import EVAL_INTERVAL, EVAL_MIN_CHARS, MIN_LR_FRACTION, TrainConfig
from .corpus import Corpus, fingerprint
from .engine import Engine, EngineFactory, numpy_engine
from .errors import CheckpointError, ConfigError, LstmTuiError
from .evaluate import Evaluation, Scoring
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
    """After an evaluation on the evaluation text: read as one sequence from a fresh state (the
    one-pass score, val_loss), and in blocks each from a blank state (the cold-start score)."""

    step: int
    epoch: float
    train_loss: float  # smoothed training loss at this step
    val_loss: float  # mean loss on the evaluation text, nats per character
    accuracy: float  # greedy teacher-forced accuracy on it
    evaluation: Evaluation  # ground truth against prediction, per character
    on_validation: bool  # True: held-out text; False: the training text itself
    best: bool  # lower than this run's full evaluations of trained weights so far
    chars: int = 0  # characters scored
    # True: only the first `chars` of the validation text were scored (--eval-chars, or an early
    # evaluation of a run, which scores a sample and is not compared with full ones)
    sample: bool = False
    lr_cut: float | None = None  # the learning rate was cut to this after this evaluation
    final: bool = False  # the evaluation of the weights the run ended with
    # the cold-start score of the same text (core.evaluate: 64-character blocks, each from a blank
    # state); its loss by position in a block is evaluation.cold.by_position
    cold_loss: float | None = None


@dataclass(frozen=True)
class SaveReport:
    """After writing (or failing to write) a checkpoint."""

    step: int
    path: str
    kind: str  # "checkpoint" or "best"
    error: str | None = None  # one-line reason when the save failed; the model is still in memory
    val_loss: float | None = None  # the score of the weights a "best" save kept


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
        self._at_once = threading.Event()
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

    def stop(self, evaluate: bool = True) -> None:
        """Stop at the next step boundary. The loop then scores the weights it ends with on the whole
        evaluation text (to keep them as the best model if they are), unless `evaluate` is False:
        leave at once. stop(evaluate=False) during that last evaluation cuts it short."""
        if not evaluate:
            self._at_once.set()
        self._stop.set()
        self._running.set()  # wake a paused loop so it can finish

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def at_once(self) -> bool:
        """Stopped with evaluate=False: end without the last evaluation."""
        return self._at_once.is_set()

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
class Trainer:
    """Trains a model (TrainConfig.cell names it) on a corpus. Iterate `run()` in the thread that
    owns the weights. The arithmetic of each step is the engine's (core.engine): NumPy's by default.

    With a checkpoint and a held-out validation text, the weights that score best are kept in a
    best-model file beside the checkpoint, by the rule of core.best: `best_plan` says which file
    and what it holds now."""

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
        self.batches = Batches(
            corpus.train_ids, config.batch, config.seq_len, None, config.windows, config.reset_prob, self.rng
        )
        check_memory(self.batches.batch, self.batches.seq_len, self.model.config)
        self.state: State = self.model.initial_state(self.batches.batch)
        self.step_count = 0
        self.smooth_loss = math.log(corpus.vocab.size)  # a uniform guess
        self.elapsed_s = 0.0  # training time of the whole run, over every process that trained it
        self.session_steps = 0  # steps taken by this object (a resumed run's earlier ones not counted)
        self.session_s = 0.0  # their training time
        self.loss_history: list[float] = []  # per step
        self.val_history: list[tuple[int, float]] = []  # (step, evaluation loss)
        self.cold_history: list[float] = []  # the cold-start score of each of them (nan: not taken)
        self.best_val = math.inf
        self.snapshot: CharModel = self.model.copy()  # read-only for other threads
        self.last_eval: EvalReport | None = None
        # Names this run in its files, so that a resumed run knows its own best-model file. An
        # identifier, not part of the run's randomness (which the seeded generator alone drives).
        self.run_id = secrets.token_hex(6)
        self.resumed: run_state.Resumed | None = None  # what a resumed run carried over (Trainer.resume)
        self._trained = False  # False while the weights are the fresh random ones
        self._warmup: tuple[int, int] | None = None  # (first step, steps) of a learning-rate warm-up
        self._snapshot_time = 0.0
        self._last_step_time = 0.0
        self._speed = 0.0  # smoothed seconds per step
        # the moving average of the weights (TrainConfig.average), or None
        self.average: dict[str, np.ndarray] | None = None
        if config.average:
            self.average = {k: v.copy() for k, v in self.model.params.items()}
        self._pending: _PendingEval | None = None  # an evaluation being read a chunk at a time
        self._eval_started_at = 0  # chars_seen when the last evaluation began
        self._gap = EVAL_MIN_CHARS  # characters to train before the next scheduled evaluation
        self._stale_evals = 0  # evaluations in a row without a new best (for lr_decay)
        self._diverged_last = False  # the last step attempted diverged (its weights were rolled back)
        self._fingerprints: dict[str, str] = {}
        self._make_engine = engine or numpy_engine
        self.engine: Engine = self._make_engine(self)  # the arithmetic (core.engine)
        self._take_rollback()
        self.best_plan: best_io.Plan | None = self._plan_best()

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
        """Characters trained between the starts of two evaluations, with the default schedule once
        its early, shorter gaps are over (config.EVAL_MIN_CHARS)."""
        return max(EVAL_MIN_CHARS, EVAL_INTERVAL * (len(self.eval_ids) - 1))

    @property
    def session_chars_per_s(self) -> float:
        """Training throughput of this object's steps alone: characters per second of training time."""
        return self.session_steps * self.batch * self.seq_len / self.session_s if self.session_s > 0 else 0.0

    @property
    def warming_up(self) -> int:
        """Steps left in the learning-rate warm-up (0: none)."""
        if self._warmup is None:
            return 0
        start, length = self._warmup
        return max(0, start + length - self.step_count)

    def fingerprint(self, what: str) -> str:
        """core.corpus.fingerprint of the whole text ("text") or of the evaluation text ("eval"), made once."""
        if what not in self._fingerprints:
            ids = self.corpus.ids if what == "text" else self.eval_ids
            self._fingerprints[what] = fingerprint(self.corpus.vocab, ids)
        return self._fingerprints[what]

    # -------------------------------------------------------------------- steps
    def train_step(self) -> StepReport | DivergedReport:
        """One optimizer step on the next window."""
        cfg = self.config
        lr = self.controls.take_lr()
        if lr is not None:
            self.optimizer.lr = lr
        rate = self.optimizer.lr  # the run's rate; a warm-up steps at a fraction of it
        # ... as does the schedule (core.schedule: its warm-up and cosine) at every step
        warm = self._warmup_fraction() * lr_factor(cfg, self.step_count, self.elapsed_s)
        t0 = time.perf_counter()
        window = self.batches.next()
        masks = self.model.dropout_masks(self.seq_len, self.batch, self.rng)
        self.optimizer.lr = rate * warm
        try:
            loss, norm = self.engine.learn(window, masks)
            if not (math.isfinite(loss) and math.isfinite(norm)):
                self.optimizer.lr = rate
                return self._diverged(loss)
            if t0 - self._rollback_time >= SNAPSHOT_EVERY_S:
                self._take_rollback()  # these weights just gave a finite loss: safe to return to
            self.engine.apply()
            stepped_at = self.optimizer.lr
        finally:
            self.optimizer.lr = rate
        self.step_count += 1
        self.session_steps += 1
        self._trained = True
        self._diverged_last = False
        self._update_average()
        dt = time.perf_counter() - t0
        self.elapsed_s += dt
        self.session_s += dt
        a = cfg.smoothing if self.step_count > 1 else 0.0
        self.smooth_loss = a * self.smooth_loss + (1 - a) * loss
        self.loss_history.append(loss)
        self._speed = dt if self.session_steps == 1 else 0.9 * self._speed + 0.1 * dt
        return StepReport(
            step=self.step_count,
            epoch=self.epoch,
            loss=loss,
            smooth_loss=self.smooth_loss,
            chars_per_s=self.batch * self.seq_len / max(self._speed, 1e-9),
            lr=stepped_at,
            grad_norm=norm,
            elapsed_s=self.elapsed_s,
        )

    def warm_up(self, steps: int) -> None:
        """Raise the learning rate linearly from 1/steps of it to all of it over the next `steps`
        steps (Trainer.resume does this for a model whose optimizer starts afresh)."""
        self._warmup = (self.step_count, steps) if steps > 1 else None

    def _warmup_fraction(self) -> float:
        """The fraction of the learning rate the next step takes."""
        if self._warmup is None:
            return 1.0
        start, length = self._warmup
        k = self.step_count - start  # warm-up steps taken
        if k + 1 >= length or k < 0:
            self._warmup = None
            return 1.0
        return (k + 1) / length

    def _diverged(self, loss: float) -> DivergedReport:
        """Roll back to the last published (finite) weights, reset the carried state, pause."""
        self.engine.roll_back()
        self.batches.blank = (
            True  # the state starts blank again: the next window says so (a learned one learns from it)
        )
        self.publish()
        self.controls.pause()
        self._diverged_last = True
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

    # --------------------------------------------------------------- evaluation
    def evaluate(self, sample_rng: np.random.Generator | None = None) -> EvalReport:
        """Score the current weights on the whole evaluation text now, from a fresh state; remember
        the best (`keep_best` then keeps them in the best-model file if they earn it)."""
        pending = self._start_eval(sample_rng, keep_checkpoint=False)
        if pending is None:
            raise LstmTuiError("only the main process of a data-parallel run evaluates")
        return self._finish_eval(pending)

    def keep_best(self, report: EvalReport) -> list[SaveReport]:
        """Keep the current weights in the best-model file if `report`, a full evaluation of them
        (from `evaluate`), beats what the file holds (core.best). The save's report, or nothing."""
        if report.step != self.step_count:
            raise ValueError(f"the evaluation is of step {report.step}, the weights of step {self.step_count}")
        if not (self._trained and report.chars == len(self.eval_ids) - 1) or self.best_plan is None:
            return []
        return list(self._keep_best(report, self._frozen_checkpoint(self.run_model().copy())))

    def _schedule_size(self, gap: int) -> int:
        """Characters scored by a scheduled evaluation after `gap` characters of training: all of the
        evaluation text, or while the early gaps are short, the first gap / EVAL_INTERVAL of it."""
        full = len(self.eval_ids) - 1
        if self.config.eval_every is not None:
            return full
        return min(full, max(2, gap // EVAL_INTERVAL))

    def _start_eval(
        self,
        sample_rng: np.random.Generator | None = None,
        keep_checkpoint: bool = True,
        chars: int | None = None,
        final: bool = False,
        counts: bool = True,
    ) -> _PendingEval | None:
        """Begin scoring a frozen copy of the run's model on the first `chars` characters of the
        evaluation text (all of it by default); read it with `Evaluator.advance`. (None in a
        process that does not evaluate: the others of a data-parallel run.) With `counts` False
        the score changes nothing in the run (its record, the learning rate): the look a run takes
        at its weights when it starts, which a run that was never interrupted does not take."""
        self._eval_started_at = self.batches.chars_seen
        if not self.engine.is_main:
            return None
        self.engine.sync()
        model = self.run_model().copy()
        scorer = self.engine.scorer(model)
        ids = self.eval_ids if chars is None else self.eval_ids[: chars + 1]
        full = len(ids) == len(self.eval_ids)
        keep = full and self._trained  # only such an evaluation can earn the best-model file
        return _PendingEval(
            evaluator=Scoring(scorer, ids, self.corpus.vocab, rng=sample_rng),
            step=self.step_count,
            epoch=self.epoch,
            train_loss=self.smooth_loss,
            # what the best-model file gets if this evaluation sets a record: the run as it was
            checkpoint=(
                self._frozen_checkpoint(model) if keep_checkpoint and keep and self.best_plan is not None else None
            ),
            eligible=keep,
            counts=counts and keep,
            final=final,
        )

    def _finish_eval(self, pending: _PendingEval) -> EvalReport:
        ev = pending.evaluator.result()
        best = pending.eligible and ev.loss < self.best_val
        lr_cut = None
        if best and pending.counts:
            self.best_val = ev.loss
            self._stale_evals = 0
        elif (
            pending.counts
            and not best
            and math.isfinite(ev.loss)
            and self.config.lr_decay < 1
            and self.config.lr_patience
            and not anneals(self.config)  # a cosine with an end anneals by itself
        ):
            self._stale_evals += 1
            floor = self.config.lr * MIN_LR_FRACTION
            if self._stale_evals >= self.config.lr_patience and self.optimizer.lr > floor:  # stalled
                self._stale_evals = 0
                self.optimizer.lr = max(floor, self.optimizer.lr * self.config.lr_decay)
                lr_cut = self.optimizer.lr
        self.val_history.append((pending.step, ev.loss))
        self.cold_history.append(ev.cold.loss if ev.cold is not None else math.nan)
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
            sample=ev.n < len(self.corpus.val_ids) - 1,
            lr_cut=lr_cut,
            final=pending.final,
            cold_loss=ev.cold.loss if ev.cold is not None else None,
        )
        self.last_eval = report
        return report

    def restart(self) -> Trainer:
        """A fresh run (new random weights) with the same text, settings, checkpoint and engine."""
        return type(self)(self.corpus, self.config, checkpoint=self.checkpoint, engine=self._make_engine)

    @property
    def base_lr(self) -> float:
        """The run's rate (config.lr, cut on a stalled validation, set from the controls): the one
        the schedule and a warm-up scale at each step. Between steps it is the optimizer's."""
        return self.optimizer.lr

    def budget_spent(self) -> bool:
        """The run has taken its steps or its seconds of training (TrainConfig.steps, .seconds)."""
        cfg = self.config
        return bool(cfg.steps and self.step_count >= cfg.steps) or bool(cfg.seconds and self.elapsed_s >= cfg.seconds)

    def _eval_due(self) -> bool:
        every = self.config.eval_every
        if every is None:
            return self.batches.chars_seen - self._eval_started_at >= self._gap
        return bool(every) and self.step_count % every == 0

    def _scheduled_eval(self) -> _PendingEval | None:
        """Start the evaluation the schedule asks for now, and lengthen the next gap (up to the usual)."""
        chars = self._schedule_size(self._gap)
        self._gap = min(self.eval_interval_chars, 2 * self._gap)
        return self._start_eval(chars=chars)

    def _advance_eval(self) -> Iterator[Report]:
        """Read a piece of the evaluation in progress (chunks of about as many characters as a
        training step reads, at least one); when it is complete, report it (and keep the weights
        it scored as the best model, if they earn it)."""
        pending = self._pending
        if pending is None:
            return
        ev = pending.evaluator
        chunks = max(1, (self.batch * self.seq_len) // (ev.chunk * ev.streams))
        done = False
        for _ in range(chunks):
            done = ev.advance()
            if done:
                break
        if not done:
            return
        self._pending = None
        report = self._finish_eval(pending)
        yield report
        if pending.checkpoint is not None:
            yield from self._keep_best(report, pending.checkpoint)

    def _final_eval(self) -> Iterator[Report]:
        """Score the weights the run ends with on the whole evaluation text, a chunk at a time (a
        stop with evaluate=False cuts it short), unless they are scored already, untouched by this
        run, rolled back after a divergence, or evaluations are off. The score may earn the
        best-model file but changes nothing else in the run (its record, the learning rate): a run
        stopped here and resumed goes on exactly as one that was never stopped.

        When the step budget is spent, an evaluation in progress is finished first; after a stop
        it is dropped unless it scores these very weights."""
        p = self._pending
        if p is not None and p.step != self.step_count:
            if self.controls.stopped:
                self._pending = None
            else:
                while self._pending is not None:
                    yield from self._advance_eval()
        if (
            self.config.eval_every == 0
            or self.session_steps == 0
            or self._diverged_last
            or not self.engine.is_main
            or self.controls.at_once
        ):
            return
        last, full = self.last_eval, len(self.eval_ids) - 1
        if self._pending is None and last is not None and last.step == self.step_count and last.chars == full:
            return
        p = self._pending
        if p is None or p.evaluator.n != full:
            self._pending = self._start_eval(final=True, counts=False)
        else:
            p.final = True
        while self._pending is not None:
            if self.controls.at_once:
                self._pending = None
                return
            yield from self._advance_eval()

    # --------------------------------------------------------------- best model
    def _identity(self) -> best_io.Identity:
        c = self.corpus
        return best_io.Identity(
            run=self.run_id,
            eval_text=self.fingerprint("eval"),
            corpus={"name": c.name, "size": c.size, "n_train": c.n_train, "split": c.split},
            vocab="".join(c.vocab.chars),
            eval_chars=self.config.eval_chars,
        )

    def _plan_best(self) -> best_io.Plan | None:
        """Which best-model file this run writes (None: no checkpoint, or no held-out text)."""
        if self.checkpoint is None or not self.corpus.split:
            return None
        return best_io.plan(self.checkpoint, self._identity())

    def _keep_best(self, report: EvalReport, ck: ckpt_io.Checkpoint) -> Iterator[SaveReport]:
        """Write `ck` (the run when `report` began) to the best-model file if its score beats the
        file's; a file changed by someone else since it was planned is looked at again first."""
        plan = self.best_plan
        if plan is None or not report.on_validation:
            return
        if not best_io.still_current(plan):
            try:
                replanned = self.best_plan = self._plan_best()
            except LstmTuiError as e:
                yield SaveReport(report.step, str(plan.path), "best", str(e))
                return
            if replanned is None:
                return
            plan = replanned
        if not report.val_loss < plan.threshold:
            return
        ck.meta["best_val"] = report.val_loss
        ck.meta["best"] = best_io.record(
            self._identity(), report.val_loss, report.step, report.chars, self.corpus.name, report.cold_loss
        )
        for r in self._save_reports(str(plan.path), kind="best", ck=ck):
            if r.error is None:
                held = best_io.Held(val_loss=report.val_loss, step=report.step, own=True)
                self.best_plan = replace(plan, held=held, stamp=best_io.stamp_of(plan.path))
                r = replace(r, step=report.step, val_loss=report.val_loss)
            yield r

    # --------------------------------------------------------------------- loop
    def run(self) -> Iterator[Report]:
        """Train until the step budget is reached or `controls.stop()`; yield a report per event.

        Evaluations are read a chunk at a time between training steps (on a frozen copy of the
        weights they score), so a long validation text never holds training or the controls up.
        The first comes at once (unless these weights are scored already), the next after gaps that
        start short and double up to the usual interval; early ones score a sample of the text.
        When the run ends, the weights it ends with are scored on the whole text (`_final_eval`).
        While paused the loop idles (waking every 0.1 s), finishes an evaluation in progress and
        still answers save requests.
        """
        cfg, controls = self.config, self.controls
        self.publish()
        # a resumed run whose weights were scored when they were saved does not score them again
        scored = (self.last_eval is not None and self.last_eval.step == self.step_count) or (
            self.session_steps == 0 and bool(self.val_history) and self.val_history[-1][0] == self.step_count
        )
        if cfg.eval_every != 0 and self._pending is None and not scored:
            self._pending = self._start_eval(chars=self._schedule_size(EVAL_MIN_CHARS), counts=False)
        while True:
            for path in controls.take_saves():
                yield from self._save_reports(path)
            if controls.stopped or self.budget_spent():
                yield from self._final_eval()
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
                self._pending = self._scheduled_eval()
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
        steps: int = 0,
        seconds: float = 0.0,
        **overrides: object,
    ) -> Trainer:
        """Continue the run saved at `path` on `corpus` for `steps` more steps, or `seconds` more
        seconds of training (0: until stopped).

        The text may use every character the model knows or only some of them (it is then read
        with the model's vocabulary); a character the model never saw is refused. `overrides` may
        change settings that do not alter the model's shape (lr, batch, ...). `trainer.resumed`
        says what was carried over and what starts afresh (core.run_state.Resumed): a model saved
        without its optimizer's state warms its learning rate up over LR_WARMUP_STEPS steps, and
        on another text (fine-tuning) its streams and scores start afresh.
        """
        ck = ckpt_io.load(path)
        corpus = run_state.readable_text(path, ck, corpus)
        config = run_state.resumed_config(path, ck, corpus, overrides)
        start = int(ck.meta.get("step", 0))
        config = replace(config, steps=start + steps if steps else 0)
        elapsed = float(ck.meta.get("elapsed_s", 0.0))  # (a cosine spans the run as it now stands)
        config = replace(config, seconds=elapsed + seconds if seconds else 0.0)
        trainer = cls(
            corpus, config, checkpoint=checkpoint if checkpoint is not None else path, controls=controls, engine=engine
        )
        try:
            trainer.resumed = run_state.restore(trainer, ck, str(path))
        except (KeyError, ValueError, ConfigError) as e:
            raise CheckpointError(f"{path} cannot be resumed on {corpus.name}: {e}") from None
        trainer.engine.reload()
        trainer._take_rollback()
        trainer.publish()
        trainer.best_plan = trainer._plan_best()
        return trainer


@dataclass
class _PendingEval:
    """An evaluation being read: what it scores, and the run as it was when it began."""

    evaluator: Scoring
    step: int
    epoch: float
    train_loss: float
    checkpoint: ckpt_io.Checkpoint | None  # saved as the best model if this evaluation is a record
    eligible: bool = True  # a full evaluation of trained weights: it can beat the run's best score
    counts: bool = True  # ...and, doing so, set the run's record (not the first look, nor the last)
    final: bool = False  # the evaluation of the weights the run ends with
