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
from core.models import StepperLike
from core.race import Race

from ..plain.curve import LossCurve
from .messages import (
    Candidate,
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
            report, name = rr.report, rr.name
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
