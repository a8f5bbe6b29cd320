"""Small messages from the worker threads to the UI thread.

High-rate messages (training progress, evaluations, next-character tables) override
`can_replace`, so a screen that falls behind drops stale frames instead of queueing them.
Every message carries complete state (never a delta), so dropping one loses nothing.

The training messages carry the name of the model they are about: the race's models by their
names, the one model of the training app by `ONE` (tui.apps.base); both apps read the same set.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from core import DivergedReport, DoneReport, EvalReport, Evaluation, SaveReport, StepReport
from core.baselines import Baselines
from core.sampling import TEMPERATURE

from ..plain.curve import CurveFrame


class Progress(Message):
    """Model `name` moved on: its latest step (None before its first) and its whole (downsampled)
    loss curve, against steps and, in a race, against the seconds it has had."""

    def __init__(
        self,
        name: str,
        report: StepReport | None,
        curve: CurveFrame,
        seconds: float = 0.0,
        time_curve: CurveFrame | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.report = report
        self.curve = curve
        self.seconds = seconds  # the model's share of the machine so far (a race's fairness, core.race)
        self.time_curve = time_curve

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Progress) and message.name == self.name


class Evaluated(Message):
    """An evaluation of model `name`: validation loss, accuracy and the truth-vs-prediction comparison."""

    def __init__(self, name: str, report: EvalReport) -> None:
        super().__init__()
        self.name = name
        self.report = report

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, Evaluated) and message.name == self.name


class Saved(Message):
    """Model `name` was written to a checkpoint, or failed to be (`report.error`)."""

    def __init__(self, name: str, report: SaveReport) -> None:
        super().__init__()
        self.name = name
        self.report = report


class Diverged(Message):
    """Model `name`'s loss became non-finite; its trainer restored its weights (and paused: alone,
    it waits to be resumed; in a race, it leaves the race)."""

    def __init__(self, name: str, report: DivergedReport) -> None:
        super().__init__()
        self.name = name
        self.report = report


class Finished(Message):
    """Model `name`'s training loop ended (`report.reason`: budget, stopped, cancelled). Posted for
    every model when the training thread is done: its last messages."""

    def __init__(self, name: str, report: DoneReport) -> None:
        super().__init__()
        self.name = name
        self.report = report


@dataclass(frozen=True)
class Sampling:
    """How the next character is drawn (core.sampling): the logits divided by the temperature, then
    only the `top_k` likeliest characters kept, then only the likeliest holding `top_p` of the
    probability. None: no such cut."""

    temperature: float = TEMPERATURE
    top_k: int | None = None
    top_p: float | None = None

    def cuts(self, sep: str = " · ") -> str:
        """The cuts in a few characters ("k 5 · p 0.90"; "" when every character may be drawn)."""
        parts = [f"k {self.top_k}"] if self.top_k is not None else []
        parts += [f"p {self.top_p:.2f}"] if self.top_p is not None else []
        return sep.join(parts)


class Generated(Message):
    """A few more generated characters for run `run_id`."""

    def __init__(self, run_id: int, text: str, sampling: Sampling) -> None:
        super().__init__()
        self.run_id = run_id
        self.text = text
        self.sampling = sampling  # the settings these characters were drawn with

    @property
    def temperature(self) -> float:
        return self.sampling.temperature


class GenerationDone(Message):
    """Generation run `run_id` ended (finished its length or was stopped)."""

    def __init__(self, run_id: int, stopped: bool) -> None:
        super().__init__()
        self.run_id = run_id
        self.stopped = stopped


@dataclass(frozen=True)
class Candidate:
    """One possible next character and its probability (0 when top-k or top-p cut it: `cut`)."""

    char: str
    p: float
    cut: bool = False


class NextChars(Message):
    """The model's most likely next characters after `seed`, drawn as `sampling` says."""

    def __init__(
        self, source: object, seed: str, sampling: Sampling, candidates: list[Candidate], skipped: list[str]
    ) -> None:
        super().__init__()
        self.source = source  # the snapshot of the weights the table was computed from
        self.seed = seed
        self.sampling = sampling
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


class BaselinesReady(Message):
    """The unigram and bigram levels of `text` (core.baselines), for the loss graph."""

    def __init__(self, text: object, levels: Baselines) -> None:
        super().__init__()
        self.text = text  # the corpus they were computed on (the graph takes them if it is still the one)
        self.levels = levels
