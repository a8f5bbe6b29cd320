"""A race: several models (one per cell) trained on the same text in turn, in one thread.

Fairness is in wall time: the model that has had the least time so far goes next, one step (and
whatever its trainer reports with it) at a time. Every model thus gets an equal share of the
machine, so a cheap cell (the RNN) takes more steps than a dear one (the LSTM) in the same
seconds, and a curve against seconds compares what each cell buys with the same time. With a
step budget each model stops at its own budget; the others go on until they reach theirs.

The race has its own controls (`RaceControls`, the same methods as `Controls`): pausing holds the
whole race between steps (and still answers save requests), a save request saves every model, a
learning rate applies to all. A model whose loss diverges leaves the race (its trainer has rolled
it back to its last finite weights, which a save writes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import LstmTuiError
from .trainer import Controls, DivergedReport, DoneReport, Report, SaveReport, StepReport, Trainer


@dataclass(frozen=True)
class RaceReport:
    """One report of one model in the race."""

    name: str  # the racer's name (the model's: lstm, gru, rnn, ...)
    report: Report
    race_s: float  # seconds this model has had so far (training and evaluation, pauses excluded)


class RaceControls(Controls):
    """The race's knobs, turned from another thread. A save request means every model."""


class Race:
    """Trains `trainers` (named by `names`) in turn; iterate `run()` in the thread that owns them.

    Each trainer must have its own Controls (the race drives them) and its own checkpoint.
    """

    def __init__(self, names: Sequence[str], trainers: Sequence[Trainer], controls: RaceControls | None = None):
        if len(names) != len(trainers) or not trainers:
            raise ValueError("a race needs one name per trainer, and at least one")
        if len({id(t.controls) for t in trainers}) != len(trainers):
            raise ValueError("every trainer in a race needs its own Controls")
        self.names = list(names)
        self.trainers = dict(zip(self.names, trainers, strict=True))
        self.controls = controls or RaceControls()
        self.seconds = dict.fromkeys(self.names, 0.0)  # each model's share of the machine so far
        self.finished: dict[str, str] = {}  # name -> why it left the race ("budget", "stopped", "diverged")

    def run(self) -> Iterator[RaceReport]:
        """Until every model has finished (its budget, a stop, a divergence): one turn at a time to
        the model that has had the least time. Yields each trainer's reports, tagged."""
        runs = {name: t.run() for name, t in self.trainers.items()}
        controls = self.controls
        while len(self.finished) < len(runs):
            for path in controls.take_saves():
                yield from self._save_all(path)
            if controls.stopped:
                for name, trainer in self.trainers.items():
                    trainer.controls.stop(evaluate=not controls.at_once)
                    if name not in self.finished:
                        yield from self._turn(name, runs[name], until_step=False)
                return
            lr = controls.take_lr()
            if lr is not None:
                for trainer in self.trainers.values():
                    trainer.controls.set_lr(lr)
            if controls.paused:
                controls.wait_running(0.1)
                continue
            name = min((n for n in self.names if n not in self.finished), key=self.seconds.__getitem__)
            yield from self._turn(name, runs[name], until_step=True)

    def _turn(self, name: str, run: Iterator[Report], until_step: bool) -> Iterator[RaceReport]:
        """Advance one model's loop until it has taken a step (or, if not `until_step`, until it ends)."""
        while True:
            t0 = time.perf_counter()
            report = next(run, None)
            self.seconds[name] += time.perf_counter() - t0
            if report is None:
                self.finished.setdefault(name, "stopped")
                return
            if isinstance(report, DoneReport):
                self.finished.setdefault(name, report.reason)
            elif isinstance(report, DivergedReport):
                self.finished[name] = "diverged"
                self.trainers[name].controls.stop()  # its loop, paused by the divergence, ends now
                until_step = False
            yield RaceReport(name, report, self.seconds[name])
            if isinstance(report, DoneReport) or (until_step and isinstance(report, StepReport)):
                return

    def _save_all(self, path: str | None) -> Iterator[RaceReport]:
        """Save every model between steps (the loops are suspended: nobody else touches the weights)."""
        for name, trainer in self.trainers.items():
            target = race_checkpoint(path, name) if path else trainer.checkpoint
            yield RaceReport(name, save_report(trainer, target), self.seconds[name])

    @property
    def step_count(self) -> int:
        """Steps taken by all the models together."""
        return sum(t.step_count for t in self.trainers.values())


def save_report(trainer: Trainer, target: str | Path | None) -> SaveReport:
    """Save `trainer` to `target`; the outcome as a SaveReport (an error becomes its message)."""
    if target is None:
        return SaveReport(trainer.step_count, "", "checkpoint", "no checkpoint path was given")
    try:
        saved = trainer.save(str(target))
    except LstmTuiError as e:
        return SaveReport(trainer.step_count, str(target), "checkpoint", str(e))
    return SaveReport(trainer.step_count, str(saved), "checkpoint")


def race_checkpoint(path: str, name: str) -> str:
    """Where model `name` of a race saved under `path` goes: `hamlet.npz` -> `hamlet.gru.npz`."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{name}{p.suffix or '.npz'}"))
