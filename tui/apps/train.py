"""The lstm-tui app: watch a character-level model learn, and talk to it while it does.

`make_app(trainer)` builds the app around a ready `core.Trainer` (new or resumed). The lifecycle
(training in one thread worker, the timer that paints what arrived, quit-and-save, pause, errors)
is tui.apps.lifecycle's; generation and the next-character table are tui.apps.base's. This module
says what is particular to one model: its panels, the comparison on the validation or the
training text, resetting the model, changing the learning rate, and the inside view.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.reactive import reactive

from core import CharModel, Controls, DivergedReport, EvalReport, Trainer, Vocab, evaluate
from core.errors import ConfigError
from core.trainer import Report

from ..plain.curve import LossCurve
from ..widgets.comparison import ComparisonView
from ..widgets.inside_screen import InsideChoice, InsideView, inside_view
from ..widgets.loss_chart import LossChart
from ..widgets.prompt_screen import PromptScreen
from ..widgets.stats import StatsPanel
from ..widgets.status_line import describe_corpus, describe_model
from . import keys
from .base import LEVELS_HELP, NEXT_CHAR_HELP, ONE, SAMPLING_HELP, compose_model_screen, default_seed, until_exit
from .lifecycle import TrainingApp
from .messages import Compared, NextChars, Progress
from .palette import PaletteCommand

NEXT_EVERY_TICKS = 4  # the next-character view follows the training weights once a second

HELP = (
    """\
lstm-tui trains a character-level LSTM on your text and shows it learning.

PANELS
  loss graph  training loss per step in nats per character: raw (thin
              braille) and smoothed (blocks); validation loss (diamonds).
"""
    + LEVELS_HELP
    + """\
  stats       loss in nats, bits/char and perplexity; validation loss
              in one pass and "cold" (64-character blocks, each from a
              blank state, as a typed seed is read) and accuracy, @ the
              step they were scored at (val*: only the start of the
              text, --eval-chars); speed; learning rate;
              time; progress and ETA when a step budget is set. When the
              budget runs out, the final weights are scored.
  truth vs    a window of the evaluation text ("truth") with the model's
  prediction  guess for each next character under it ("model"): green is
              right, red and underlined is wrong; the brighter, the more
              probability the model gave the true character.
  generate    type a seed, press enter or ctrl+g: the model continues it,
              from a snapshot of the weights while training goes on.
"""
)
HELP += SAMPLING_HELP + NEXT_CHAR_HELP


class LstmApp(TrainingApp):
    """Train, watch, generate: one model."""

    CSS_PATH = "train.tcss"
    TITLE = "lstm-tui"
    KEYS = keys.TRAIN
    HELP = HELP

    compare_on_validation: reactive[bool] = reactive(True)

    def __init__(self, trainer: Trainer, corpus_label: str | None = None, notes: list[str] | None = None) -> None:
        notes = list(notes or [])
        if trainer.shrunk:
            notes.append(f"text is short: training with batch {trainer.batch} × seq-len {trainer.seq_len}")
        super().__init__([ONE], corpus_label or trainer.corpus.name, notes)
        self.trainer = trainer
        self.inside = InsideChoice()  # the inside view's unit, layer and quantity, kept between visits
        self._read_history()

    def _read_history(self) -> None:
        """The run's history, read once, before the training thread owns the trainer."""
        t = self.trainer
        history = LossCurve.from_history(list(t.loss_history), list(t.val_history), t.step_count, t.config.smoothing)
        self.curves = {ONE: history}
        self._last_val = t.val_history[-1] if t.val_history else None

    @property
    def last_save(self) -> tuple[int, str] | None:
        """(step, path) of the model's last good save."""
        return self.last_saves.get(ONE)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        t = self.trainer
        seed = default_seed(t.corpus.text(0, 200))
        yield from compose_model_screen(
            describe_corpus(self.corpus_label, t.corpus.size, t.corpus.vocab.size),
            describe_model(t.model.config),
            t.corpus.vocab.size,
            t.config.steps,
            t.batch * t.seq_len,
            seed,
            self.sampling,
        )

    # --------------------------------------------------------- lifecycle hooks
    def trainers(self) -> dict[str, Trainer]:
        return {ONE: self.trainer}

    @property
    def controls(self) -> Controls:
        return self.trainer.controls

    def reports(self) -> Iterator[tuple[str, Report, float]]:
        trainer = self.trainer
        return ((ONE, report, trainer.elapsed_s) for report in trainer.run())

    def prepare(self) -> None:
        """The history on the graph, the step it starts from in the stats, the next characters."""
        curve = self.curves[ONE]
        self.query_one(LossChart).reset(curve.frame() if self.trainer.step_count else None)
        self.query_one(StatsPanel).reset(self.trainer.step_count, self._last_val)
        self.show_baselines(self.trainer.corpus)
        self._refresh_next_chars(force=True)

    def paint_progress(self, progress: dict[str, Progress], evaluated: dict[str, EvalReport]) -> None:
        """The latest step and evaluation into the stats, the latest curve to the graph."""
        p = progress.get(ONE)
        self.query_one(StatsPanel).show(p.report if p else None, evaluated.get(ONE))
        if p is not None:
            self.query_one(LossChart).show(p.curve)

    def paint_comparison(self, evaluated: dict[str, EvalReport]) -> None:
        """The latest evaluation into the comparison (or a new one on the training text)."""
        r = evaluated[ONE]
        if self.compare_on_validation or not r.on_validation:
            self.query_one(ComparisonView).show(r.evaluation, r.step, r.on_validation)
        else:
            self._compare_training_text()

    def tick(self) -> None:
        """The next-character table: a newer one waiting, and a new one once a second."""
        if self._next_chars is not None:
            message, self._next_chars = self._next_chars, None
            self._show_next_chars(message)
        if self._ticks % NEXT_EVERY_TICKS == 0:
            self._refresh_next_chars()

    def loop_ended(self) -> None:
        self._refresh_next_chars()  # the final weights

    def diverged(self, name: str, report: DivergedReport) -> None:
        """Non-finite loss: the trainer restored its weights and paused."""
        self.state = "diverged"
        self.notify(report.message, title="training diverged", severity="error", timeout=60)

    def can_restart(self) -> bool:
        """After a stop (or an error) f2 trains the same model on, with fresh controls."""
        if self.trainer.controls.stopped:
            self.trainer.controls = Controls()
        return True

    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's training commands (the less common actions; see tui.apps.palette)."""
        return [
            ("Save now", self.action_save, "write the model to its checkpoint"),
            ("Save as…", self.action_save_as, "write the model to another file"),
            ("Change learning rate…", self.action_change_lr, "takes effect at the next step"),
            ("Toggle comparison text", self.action_toggle_comparison, "validation or training text"),
            ("Pause / resume training", self.action_toggle_pause, "f2"),
            ("Generate", self.action_generate, "ctrl+g: continue the seed text"),
            *self.sampling_commands(),
            ("Reset the model", self.action_reset_model, "start again from fresh random weights"),
            ("Look inside the model", self.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", self.action_help, "f1: panels and keys"),
        ]

    # ---------------------------------------------------------------- actions
    def action_save_as(self) -> None:
        """Ask for a path, then save there."""
        current = str(self.trainer.checkpoint) if self.trainer.checkpoint else "model.npz"

        def answered(path: str | None) -> None:
            if path:
                self.action_save(str(Path(path).expanduser()))

        self.push_screen(PromptScreen("Save the model as", current), answered)

    def action_change_lr(self) -> None:
        """Ask for a learning rate and hand it to the trainer."""
        current = self.query_one(StatsPanel).step
        lr = current.lr if current else self.trainer.config.lr

        def answered(value: str | None) -> None:
            if not value:
                return
            try:
                new = float(value)
                self.trainer.controls.set_lr(new)
            except (ValueError, ConfigError) as e:
                self.notify(f"not a learning rate: {value} ({e})", severity="error")
                return
            self.notify(f"learning rate → {new:g} from the next step")

        self.push_screen(PromptScreen("Learning rate", f"{lr:g}"), answered)

    def action_toggle_comparison(self) -> None:
        """Show the validation text or the training text in the comparison panel."""
        if not self.trainer.corpus.split:
            self.notify("this text has no held-out part: the comparison already shows the training text")
            return
        self.compare_on_validation = not self.compare_on_validation

    def watch_compare_on_validation(self, on_validation: bool) -> None:
        """Refill the comparison for the chosen text."""
        if not self.is_mounted:
            return
        if on_validation:
            last = self.trainer.last_eval
            view = self.query_one(ComparisonView)
            view.on_validation = True
            view.waiting = "waiting for the next evaluation…"
            if last is not None:
                view.show(last.evaluation, last.step, True)
        else:
            self._compare_training_text()

    def action_reset_model(self) -> None:
        """Throw the weights away and start from fresh random ones (same settings)."""
        if self._quitting:
            return
        self._stop_generation()
        self.stop_then(self._do_reset)

    def _do_reset(self) -> None:
        self.trainer = self.trainer.restart()  # the same engine (NumPy or PyTorch) on the same device
        self._read_history()
        self.last_saves = {}
        self._progress, self._evaluated, self._to_compare = {}, {}, {}  # the old model's
        self.query_one(LossChart).reset(None)
        self.query_one(StatsPanel).reset(0)
        self.notify("fresh random weights; training from step 0")
        self._start_training()

    def action_inside(self) -> None:
        """Open the inside view: what each unit responds to, refreshed at every evaluation."""
        if not isinstance(self.screen, InsideView):
            self.push_screen(inside_view(self.trainer, lambda: self.evaluations, self.inside, self.recent_text))

    # ----------------------------------------------------- generation (tui.apps.base)
    def play_model(self) -> CharModel:
        """Generation and the next-character table read the published snapshot, a copy the
        training thread swaps in whole and never writes afterwards (never the weights it trains)."""
        return self.trainer.snapshot

    def play_vocab(self) -> Vocab:
        return self.trainer.corpus.vocab

    def _newer_next_chars(self, message: NextChars) -> None:
        """A table from newer weights is painted at the next tick, with the other panels."""
        self._next_chars = message

    # ------------------------------------------------------------- comparison
    def _compare_training_text(self) -> None:
        view = self.query_one(ComparisonView)
        view.waiting = "reading the training text…"
        self._compute_comparison(self.trainer.snapshot, self.trainer.step_count)

    @work(thread=True, exclusive=True, group="compare", name="comparison", exit_on_error=False)
    def _compute_comparison(self, snapshot, step: int) -> None:
        """Teacher-forced comparison on the start of the training text, from a snapshot."""
        corpus = self.trainer.corpus
        ids = corpus.train_ids[: min(len(corpus.train_ids), 1000)]
        self.post_message(Compared(evaluate(snapshot, ids, corpus.vocab), step))

    @on(Compared)
    @until_exit
    def _on_compared(self, message: Compared) -> None:
        """The training-text comparison is ready."""
        if not self.compare_on_validation:
            self.query_one(ComparisonView).show(message.evaluation, message.step, False)


def make_app(trainer: Trainer, *, corpus_label: str | None = None, notes: list[str] | None = None) -> LstmApp:
    """The app around a ready trainer. After `run()`, `app.saved_path` says where the model went.
    `notes` (what the command line chose, and why) are shown under the seed until a generation."""
    return LstmApp(trainer, corpus_label=corpus_label, notes=notes)
