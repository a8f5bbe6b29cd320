"""The work done off the UI thread: the training loop, generation, and next-character tables.

These functions run in Textual thread workers. They talk to the screen only through `post`
(an `App.post_message`), never by touching widgets, and check `cancelled()` every item.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core import (
    CharModel,
    DivergedReport,
    DoneReport,
    EvalReport,
    SaveReport,
    StepReport,
    Trainer,
    Vocab,
    probabilities,
    sample,
)
from core.model import StepperLike
from core.race import Race

from .messages import (
    Candidate,
    CurveFrame,
    Diverged,
    Evaluated,
    Finished,
    Generated,
    GenerationDone,
    Progress,
    RaceDiverged,
    RaceEvaluated,
    RaceFinished,
    RaceProgress,
    RaceSaved,
    Saved,
)

Post = Callable[..., object]

# Seconds between progress messages: at most 5 a second. The screen shows progress 4 times a
# second (app.UI_TICK_S), so this keeps one fresh for every tick; more would only cost the training
# thread (a curve frame per message) and the UI thread (a message to handle) for nothing shown.
POST_EVERY_S = 0.2
# Seconds between messages of generated text (~30 a second; each carries what was sampled since).
GENERATED_EVERY_S = 1 / 30


class LossCurve:
    """Training loss per step, kept as at most `2 * points` bucket means (buckets double as it grows).

    Adding a step is O(1); a frame for the plot is a few hundred points however long the run.
    """

    def __init__(self, points: int = 200) -> None:
        self.points = points
        self.bucket = 1  # steps per bucket
        self._steps: list[float] = []
        self._raw: list[float] = []
        self._smooth: list[float] = []
        self._sum = 0.0
        self._n = 0
        self._last_step = 0
        self._last_smooth = float("nan")
        self._val: list[tuple[int, float]] = []

    @classmethod
    def from_history(
        cls, losses: list[float], val: list[tuple[int, float]], step: int, smoothing: float, points: int = 200
    ) -> LossCurve:
        """A curve pre-filled with a resumed run's history (`losses` end at step `step`)."""
        curve = cls(points)
        first = step - len(losses) + 1
        smooth = float("nan")
        for i, loss in enumerate(losses):
            smooth = loss if i == 0 else smoothing * smooth + (1 - smoothing) * loss
            curve.add(first + i, loss, smooth)
        for s, v in val:
            curve.add_val(s, v)
        return curve

    def add(self, step: int, loss: float, smooth: float) -> None:
        """Record one step's loss and smoothed loss."""
        self._sum += loss
        self._n += 1
        self._last_step, self._last_smooth = step, smooth
        if self._n < self.bucket:
            return
        self._steps.append(step)
        self._raw.append(self._sum / self._n)
        self._smooth.append(smooth)
        self._sum, self._n = 0.0, 0
        if len(self._steps) >= 2 * self.points:  # merge neighbours: half as many, twice as wide
            self._steps = self._steps[1::2]
            self._raw = [(a + b) / 2 for a, b in zip(self._raw[0::2], self._raw[1::2], strict=True)]
            self._smooth = self._smooth[1::2]
            self.bucket *= 2

    def add_val(self, step: int, loss: float) -> None:
        """Record one evaluation."""
        self._val.append((step, loss))

    def frame(self) -> CurveFrame:
        """A copy of the curve (the unfinished bucket included) and at most ~`2 * points` evaluations."""
        steps, raw, smooth = list(self._steps), list(self._raw), list(self._smooth)
        if self._n:
            steps.append(self._last_step)
            raw.append(self._sum / self._n)
            smooth.append(self._last_smooth)
        val = self._val
        stride = max(1, len(val) // (2 * self.points))
        if stride > 1:
            val = val[::-1][::stride][::-1]  # thin, keeping the latest
        return CurveFrame(
            steps=np.asarray(steps, dtype=np.float64),
            raw=np.asarray(raw, dtype=np.float64),
            smooth=np.asarray(smooth, dtype=np.float64),
            val_steps=np.asarray([s for s, _ in val], dtype=np.float64),
            val=np.asarray([v for _, v in val], dtype=np.float64),
            total_steps=self._last_step if self._last_step else (val[-1][0] if val else 0),
        )


def train(trainer: Trainer, curve: LossCurve, post: Post, cancelled: Callable[[], bool]) -> None:
    """Iterate `trainer.run()`, posting progress at most every POST_EVERY_S and every other event at once.

    Runs in the training thread, which owns the weights; publishes a final snapshot when the loop ends.
    """
    controls = trainer.controls
    last_post = 0.0
    step: StepReport | None = None  # not yet posted
    evaluation: EvalReport | None = None  # not yet posted

    def flush() -> None:
        nonlocal step, evaluation, last_post
        if step is not None:
            post(Progress(step, curve.frame()))
        if evaluation is not None:
            post(Evaluated(evaluation))
        step = evaluation = None
        last_post = time.monotonic()

    try:
        for report in trainer.run():
            if cancelled():
                break
            if isinstance(report, StepReport):
                curve.add(report.step, report.loss, report.smooth_loss)
                step = report
            elif isinstance(report, EvalReport):
                curve.add_val(report.step, report.val_loss)
                evaluation = report
                if step is None and last_post == 0.0:
                    flush()  # the evaluation before the first step: show it at once
            elif isinstance(report, SaveReport):
                flush()
                post(Saved(report))
            elif isinstance(report, DivergedReport):
                flush()
                post(Diverged(report))
            elif isinstance(report, DoneReport):  # run() published the final weights
                flush()
                post(Finished(report))
                return
            if time.monotonic() - last_post >= POST_EVERY_S or controls.paused or controls.stopped:
                flush()
    finally:
        flush()
    trainer.publish()
    post(Finished(DoneReport(trainer.step_count, "cancelled")))


def save(trainer: Trainer, path: str | None, post: Post) -> None:
    """Save outside the training loop (only once it has ended: then nobody else touches the weights)."""
    target = path or (str(trainer.checkpoint) if trainer.checkpoint is not None else None)
    if target is None:
        post(Saved(SaveReport(trainer.step_count, "", "checkpoint", "no checkpoint path was given")))
        return
    try:
        saved = trainer.save(target)
    except Exception as e:  # noqa: BLE001 - any failure becomes a visible notice
        post(Saved(SaveReport(trainer.step_count, target, "checkpoint", str(e))))
        return
    post(Saved(SaveReport(trainer.step_count, str(saved), "checkpoint")))


def generate(
    run_id: int,
    stepper: StepperLike,
    vocab: Vocab,
    prime_ids: np.ndarray,
    length: int,
    rng: np.random.Generator,
    temperature: Callable[[], float],
    post: Post,
    cancelled: Callable[[], bool],
) -> None:
    """Stream `length` characters continuing `prime_ids`, at most ~30 messages a second.

    `temperature()` is read before every character, so a change applies to the rest of the stream.
    """
    logits, state = stepper.prime(prime_ids)
    stream = stepper.stream(state)
    pending: list[int] = []
    last_post = time.monotonic()
    t = temperature()
    stopped = False
    for i in range(length):
        if cancelled():
            stopped = True
            break
        t = temperature()
        if logits is None:  # no seed: the first character is drawn uniformly
            nxt = int(rng.integers(stepper.config.vocab_size))
        else:
            nxt = sample(logits, rng, t)
        pending.append(nxt)
        now = time.monotonic()
        if now - last_post >= GENERATED_EVERY_S:
            post(Generated(run_id, vocab.decode(pending), t))
            pending, last_post = [], now
        if i + 1 < length:
            logits = stream.feed(nxt)
    if pending:
        post(Generated(run_id, vocab.decode(pending), t))
    post(GenerationDone(run_id, stopped))


def next_chars(
    stepper: StepperLike, vocab: Vocab, seed: str, temperature: float, k: int
) -> tuple[list[Candidate], list[str]]:
    """The `k` most likely characters after `seed` at `temperature`, and the seed characters skipped."""
    ids, skipped = vocab.encode_known(seed)
    logits, _ = stepper.prime(ids)
    if logits is None:
        p = np.full(vocab.size, 1.0 / vocab.size)  # nothing read yet: every character equally likely
    else:
        p = probabilities(logits, temperature)
    order = np.argsort(-p, kind="stable")[:k]
    return [Candidate(vocab.chars[int(i)], float(p[i])) for i in order], skipped


class StepperCache:
    """One Stepper per published snapshot (building one copies the weights)."""

    def __init__(self) -> None:
        self._entry: tuple[CharModel, StepperLike] | None = None

    def get(self, snapshot: CharModel) -> StepperLike:
        entry = self._entry
        if entry is not None and entry[0] is snapshot:
            return entry[1]
        stepper = snapshot.stepper()
        self._entry = (snapshot, stepper)
        return stepper


def race(
    race: Race,
    curves: dict[str, LossCurve],
    post: Post,
    cancelled: Callable[[], bool],
    time_curves: dict[str, LossCurve] | None = None,
) -> None:
    """Iterate `race.run()` (core.race), posting progress at most every POST_EVERY_S for all the
    models together and every other event at once. Runs in the one thread that owns the models.
    `time_curves`, if given, get the same losses against the seconds each model has had."""
    controls = race.controls
    steps: dict[str, StepReport | None] = dict.fromkeys(race.names)
    evaluations: dict[str, EvalReport] = {}  # not yet posted
    last_post = 0.0
    moved = False

    def flush() -> None:
        nonlocal last_post, moved
        if moved:
            frames = {name: c.frame() for name, c in curves.items()}
            by_time = {name: c.frame() for name, c in time_curves.items()} if time_curves else None
            post(RaceProgress(dict(steps), frames, dict(race.seconds), by_time))
        for name, report in evaluations.items():
            post(RaceEvaluated(name, report))
        evaluations.clear()
        moved = False
        last_post = time.monotonic()

    reason = "cancelled"
    try:
        for rr in race.run():
            if cancelled():
                break
            report, name = rr.report, rr.cell
            if isinstance(report, StepReport):
                curves[name].add(report.step, report.loss, report.smooth_loss)
                if time_curves:
                    time_curves[name].add(rr.race_s, report.loss, report.smooth_loss)
                steps[name] = report
                moved = True
            elif isinstance(report, EvalReport):
                curves[name].add_val(report.step, report.val_loss)
                if time_curves:
                    time_curves[name].add_val(rr.race_s, report.val_loss)
                evaluations[name] = report
                moved = True
            elif isinstance(report, SaveReport):
                flush()
                post(RaceSaved(name, report))
            elif isinstance(report, DivergedReport):
                flush()
                post(RaceDiverged(name, report))
            if time.monotonic() - last_post >= POST_EVERY_S or controls.paused or controls.stopped:
                flush()
        else:
            reason = "stopped" if controls.stopped else "budget"
    finally:
        flush()
    for trainer in race.trainers.values():
        trainer.publish()
    post(RaceFinished(reason))
