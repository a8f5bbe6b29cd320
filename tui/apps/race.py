"""The race screen: an LSTM, a GRU and an RNN (or any of them) learning the same text side by side.

`RaceApp(race)` builds the screen around a ready `core.race.Race`. The models train in turn in one
exclusive thread worker that iterates `race.run()`; the lifecycle (the worker, the timer that
paints what arrived, quit-and-save, pause, errors) is tui.apps.lifecycle's, as the training app's.
This module says what is particular to a race: its panels (the curves overlaid, a line per model,
a prediction per model, a text per model), the graph against seconds, and a model leaving the race.
"""

from __future__ import annotations

from collections.abc import Iterator

from textual.app import ComposeResult
from textual.widgets import Footer, Static

from core import CharModel, Controls, DivergedReport, EvalReport, Trainer, Vocab
from core.race import Race
from core.trainer import Report

from ..plain.curve import CurveFrame, LossCurve
from ..widgets.generate_panel import RaceGeneratePanel
from ..widgets.loss_chart import SERIES_STYLES, LossChart
from ..widgets.race_comparison import RaceComparison
from ..widgets.race_stats import RaceStats
from ..widgets.status_line import SEED, Part, StatusLine, describe_corpus
from . import keys
from .base import LEVELS_HELP, SAMPLING_HELP, default_seed
from .lifecycle import TrainingApp
from .messages import Generated, Progress
from .palette import PaletteCommand

GENERATE_CHARS = 300  # characters per model per generation run

HELP = (
    """\
lstm-tui race trains one model per recurrent cell on the same text, with the
same size, settings and seed, and shows them learning side by side.

The models take turns in one training thread: the one that has had the least
time so far goes next. Each gets the same share of the machine, so a cheap
cell (the RNN) takes more steps than a dear one (the LSTM) in the same time:
compare them by step, and by time (the "time" column).

PANELS
  loss graph  each model's smoothed training loss per step, nats/char, in
              its colour (without colour: its marker, see the title); its
              validation losses as diamonds (without colour: its capital).
"""
    + LEVELS_HELP
    + """\
  models      a line each: step, smoothed loss, validation loss and the
              step it was made at (@step), bits/char, chars/s and the time
              it has had; ▶ marks the leader on validation loss.
  truth vs    the start of the evaluation text ("val text", or "train
  predictions text" when the text is too short to hold some back), and under
              it each model's guess for every next character; red and
              underlined is wrong. Each line ends in the model's accuracy @
              the step it was scored at. At the budget, the final weights
              are scored.
  generate    type a seed, press enter or ctrl+g: every model continues it
              from a snapshot of its weights, drawn the same way.
"""
)
HELP += SAMPLING_HELP


class RaceApp(TrainingApp):
    """Race the cells: watch them learn, compare their predictions, generate from each.
    (Generation: tui.apps.base, every model at once; the race has no next-character view.)"""

    CSS_PATH = "race.tcss"
    TITLE = "lstm-tui race"
    SHOWS_NEXT_CHARS = False
    KEYS = keys.RACE
    HELP = HELP

    def __init__(self, race: Race, corpus_label: str | None = None, notes: list[str] | None = None) -> None:
        first = race.trainers[race.names[0]]
        super().__init__(race.names, corpus_label or first.corpus.name, notes, GENERATE_CHARS)
        self.race = race
        self.series_styles = [SERIES_STYLES[i % len(SERIES_STYLES)] for i in range(len(self.names))]
        self.corpus = first.corpus
        self.generated = dict.fromkeys(self.names, "")  # what each model wrote in the latest run
        self.curves = {name: LossCurve() for name in self.names}
        self.time_curves = {name: LossCurve() for name in self.names}  # against seconds
        self.by_seconds = False  # the graph's x axis: steps (False) or seconds each model has had
        self._frames: dict[str, Progress] = {}  # each model's latest curves, for switching the axis at once

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        first = self.race.trainers[self.names[0]]
        shapes = {(t.model.config.layers, t.model.config.hidden) for t in self.race.trainers.values()}
        cells = " · ".join(n.upper() for n in self.names)
        model = [Part(f"race {cells}")]
        if len(shapes) == 1:  # (fitted models differ: a GPT gets its own size; the race says each as it starts)
            layers, hidden = shapes.pop()
            model.append(Part(f"{layers}×{hidden} each"))
        model.append(Part(f"seed {first.config.seed}", SEED))
        corpus = describe_corpus(self.corpus_label, self.corpus.size, self.corpus.vocab.size)
        yield StatusLine(corpus, model, id="status")
        yield LossChart(self.corpus.vocab.size, first.config.steps, names=self.names, id="chart")
        yield RaceStats(self.names, self.series_styles, id="race-stats")
        yield RaceComparison(self.names, id="race-compare")
        seed = default_seed(self.corpus.text(0, 200))
        vocab_size, sampling = self.corpus.vocab.size, self.sampling
        yield RaceGeneratePanel(self.names, self.series_styles, seed, vocab_size, sampling, id="generate")
        yield Static("80×24 or more shows the graph", id="small-note", markup=False)
        yield Footer(compact=True)

    # --------------------------------------------------------- lifecycle hooks
    def trainers(self) -> dict[str, Trainer]:
        return self.race.trainers

    @property
    def controls(self) -> Controls:
        return self.race.controls

    def reports(self) -> Iterator[tuple[str, Report, float]]:
        return ((rr.name, rr.report, rr.race_s) for rr in self.race.run())

    def prepare(self) -> None:
        self.show_baselines(self.corpus)

    def paint_progress(self, progress: dict[str, Progress], evaluated: dict[str, EvalReport]) -> None:
        """The scoreboard, and the graph of every model's latest curve."""
        self._frames.update(progress)
        steps = {name: p.report for name, p in progress.items()}
        seconds = {name: p.seconds for name, p in progress.items()}
        self.query_one(RaceStats).show(steps, evaluated, seconds)
        if progress:
            self.query_one(LossChart).show(self._chart_frames())

    def paint_comparison(self, evaluated: dict[str, EvalReport]) -> None:
        view = self.query_one(RaceComparison)
        for name, r in evaluated.items():
            view.show(name, r.evaluation, r.on_validation, r.step)

    def diverged(self, name: str, report: DivergedReport) -> None:
        """A model's loss became non-finite: it leaves the race, the others go on."""
        self.query_one(RaceStats).out[name] = "diverged"
        self.notify(f"{name} left the race: {report.message}", title="diverged", severity="error", timeout=30)

    # ----------------------------------------------------------------- actions
    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's entries for the race (see tui.apps.palette)."""
        return [
            ("Save every model now", self.action_save, "ctrl+s: each to its own checkpoint"),
            ("Pause / resume the race", self.action_toggle_pause, "f2"),
            ("Generate", self.action_generate, "ctrl+g: every model continues the seed text"),
            *self.sampling_commands(),
            ("Plot against steps or seconds", self.action_x_axis, "f6: the seconds each model has had"),
            ("Help", self.action_help, "f1: panels and keys"),
        ]

    def _chart_frames(self) -> dict[str, CurveFrame]:
        """The curves against the chosen x: steps, or the seconds each model has had."""
        return {
            name: p.time_curve if self.by_seconds and p.time_curve is not None else p.curve
            for name, p in self._frames.items()
        }

    def action_x_axis(self) -> None:
        """Plot the losses against steps or against the seconds each model has had (f6)."""
        self.by_seconds = not self.by_seconds
        budget = 0 if self.by_seconds else self.race.trainers[self.names[0]].config.steps
        frames = self._chart_frames() if self._frames else None
        self.query_one(LossChart).set_x_axis("seconds" if self.by_seconds else "", budget, frames)

    # ----------------------------------------------------- generation (tui.apps.base)
    def play_models(self) -> dict[str, CharModel]:
        """Every model continues the seed, each from its trainer's published snapshot (a copy the
        race's thread swaps in whole, never the weights it is training)."""
        return {name: trainer.snapshot for name, trainer in self.race.trainers.items()}

    def play_vocab(self) -> Vocab:
        return self.corpus.vocab

    def _generation_started(self) -> None:
        """A text per model."""
        self.generated = dict.fromkeys(self.names, "")
        self.generation_settings = []

    def _keep_generated(self, name: str, message: Generated) -> None:
        self.generated[name] += message.text
        self.generation_settings.append(message.sampling)
