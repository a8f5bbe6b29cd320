"""The lifecycle of a screen that trains, written once: the training app (one model) and the race.

`TrainingApp` runs the training loop in one exclusive thread worker (tui.apps.workers.train) and
follows it on one timer: the handlers of the worker's messages only keep the latest; `_tick`
paints it, each panel at its own pace, so that the UI thread takes as little as it can of the
interpreter the training thread shares. It owns quit-and-save (a failed save keeps the app open;
a second ctrl+q then quits without saving), pause and resume (f2, whose footer label follows the
state), saves, divergence and the end of the loop, and worker errors.

What differs between one trainer and a race of them are small hooks, plain methods that the
subclass implements (never handlers: see tui.apps.base on why a handler defined again runs twice):

  trainers()       the models by name ({ONE: trainer} for one model)
  controls         the loop's controls (the trainer's, or the race's)
  reports()        the loop, as (name, report, seconds that model has had)
  paint_progress() / paint_comparison()   put what arrived on the panels
  prepare()        the panels' first state, before training starts
  tick()           more work on every tick (the training app's next-character table)
  diverged()       a model's loss became non-finite
  loop_ended()     the loop ended (the training app's final next-character table)
  can_restart()    whether f2 starts training again once the loop has stopped

Every message the worker posts names its model (tui.apps.messages), so one set serves both apps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

from textual import on, work
from textual.reactive import reactive
from textual.worker import Worker, get_current_worker

from core import Controls, DivergedReport, EvalReport, Trainer
from core.race import save_report
from core.trainer import Report

from ..plain.curve import LossCurve
from ..plain.threads import Limited
from ..widgets.loss_chart import LossChart
from ..widgets.status_line import StatusLine
from . import workers
from .base import GENERATE_CHARS, PlayApp, until_exit
from .messages import Diverged, Evaluated, Finished, Progress, Saved

# The screen follows training on one timer, so that what changed is painted together in one pass.
# Every millisecond the UI thread spends painting is a millisecond of the interpreter (the GIL)
# the training thread waits for, so each panel repaints only as often as a reader can follow it.
UI_TICK_S = 0.25  # the numbers follow training this often (4 a second)
CHART_EVERY_TICKS = 2  # the loss graph every other tick (twice a second)
COMPARE_EVERY_S = 1.0  # the predictions at most once a second (evaluations may come faster)


class TrainingApp(PlayApp):
    """A screen that trains one model or races several: the lifecycle, with hooks for the rest."""

    RUNNING_STATES: ClassVar[tuple[str, ...]] = ("starting", "running")  # f2 pauses in these

    state: reactive[str] = reactive("starting")

    def __init__(
        self, names: list[str], corpus_label: str, notes: list[str] | None = None, generate_chars: int = GENERATE_CHARS
    ) -> None:
        super().__init__(generate_chars, notes)
        self.names = list(names)
        self.corpus_label = corpus_label
        self.saved_path: str | None = None  # where the (first) model went on quit (read by the CLI)
        self.saved_paths: dict[str, str] = {}  # name -> where it was last saved
        self.last_saves: dict[str, tuple[int, str]] = {}  # name -> (step, path) of its last good save
        self.evaluations = 0  # evaluations received (the inside view refreshes when it changes)
        self.curves: dict[str, LossCurve] = {}  # each model's losses against steps (the worker's)
        self.time_curves: dict[str, LossCurve] | None = None  # and against its seconds (a race)
        self._quitting = False  # a quit is waiting for the final save
        self._quit_save_failed = False  # a second ctrl+q then quits without saving
        self._save_round: dict[str, str | None] = {}  # a save of every model in progress: name -> error
        self._finished: dict[str, str] = {}  # models whose loop ended (name -> why), until all have
        self._after_stop: Callable[[], None] | None = None  # what to do once the loop has ended
        # What arrived from the training thread and is not on screen yet (shown by _tick).
        self._progress: dict[str, Progress] = {}
        self._evaluated: dict[str, EvalReport] = {}  # for the numbers
        self._to_compare: dict[str, EvalReport] = {}  # for the predictions
        self._compared_at = -math.inf  # time.monotonic() when the predictions were last painted
        self._ticks = 0

    # ------------------------------------------------------------------ hooks
    def trainers(self) -> dict[str, Trainer]:
        """The models, by name."""
        raise NotImplementedError

    @property
    def controls(self) -> Controls:
        """The training loop's controls."""
        raise NotImplementedError

    def reports(self) -> Iterator[tuple[str, Report, float]]:
        """The training loop (iterated in the training thread)."""
        raise NotImplementedError

    def paint_progress(self, progress: dict[str, Progress], evaluated: dict[str, EvalReport]) -> None:
        """Show the latest steps and curves, and evaluations, of the models that moved."""
        raise NotImplementedError

    def paint_comparison(self, evaluated: dict[str, EvalReport]) -> None:
        """Show the predictions of these evaluations."""
        raise NotImplementedError

    def prepare(self) -> None:
        """The panels' first state, before training starts."""

    def tick(self) -> None:
        """More work on each tick, after the panels are painted."""

    def diverged(self, name: str, report: DivergedReport) -> None:
        """Model `name`'s loss became non-finite (already rolled back by its trainer)."""

    def can_restart(self) -> bool:
        """Whether f2 starts the loop again once it has stopped (then the hook makes it ready)."""
        return False

    def loop_ended(self) -> None:
        """The loop ended and its last numbers are on screen."""

    def thread_engines(self) -> list[Limited]:
        return [t.engine for t in self.trainers().values()]

    # --------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Show the first state, start the timer the screen follows training on, and train."""
        self.prepare()
        self.set_interval(UI_TICK_S, self._tick)
        self._start_training()

    def stop(self) -> None:
        """The app is closing: the loop stops at its next step, without a last evaluation."""
        self.controls.stop(evaluate=False)

    def _start_training(self) -> None:
        self._quit_save_failed = False  # the models will change: a quit must save again
        self.state = "paused" if self.controls.paused else "running"
        self.run_worker(
            self._train, name="training", group="training", exclusive=True, thread=True, exit_on_error=False
        )

    def _train(self) -> None:
        """The training thread: iterate the loop, post what it reports."""
        worker = get_current_worker()
        workers.train(
            self.trainers(),
            self.reports(),
            self.controls,
            self.curves,
            self.post_message,
            lambda: worker.is_cancelled,
            self.time_curves,
        )

    @property
    def training(self) -> bool:
        """Is the training worker alive?"""
        return any(w.group == "training" and not w.is_finished for w in self.workers)

    def watch_state(self, state: str) -> None:
        """Mirror the training state in the header and the footer's f2 label."""
        self.query_one(StatusLine).state = state
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """f2 pauses a running loop and resumes any other."""
        running = self.state in self.RUNNING_STATES
        if action == "pause":
            return running
        if action == "resume":
            return not running
        return True

    # ---------------------------------------------------------- worker messages
    @on(Progress)
    def _on_progress(self, message: Progress) -> None:
        """A model moved on (at most 5 a second): shown at the next tick."""
        self._progress[message.name] = message

    @on(Evaluated)
    def _on_evaluated(self, message: Evaluated) -> None:
        """An evaluation: in the numbers at the next tick, in the predictions within a second."""
        self.evaluations += 1
        self._evaluated[message.name] = self._to_compare[message.name] = message.report

    @until_exit
    def _tick(self) -> None:
        """Paint what training brought since the last tick, each panel at its own pace."""
        self._ticks += 1
        if self.screen is not self.screen_stack[0] and not self.screen.is_modal:
            return  # another screen covers the panels (the inside view): catch up when it closes
        self._show_progress()
        if self._ticks % CHART_EVERY_TICKS == 0:
            self.query_one(LossChart).redraw_if_new()
        if self._to_compare and time.monotonic() - self._compared_at >= COMPARE_EVERY_S:
            self._show_comparison()
        self.tick()

    def _show_progress(self) -> None:
        progress, evaluated = self._progress, self._evaluated
        self._progress, self._evaluated = {}, {}
        if progress or evaluated:
            self.paint_progress(progress, evaluated)

    def _show_comparison(self) -> None:
        pending, self._to_compare = self._to_compare, {}
        self._compared_at = time.monotonic()
        if pending:
            self.paint_comparison(pending)

    def _catch_up(self) -> None:
        """Show everything pending now (training stopped: nothing newer is coming)."""
        self._show_progress()
        self.query_one(LossChart).redraw_if_new()
        self._show_comparison()

    @on(Saved)
    def _on_saved(self, message: Saved) -> None:
        """A model was saved (or not); once every model of a save is, say so, or quit."""
        r, name = message.report, message.name
        if r.kind == "best":  # the best-validation copy beside the checkpoint: not the model to hand back
            if r.error:
                self.notify(r.error, title="best model not saved", severity="warning", markup=False)
            return
        if r.error:
            self.notify(r.error, title=self._named("not saved", name), severity="error", timeout=15, markup=False)
        else:
            self.saved_paths[name] = r.path
            self.last_saves[name] = (r.step, r.path)
        self._save_round[name] = r.error
        if len(self._save_round) < len(self.names):
            return
        failed = any(self._save_round.values())
        self._save_round = {}
        if self._quitting:
            if failed:
                self._quitting, self._quit_save_failed = False, True
                if not self.training:
                    self.state = "stopped"
                self.notify(
                    "Press ctrl+q again to quit without saving"
                    + (", or save elsewhere with ctrl+p → Save as…" if len(self.names) == 1 else "."),
                    title="still here",
                    severity="warning",
                    timeout=30,
                )
                return
            self.saved_path = self.saved_paths[self.names[0]]
            if not self.training:  # a save after the loop ended; otherwise Finished exits
                self.exit()
        elif not failed:
            saved = ", ".join(f"step {step:,} → {path}" for step, path in (self.last_saves[n] for n in self.names))
            self.notify(saved, title="saved", markup=False)

    def _named(self, title: str, name: str) -> str:
        return f"{name}: {title}" if name else title

    @on(Diverged)
    @until_exit
    def _on_diverged(self, message: Diverged) -> None:
        """A model's loss became non-finite."""
        self.diverged(message.name, message.report)

    @on(Finished)
    def _on_finished(self, message: Finished) -> None:
        """A model's loop ended; once every model's has: quit, do what waited for it, or say so."""
        if self._exit or self._closing:
            return  # the app is shutting down (its unmount stopped training)
        self._finished[message.name] = message.report.reason
        if len(self._finished) < len(self.names):
            return
        reasons, self._finished = self._finished, {}
        if self._after_stop is not None:
            then, self._after_stop = self._after_stop, None
            then()
            return
        if self._quitting:
            if self.saved_path is not None:
                self.exit()
            return
        self._catch_up()
        self.loop_ended()
        if "budget" in reasons.values() and not self.controls.stopped:
            self.state = "done"
            where = f" at step {message.report.step:,}" if len(self.names) == 1 else " by every model"
            self.notify(f"step budget reached{where}; generate away, or ctrl+q to save and quit")
        elif self.state != "error":
            self.state = "stopped"

    def worker_failed(self, worker: Worker) -> None:
        """The training thread raised: say so; a quit waiting for it saves what there is."""
        if worker.group == "training":
            self.state = "error"
            if self._quitting:  # save what we have: the loop is gone
                self._save_direct(None)

    # ---------------------------------------------------------------- actions
    async def action_quit(self) -> None:
        """Save every model to its checkpoint, then exit (a failed save keeps the app open)."""
        if self._quitting:
            if self.training and not self.controls.at_once:  # a second ctrl+q: skip the final score
                self.controls.stop(evaluate=False)
                self.notify("saving without the final score", title="quitting")
            return
        trainers = self.trainers()
        if not self.training and all(self.last_saves.get(n, (-1,))[0] == t.step_count for n, t in trainers.items()):
            self.saved_path = self.saved_paths[self.names[0]]  # nothing new since the last save
            self.exit()
            return
        if self._quit_save_failed:
            self.exit()  # second ctrl+q after a failed save: quit without saving
            return
        self._quitting = True
        self.state = "stopping"
        self._stop_generation()
        if self.training:
            self.controls.request_save(None)
            self.controls.stop()  # the loop scores the final weights, saves, then ends; Finished then exits
            self.notify("scoring the final weights, then saving (ctrl+q again to save at once)", title="quitting")
        else:
            self._save_direct(None)

    def action_pause(self) -> None:
        """Pause training (f2 while it runs)."""
        self.action_toggle_pause()

    def action_resume(self) -> None:
        """Resume training (f2 while paused, after a divergence, or after a stop)."""
        self.action_toggle_pause()

    def action_toggle_pause(self) -> None:
        """Pause or resume the loop; after a stop, start it again where the app can."""
        if self._quitting:
            return
        controls = self.controls
        if not self.training:
            if self.state in ("stopped", "error") and self.can_restart():
                self._start_training()
            else:
                self.notify("training has finished" + (" (step budget reached)" if self.state == "done" else ""))
            return
        if controls.paused:
            controls.resume()
            self.state = "running"
        else:
            controls.pause()
            self.state = "paused"

    def action_save(self, path: str | None = None) -> None:
        """Save every model now (at the next step boundary while training; `path`: one model's Save as)."""
        if self.training:
            self.controls.request_save(path)
        else:
            self._save_direct(path)

    def stop_then(self, then: Callable[[], None]) -> None:
        """Stop the loop, and once it has ended, `then()` (at once if it is not running)."""
        if self.training:
            self._after_stop = then
            self.controls.stop(evaluate=False)
        else:
            then()

    @work(thread=True, group="save", name="save", exit_on_error=False)
    def _save_direct(self, path: str | None) -> None:
        """Save from a thread once the loop has ended (then nobody else touches the weights)."""
        trainers = self.trainers()
        for name, trainer in trainers.items():
            self.post_message(Saved(name, save_report(trainer, workers.save_target(trainers, name, trainer, path))))
