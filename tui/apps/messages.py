"""Small messages from the worker threads to the UI thread.

High-rate messages (training progress, evaluations, next-character tables) override
`can_replace`, so a screen that falls behind drops stale frames instead of queueing them.
Every message carries complete state (never a delta), so dropping one loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from core import DivergedReport, DoneReport, EvalReport, Evaluation, SaveReport, StepReport

from ..plain.curve import CurveFrame


class Progress(Message):
    """Training moved on: the latest step and the whole (downsampled) loss curve."""

    def __init__(self, report: StepReport, curve: CurveFrame) -> None:
        super().__init__()
        self.report = report
        self.curve = curve

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress)


class Evaluated(Message):
    """An evaluation finished: validation loss, accuracy and the truth-vs-prediction comparison."""

    def __init__(self, report: EvalReport) -> None:
        super().__init__()
        self.report = report

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Evaluated)


class Saved(Message):
    """A checkpoint was written, or failed to be written (`report.error`)."""

    def __init__(self, report: SaveReport) -> None:
        super().__init__()
        self.report = report


class Diverged(Message):
    """The loss became non-finite; the trainer restored its weights and paused itself."""

    def __init__(self, report: DivergedReport) -> None:
        super().__init__()
        self.report = report


class Finished(Message):
    """The training loop ended (budget reached or stopped). The last message of a run."""

    def __init__(self, report: DoneReport) -> None:
        super().__init__()
        self.report = report


class Generated(Message):
    """A few more generated characters for run `run_id`."""

    def __init__(self, run_id: int, text: str, temperature: float) -> None:
        super().__init__()
        self.run_id = run_id
        self.text = text
        self.temperature = temperature  # the temperature these characters were sampled at


class GenerationDone(Message):
    """Generation run `run_id` ended (finished its length or was stopped)."""

    def __init__(self, run_id: int, stopped: bool) -> None:
        super().__init__()
        self.run_id = run_id
        self.stopped = stopped


@dataclass(frozen=True)
class Candidate:
    """One possible next character and its probability."""

    char: str
    p: float


class NextChars(Message):
    """The model's most likely next characters after `seed` at `temperature`."""

    def __init__(
        self, source: object, seed: str, temperature: float, candidates: list[Candidate], skipped: list[str]
    ) -> None:
        super().__init__()
        self.source = source  # the snapshot of the weights the table was computed from
        self.seed = seed
        self.temperature = temperature
        self.candidates = candidates
        self.skipped = skipped  # seed characters outside the vocabulary (ignored)

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NextChars)


class Compared(Message):
    """A teacher-forced comparison computed on the training text (the validation one comes in Evaluated)."""

    def __init__(self, evaluation: Evaluation, step: int) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.step = step

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Compared)


# ------------------------------------------------------------------------- a race
class RaceProgress(Message):
    """A race moved on: each model's latest step (None before its first) and every curve."""

    def __init__(
        self,
        steps: dict[str, StepReport | None],
        curves: dict[str, CurveFrame],
        seconds: dict[str, float],
        time_curves: dict[str, CurveFrame] | None = None,
    ) -> None:
        super().__init__()
        self.steps = steps
        self.curves = curves  # losses against steps
        self.seconds = seconds  # each model's share of the machine so far (core.race)
        self.time_curves = time_curves  # the same losses against those seconds

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RaceProgress)


class RaceEvaluated(Message):
    """An evaluation of one model of the race."""

    def __init__(self, cell: str, report: EvalReport) -> None:
        super().__init__()
        self.cell = cell
        self.report = report

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RaceEvaluated) and message.cell == self.cell


class RaceSaved(Message):
    """One model of the race was saved (or failed to be: `report.error`)."""

    def __init__(self, cell: str, report: SaveReport) -> None:
        super().__init__()
        self.cell = cell
        self.report = report


class RaceDiverged(Message):
    """One model's loss became non-finite: it left the race (rolled back to finite weights)."""

    def __init__(self, cell: str, report: DivergedReport) -> None:
        super().__init__()
        self.cell = cell
        self.report = report


class RaceFinished(Message):
    """The race's loop ended (every model reached its budget, or it was stopped). The last message."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason
