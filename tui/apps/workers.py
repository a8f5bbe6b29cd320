"""The work done off the UI thread: the training loop, generation, and next-character tables.

These functions run in Textual thread workers. They talk to the screen only through `post`
(an `App.post_message`), never by touching widgets, and check `cancelled()` every item.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from core import (
    CharModel,
    Controls,
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
from core.race import race_checkpoint, save_report
from core.sampling import prime_for
from core.trainer import Report

from ..plain.curve import LossCurve
from .messages import (
    Candidate,
    Diverged,
    Evaluated,
    Finished,
    Generated,
    GenerationDone,
    Progress,
    Sampling,
    Saved,
)

Post = Callable[..., object]

# Seconds between progress messages: at most 5 a second. The screen shows progress 4 times a
# second (lifecycle.UI_TICK_S), so this keeps one fresh for every tick; more would only cost the training
# thread (a curve frame per message) and the UI thread (a message to handle) for nothing shown.
POST_EVERY_S = 0.2
# Seconds between messages of generated text (~30 a second; each carries what was sampled since).
GENERATED_EVERY_S = 1 / 30


def train(
    trainers: dict[str, Trainer],
    reports: Iterable[tuple[str, Report, float]],
    controls: Controls,
    curves: dict[str, LossCurve],
    post: Post,
    cancelled: Callable[[], bool],
    time_curves: dict[str, LossCurve] | None = None,
) -> None:
    """Iterate the training loop, posting progress at most every POST_EVERY_S and every other event
    at once. Runs in the one thread that owns the trainers' weights.

    `reports` is the loop: (model name, report, seconds that model has had) from one trainer's
    `run()` or a race's (core.race); `controls` are the loop's own. `time_curves`, if given, get
    the same losses against those seconds. When the loop ends at its step budget, a model whose
    last evaluation is older than its final weights is scored again, so that the screen ends on
    the final weights' score; saves asked for meanwhile are made; then every trainer publishes
    its final weights and a Finished is posted for each model.
    """
    latest: dict[str, StepReport] = {}  # each model's latest step
    moved: set[str] = set()  # models with news since the last post
    evaluations: dict[str, EvalReport] = {}  # not yet posted
    seconds = dict.fromkeys(trainers, 0.0)
    ended: dict[str, str] = {}  # name -> why its own loop ended
    last_post = 0.0

    def flush() -> None:
        nonlocal last_post
        for name in [n for n in trainers if n in moved]:
            by_time = time_curves[name].frame() if time_curves else None
            post(Progress(name, latest.get(name), curves[name].frame(), seconds[name], by_time))
        for name, report in evaluations.items():
            post(Evaluated(name, report))
        moved.clear()
        evaluations.clear()
        last_post = time.monotonic()

    def evaluated(name: str, report: EvalReport) -> None:
        curves[name].add_val(report.step, report.val_loss)
        if time_curves:
            time_curves[name].add_val(seconds[name], report.val_loss)
        evaluations[name] = report
        moved.add(name)

    try:
        for name, report, race_s in reports:
            if cancelled():
                break
            seconds[name] = race_s
            if isinstance(report, StepReport):
                curves[name].add(report.step, report.loss, report.smooth_loss)
                if time_curves:
                    time_curves[name].add(race_s, report.loss, report.smooth_loss)
                latest[name] = report
                moved.add(name)
            elif isinstance(report, EvalReport):
                evaluated(name, report)
                if not latest and last_post == 0.0:
                    flush()  # the evaluation before the first step: show it at once
            elif isinstance(report, SaveReport):
                flush()
                post(Saved(name, report))
            elif isinstance(report, DivergedReport):
                flush()
                post(Diverged(name, report))
            elif isinstance(report, DoneReport):
                ended[name] = report.reason
            if time.monotonic() - last_post >= POST_EVERY_S or controls.paused or controls.stopped:
                flush()
        else:
            flush()
            for path in controls.take_saves():  # asked for while the loop was ending
                for name, trainer in trainers.items():
                    post(Saved(name, save_report(trainer, save_target(trainers, name, trainer, path))))
    finally:
        flush()
    for name, trainer in trainers.items():
        trainer.publish()
        post(Finished(name, DoneReport(trainer.step_count, ended.get(name, "cancelled"))))


def save_target(trainers: dict[str, Trainer], name: str, trainer: Trainer, path: str | None) -> str | Path | None:
    """Where a save asked for at `path` (None: each model's checkpoint) puts model `name`: `path`
    itself for one model, `path` with the model's name in it for a race (core.race)."""
    if path is None:
        return trainer.checkpoint
    return path if len(trainers) == 1 else race_checkpoint(path, name)


def generate(
    run_id: int,
    stepper: StepperLike,
    vocab: Vocab,
    prime_ids: np.ndarray,
    length: int,
    rng: np.random.Generator,
    settings: Callable[[], Sampling],
    post: Post,
    cancelled: Callable[[], bool],
) -> None:
    """Stream `length` characters continuing `prime_ids`, at most ~30 messages a second.

    `settings()` (temperature, top-k, top-p) is read before every character, so a change applies
    to the rest of the stream; a message is posted whenever they change, so that each carries the
    settings all of its characters were drawn with.
    """
    logits, state = stepper.prime(prime_for(vocab, prime_ids))  # (an empty seed: after a newline)
    stream = stepper.stream(state)
    pending: list[int] = []
    last_post = time.monotonic()
    s = settings()
    stopped = False
    for i in range(length):
        if cancelled():
            stopped = True
            break
        now_settings = settings()
        if now_settings != s and pending:
            post(Generated(run_id, vocab.decode(pending), s))
            pending = []
        s = now_settings
        if logits is None:  # no seed and no newline in the text: the first character is drawn uniformly
            nxt = int(rng.integers(stepper.config.vocab_size))
        else:
            nxt = sample(logits, rng, s.temperature, s.top_k, s.top_p)
        pending.append(nxt)
        now = time.monotonic()
        if now - last_post >= GENERATED_EVERY_S:
            post(Generated(run_id, vocab.decode(pending), s))
            pending, last_post = [], now
        if i + 1 < length:
            logits = stream.feed(nxt)
    if pending:
        post(Generated(run_id, vocab.decode(pending), s))
    post(GenerationDone(run_id, stopped))


def next_chars(
    stepper: StepperLike, vocab: Vocab, seed: str, sampling: Sampling, k: int
) -> tuple[list[Candidate], list[str]]:
    """The `k` likeliest characters after `seed` at the sampling temperature, each with the
    probability it is drawn with once top-k and top-p have cut (0 and `cut` for those they
    removed), and the seed characters skipped."""
    ids, skipped = vocab.encode_known(seed)
    logits, _ = stepper.prime(prime_for(vocab, ids))  # (an empty seed: after a newline)
    if logits is None:  # nothing read at all: the first character is drawn uniformly (as generate does)
        p = kept = np.full(vocab.size, 1.0 / vocab.size)
    else:
        p = probabilities(logits, sampling.temperature)  # (V,) the ranking, before any cut
        kept = probabilities(logits, sampling.temperature, sampling.top_k, sampling.top_p)  # (V,)
    order = np.lexsort((-p, -kept))[:k]  # what may be drawn first, likeliest first; then what was cut
    return [Candidate(vocab.chars[int(i)], float(kept[i]), bool(kept[i] == 0 < p[i])) for i in order], skipped


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
