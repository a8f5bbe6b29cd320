"""The lstm-tui app: watch a character-level LSTM learn, and talk to it while it does.

`make_app(trainer)` builds the app around a ready `core.Trainer` (new or resumed). Training runs
in one exclusive thread worker that iterates `trainer.run()`; generation, next-character tables
and saves made after training ended run in their own thread workers. Workers reach the screen
only through `post_message`; the UI thread reaches the trainer only through `trainer.controls`
and the read-only `trainer.snapshot`. The handlers of training's messages only keep the latest;
one timer (`_tick`) paints it, each panel at its own pace, so that the UI thread takes as little
as it can of the interpreter the training thread shares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState, get_current_worker
from threadpoolctl import threadpool_limits

from core import CharModel, Controls, EvalReport, NumpyEngine, Trainer, Vocab, evaluate
from core.errors import ConfigError

from ..plain.curve import LossCurve
from ..widgets.comparison import ComparisonView
from ..widgets.help_screen import HelpScreen
from ..widgets.inside_screen import InsideScreen
from ..widgets.loss_chart import LossChart
from ..widgets.prompt_screen import PromptScreen
from ..widgets.stats import StatsPanel
from ..widgets.status_line import StatusLine, describe_model
from . import workers
from .base import PLAY_BINDINGS, SEED_BINDING, PlayApp, compose_model_screen, default_seed, until_exit
from .messages import Compared, Diverged, Evaluated, Finished, NextChars, Progress, Saved
from .palette import AppCommands, PaletteCommand

# The screen follows training on one timer, so that what changed is painted together in one pass.
# Every millisecond the UI thread spends painting is a millisecond of the interpreter (the GIL)
# the training thread waits for, so each panel repaints only as often as a reader can follow it.
UI_TICK_S = 0.25  # the stats panel follows training this often (4 a second)
CHART_EVERY_TICKS = 2  # the loss graph every other tick (twice a second)
COMPARE_EVERY_S = 1.0  # the comparison at most once a second (evaluations may come faster)
NEXT_EVERY_TICKS = 4  # the next-character view follows the training weights once a second


class LstmApp(PlayApp):
    """Train, watch, generate. (Generation and the next-character view: tui.play.)"""

    CSS_PATH = "train.tcss"
    TITLE = "lstm-tui"
    COMMANDS = App.COMMANDS | {AppCommands}  # lists palette_commands()

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # Ctrl+C is how people stop a program over SSH: here it saves and quits too (it replaces
        # Textual's "press ctrl+q" hint and the seed box's copy, which ctrl+shift+c still does in
        # most terminals).
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("f1", "help", "Help"),
        Binding("f2", "pause", "Pause"),  # f2 shows "Pause" or "Resume" (see check_action)
        Binding("f2", "resume", "Resume"),
        Binding("ctrl+s", "save", "Save"),
        *PLAY_BINDINGS,
        SEED_BINDING,
        Binding("f4", "inside", "Inside"),
    ]

    state: reactive[str] = reactive("starting")
    compare_on_validation: reactive[bool] = reactive(True)

    def __init__(self, trainer: Trainer, corpus_label: str | None = None, notes: list[str] | None = None) -> None:
        super().__init__()
        self.trainer = trainer
        self._notes = list(notes or [])  # shown once the screen is up
        self.corpus_label = corpus_label or trainer.corpus.name
        self.saved_path: str | None = None  # where the model was saved on quit (read by the CLI)
        self.last_save: tuple[int, str] | None = None  # (step, path) of the last successful save
        self.evaluations = 0  # evaluations shown
        self._quitting = False  # a quit is waiting for the final save
        self._quit_save_failed = False  # a second ctrl+q then quits without saving
        self._reset_pending = False
        # What arrived from the training thread and is not on screen yet (shown by _tick).
        self._progress: Progress | None = None
        self._evaluated: EvalReport | None = None  # for the stats panel
        self._to_compare: EvalReport | None = None  # for the comparison panel
        self._compared_at = -math.inf  # time.monotonic() of the last comparison shown
        self._ticks = 0
        self._blas_limit: threadpool_limits | None = None
        # Read the history once, before the training thread owns the trainer.
        self._curve = self._history_curve()
        self._last_val = trainer.val_history[-1] if trainer.val_history else None

    def _history_curve(self) -> LossCurve:
        t = self.trainer
        return LossCurve.from_history(list(t.loss_history), list(t.val_history), t.step_count, t.config.smoothing)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        t = self.trainer
        corpus = t.corpus
        corpus_info = f"{self.corpus_label} · {corpus.size:,} chars · V={corpus.vocab.size}"
        model = describe_model(t.model.config)
        seed = default_seed(corpus.text(0, 200))
        yield from compose_model_screen(
            corpus_info, model, corpus.vocab.size, t.config.steps, t.batch * t.seq_len, seed
        )

    def on_mount(self) -> None:
        """Show the history, start training, and start the timer the screen follows training on."""
        self.query_one(LossChart).reset(self._curve.frame() if self.trainer.step_count else None)
        self.query_one(StatsPanel).reset(self.trainer.step_count, self._last_val)
        self.query_one("#seed", Input).focus()
        # One BLAS thread per call while the screen is up: a multithreaded BLAS spins waiting for
        # a core the UI thread is using (benchmarks/blas_threads.py: training with the app open
        # ran at 51% of headless with two BLAS threads, 87% with one). The NumPy engine's own
        # threads, which the command line chose (tui.plain.threads), never spin: they stay.
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        if not isinstance(self.trainer.engine, NumpyEngine):
            self.trainer.engine.limit_threads(1)  # the PyTorch engine's pool: one thread
        self.set_interval(UI_TICK_S, self._tick)
        for note in self._notes:
            self.notify(note, title="settings", timeout=12, markup=False)
        if self.trainer.shrunk:
            self.notify(
                f"text is short: training with batch {self.trainer.batch} × seq-len {self.trainer.seq_len}",
                title="shape reduced",
            )
        self._start_training()
        self._refresh_next_chars(force=True)

    # ---------------------------------------------------------------- training
    def _start_training(self) -> None:
        if self.trainer.controls.stopped:  # restarting after a stop: fresh controls
            self.trainer.controls = Controls()
        self._quit_save_failed = False  # the model will change: a quit must save again
        self.state = "running" if not self.trainer.controls.paused else "paused"
        self.run_worker(
            self._train, name="training", group="training", exclusive=True, thread=True, exit_on_error=False
        )

    def _train(self) -> None:
        """The training thread: iterate the trainer, post progress."""
        worker = get_current_worker()
        workers.train(self.trainer, self._curve, self.post_message, lambda: worker.is_cancelled)

    @property
    def training(self) -> bool:
        """Is the training worker alive?"""
        return any(w.group == "training" and not w.is_finished for w in self.workers)

    def watch_state(self, state: str) -> None:
        """Mirror the training state in the header and the footer's f2 label."""
        self.query_one(StatusLine).state = state
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """f2 pauses a running model and resumes any other."""
        running = self.state in ("starting", "running")
        if action == "pause":
            return running
        if action == "resume":
            return not running
        return True

    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        """Training moved on (at most 5 a second): shown at the next tick."""
        self._progress = message

    @on(Evaluated)
    def _on_evaluated(self, message: Evaluated) -> None:
        """An evaluation: shown in the stats at the next tick, in the comparison within a second."""
        self.evaluations += 1
        self._evaluated = self._to_compare = message.report

    @until_exit
    def _tick(self) -> None:
        """Paint what training brought since the last tick, each panel at its own pace."""
        self._ticks += 1
        stats = self.query_one(StatsPanel)
        if self.screen is not stats.screen and not self.screen.is_modal:
            return  # another screen covers the panels (the inside view): catch up when it closes
        self._show_progress()
        if self._next_chars is not None:
            message, self._next_chars = self._next_chars, None
            self._show_next_chars(message)
        if self._ticks % CHART_EVERY_TICKS == 0:
            self.query_one(LossChart).redraw_if_new()
        if self._to_compare is not None and time.monotonic() - self._compared_at >= COMPARE_EVERY_S:
            self._show_comparison()
        if self._ticks % NEXT_EVERY_TICKS == 0:
            self._refresh_next_chars()

    def _show_progress(self) -> None:
        """The latest step and evaluation into the stats, the latest curve to the graph."""
        progress, evaluated = self._progress, self._evaluated
        self._progress = self._evaluated = None
        if progress is not None or evaluated is not None:
            self.query_one(StatsPanel).show(progress.report if progress else None, evaluated)
        if progress is not None:
            self.query_one(LossChart).show(progress.curve)

    def _show_comparison(self) -> None:
        """The latest evaluation into the comparison (or a new one on the training text)."""
        r, self._to_compare = self._to_compare, None
        if r is None:
            return
        self._compared_at = time.monotonic()
        if self.compare_on_validation or not r.on_validation:
            self.query_one(ComparisonView).show(r.evaluation, r.step, r.on_validation)
        else:
            self._compare_training_text()

    def _catch_up(self) -> None:
        """Show everything pending now (training stopped: nothing newer is coming)."""
        self._show_progress()
        self.query_one(LossChart).redraw_if_new()
        self._show_comparison()

    @on(Saved)
    def _on_saved(self, message: Saved) -> None:
        """A save finished or failed; a quit waits for this."""
        r = message.report
        if r.error:
            self.notify(r.error, title="not saved", severity="error", timeout=15)
            if self._quitting:
                self._quitting = False
                self._quit_save_failed = True
                self.notify(
                    "Save elsewhere with ctrl+p → Save as…, or press ctrl+q again to quit without saving.",
                    title="still here",
                    severity="warning",
                    timeout=30,
                )
            return
        if r.kind == "best":  # the best-validation copy beside the checkpoint: not the model to hand back
            return
        self.last_save = (r.step, r.path)
        if self._quitting:
            self.saved_path = r.path
            if not self.training:  # a save after the loop ended; otherwise Finished exits
                self.exit()
        else:
            self.notify(f"step {r.step:,} → {r.path}", title="saved")

    @on(Diverged)
    @until_exit
    def _on_diverged(self, message: Diverged) -> None:
        """Non-finite loss: the trainer restored its weights and paused."""
        self.state = "diverged"
        self.notify(message.report.message, title="training diverged", severity="error", timeout=60)

    @on(Finished)
    def _on_finished(self, message: Finished) -> None:
        """The training loop ended: quit, reset, or just say so."""
        r = message.report
        if self._exit or self._closing:
            return  # the app is shutting down (its unmount stopped training)
        if self._reset_pending:
            self._reset_pending = False
            self._do_reset()
            return
        if self._quitting:
            if self.saved_path is not None:
                self.exit()
            return
        self._catch_up()
        self._refresh_next_chars()  # the final weights
        if r.reason == "budget":
            self.state = "done"
            self.notify(f"step budget reached at step {r.step:,}; generate away, or ctrl+q to save and quit")
        elif self.state != "error":
            self.state = "stopped"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure surfaces here as a notice."""
        worker = event.worker
        if event.state != WorkerState.ERROR:
            return
        error = worker.error
        title = f"{worker.name or 'worker'} failed"
        self.notify(f"{type(error).__name__}: {error}", title=title, severity="error", timeout=30, markup=False)
        if worker.group == "training":
            self.state = "error"
            if self._quitting:  # save what we have: the loop is gone
                self._save_direct(None)

    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's training commands (the less common actions; see tui.palette)."""
        return [
            ("Save now", self.action_save, "write the model to its checkpoint"),
            ("Save as…", self.action_save_as, "write the model to another file"),
            ("Change learning rate…", self.action_change_lr, "takes effect at the next step"),
            ("Toggle comparison text", self.action_toggle_comparison, "validation or training text"),
            ("Pause / resume training", self.action_toggle_pause, "f2"),
            ("Generate", self.action_generate, "ctrl+g: continue the seed text"),
            ("Reset the model", self.action_reset_model, "start again from fresh random weights"),
            ("Look inside the model", self.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", self.action_help, "f1: panels and keys"),
        ]

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's palette commands, with Quit saying that it saves first."""
        for command in super().get_system_commands(screen):
            if command.title == "Quit":
                command = SystemCommand("Quit", "save the model to its checkpoint, then quit", self.action_quit)
            yield command

    # ---------------------------------------------------------------- actions
    async def action_quit(self) -> None:
        """Save the model to its checkpoint, then exit (a failed save keeps the app open)."""
        if self._quitting:
            return
        if self.last_save is not None and not self.training and self.last_save[0] == self.trainer.step_count:
            self.saved_path = self.last_save[1]  # nothing new since the last save
            self.exit()
            return
        if self._quit_save_failed:
            self.exit()  # second ctrl+q after a failed save: quit without saving
            return
        self._quitting = True
        self.state = "stopping"
        self._stop_generation()
        if self.training:
            self.trainer.controls.request_save(None)
            self.trainer.controls.stop()  # the loop saves, then ends; Finished then exits
        else:
            self._save_direct(None)

    def action_pause(self) -> None:
        """Pause training (f2 while it runs)."""
        self.action_toggle_pause()

    def action_resume(self) -> None:
        """Resume training (f2 while paused, after a divergence, or after a stop)."""
        self.action_toggle_pause()

    def action_toggle_pause(self) -> None:
        """Pause or resume workers."""
        if self._quitting:
            return
        controls = self.trainer.controls
        if not self.training:
            if self.state in ("stopped", "error"):
                self._start_training()
            else:
                self.notify("training has finished (step budget reached)")
            return
        if controls.paused:
            controls.resume()
            self.state = "running"
        else:
            controls.pause()
            self.state = "paused"

    def action_save(self, path: str | None = None) -> None:
        """Save now (at the next step boundary while training)."""
        if self.training:
            self.trainer.controls.request_save(path)
        else:
            self._save_direct(path)

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
        if self.training:
            self._reset_pending = True
            self.trainer.controls.stop()
        else:
            self._do_reset()

    def _do_reset(self) -> None:
        old = self.trainer
        self.trainer = old.restart()  # the same engine (NumPy or PyTorch) on the same device
        self._curve = self._history_curve()
        self.last_save = None
        self._progress = self._evaluated = self._to_compare = None  # the old model's
        self.query_one(LossChart).reset(None)
        self.query_one(StatsPanel).reset(0)
        self.notify("fresh random weights; training from step 0")
        self._start_training()

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_inside(self) -> None:
        """Open the inside view: what each unit responds to, refreshed at every evaluation."""
        if not isinstance(self.screen, InsideScreen):
            self.push_screen(InsideScreen(self.trainer, lambda: self.evaluations))

    # ----------------------------------------------------- generation (tui.play)
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

    # ------------------------------------------------------------------ saves
    @work(thread=True, group="save", name="save", exit_on_error=False)
    def _save_direct(self, path: str | None) -> None:
        """Save from a thread once the training loop has ended (then nobody else touches the weights)."""
        workers.save(self.trainer, path, self.post_message)

    def on_unmount(self) -> None:
        """Leave no thread behind: stop training and generation."""
        self.trainer.controls.stop()
        self.workers.cancel_all()
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()


def make_app(trainer: Trainer, *, corpus_label: str | None = None, notes: list[str] | None = None) -> LstmApp:
    """The app around a ready trainer. After `run()`, `app.saved_path` says where the model went.
    `notes` (what the command line chose, and why) are shown as notifications when it opens."""
    return LstmApp(trainer, corpus_label=corpus_label, notes=notes)
