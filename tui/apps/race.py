"""The race screen: an LSTM, a GRU and an RNN (or any of them) learning the same text side by side.

`RaceApp(race)` builds the screen around a ready `core.race.Race`. The models train in turn in one
exclusive thread worker that iterates `race.run()` (tui.workers.race), which reaches the screen
only through `post_message`; the UI thread reaches the models only through `race.controls` and
each trainer's read-only `snapshot`. One timer paints what arrived, as in the main app.
"""

from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker
from threadpoolctl import threadpool_limits

from core import CharModel, EvalReport, Vocab
from core.race import Race, save_report

from ..plain.curve import LossCurve
from ..widgets.generate_panel import RaceGeneratePanel
from ..widgets.help_screen import HelpScreen
from ..widgets.loss_chart import SERIES_STYLES, LossChart
from ..widgets.race_comparison import RaceComparison
from ..widgets.race_stats import RaceStats
from ..widgets.status_line import StatusLine
from . import workers
from .base import PLAY_BINDINGS, PlayApp, default_seed, until_exit
from .messages import Generated, RaceDiverged, RaceEvaluated, RaceFinished, RaceProgress, RaceSaved

GENERATE_CHARS = 300  # characters per model per generation run
UI_TICK_S = 0.25  # the scoreboard follows the race this often
CHART_EVERY_TICKS = 2  # the graph every other tick
COMPARE_EVERY_S = 1.0  # the predictions at most once a second


HELP = """\
lstm-tui race trains one model per recurrent cell on the same text, with the
same size, settings and seed, and shows them learning side by side.

The models take turns in one training thread: the one that has had the least
time so far goes next. Each gets the same share of the machine, so a cheap
cell (the RNN) takes more steps than a dear one (the LSTM) in the same time:
compare them by step, and by time (the "time" column).

PANELS
  loss graph  each model's smoothed training loss per step, nats/char, in
              its colour (without colour: its marker, see the title); its
              validation losses as diamonds (without colour: its capital);
              the dashed line is ln V, a uniform guess.
  models      a line each: step, smoothed loss, validation loss, bits/char,
              chars/s and the time it has had; ▶ marks the leader on
              validation loss.
  truth vs    the start of the evaluation text, and under it each model's
  predictions guess for every next character; red and underlined is wrong.
  generate    type a seed, press enter or ctrl+g: every model continues it
              at the same temperature, from a snapshot of its weights.

KEYS
  ctrl+q      save every model and quit (ctrl+c too)
  f2          pause / resume the race
  ctrl+s      save every model now, each to its own checkpoint
              (<text>.lstm.npz, <text>.gru.npz, <text>.rnn.npz)
  ctrl+g      generate from the seed (enter in the seed box too)
  escape      stop generating
  f7 / f8     temperature down / up by 0.05 (or type it in its box)
  f6          the graph against steps or against the seconds each model
              has had (what it bought with the same share of the machine)
  f1          this help (escape closes it)
"""


class RaceApp(PlayApp):
    """Race the cells: watch them learn, compare their predictions, generate from each.
    (Generation: tui.play, every model at once; the race has no next-character view.)"""

    CSS_PATH = "race.tcss"
    TITLE = "lstm-tui race"
    SHOWS_NEXT_CHARS = False

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("f1", "help", "Help"),
        Binding("f2", "pause", "Pause"),  # f2 shows "Pause" or "Resume" (see check_action)
        Binding("f2", "resume", "Resume"),
        Binding("ctrl+s", "save", "Save"),
        *PLAY_BINDINGS,
        Binding("f6", "x_axis", "x: steps/s"),
    ]

    state: reactive[str] = reactive("starting")

    def __init__(self, race: Race, corpus_label: str | None = None, notes: list[str] | None = None) -> None:
        super().__init__(generate_chars=GENERATE_CHARS)
        self.race = race
        self.names = list(race.names)
        self.series_styles = [SERIES_STYLES[i % len(SERIES_STYLES)] for i in range(len(self.names))]
        first = race.trainers[self.names[0]]
        self.corpus = first.corpus
        self.corpus_label = corpus_label or self.corpus.name
        self._notes = list(notes or [])
        self.saved_path: str | None = None  # set once every model is saved on quit (read on a hang-up)
        self.saved_paths: dict[str, str] = {}  # name -> where it was last saved
        self.generated = dict.fromkeys(self.names, "")  # what each model wrote in the latest run
        self._curves = {name: LossCurve() for name in self.names}
        self._time_curves = {name: LossCurve() for name in self.names}  # against seconds
        self.by_seconds = False  # the graph's x axis: steps (False) or seconds each model has had
        self._frames: RaceProgress | None = None  # the latest curves, for switching the axis at once
        self._progress: RaceProgress | None = None
        self._evaluated: dict[str, EvalReport] = {}  # for the scoreboard
        self._to_compare: dict[str, EvalReport] = {}  # for the predictions
        self._compared_at = -1e9
        self._ticks = 0
        self._quitting = False
        self._quit_save_failed = False
        self._save_round: dict[str, str | None] = {}  # a save of every model in progress: name -> error
        self._blas_limit: threadpool_limits | None = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        first = self.race.trainers[self.names[0]]
        mc = first.model.config
        corpus_info = f"{self.corpus_label} · {self.corpus.size:,} chars · V={self.corpus.vocab.size}"
        cells = " · ".join(n.upper() for n in self.names)
        model = f"race {cells} · {mc.layers}×{mc.hidden} each · seed {first.config.seed}"
        yield StatusLine(corpus_info, model, id="status")
        yield LossChart(self.corpus.vocab.size, first.config.steps, names=self.names, id="chart")
        yield RaceStats(self.names, self.series_styles, id="race-stats")
        yield RaceComparison(self.names, id="race-compare")
        seed = default_seed(self.corpus.text(0, 200))
        yield RaceGeneratePanel(self.names, self.series_styles, seed=seed, id="generate")
        yield Static("80×24 or more shows the graph", id="small-note", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start the race and the timer the screen follows it on."""
        self.query_one("#race-stats").border_title = " models "
        self.query_one("#seed", Input).focus()
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")  # as the main app (see there)
        self.set_interval(UI_TICK_S, self._tick)
        for note in self._notes:
            self.notify(note, title="settings", timeout=12, markup=False)
        self.state = "running"
        self.run_worker(self._train, name="race", group="training", exclusive=True, thread=True, exit_on_error=False)

    def _train(self) -> None:
        """The training thread: the race's loop, posting progress."""
        worker = get_current_worker()
        workers.race(self.race, self._curves, self.post_message, lambda: worker.is_cancelled, self._time_curves)

    @property
    def training(self) -> bool:
        """Is the race's worker alive?"""
        return any(w.group == "training" and not w.is_finished for w in self.workers)

    def watch_state(self, state: str) -> None:
        """Mirror the state in the header."""
        self.query_one(StatusLine).state = state
        self.refresh_bindings()

    # ---------------------------------------------------------- worker messages
    @on(RaceProgress)
    def _on_progress(self, message: RaceProgress) -> None:
        """The race moved on (at most 5 a second): shown at the next tick."""
        self._progress = message

    @on(RaceEvaluated)
    def _on_evaluated(self, message: RaceEvaluated) -> None:
        """A model's evaluation: on the scoreboard at the next tick, in the predictions within a second."""
        self._evaluated[message.cell] = message.report
        self._to_compare[message.cell] = message.report

    @until_exit
    def _tick(self) -> None:
        """Paint what the race brought since the last tick."""
        self._ticks += 1
        if self.screen is not self.query_one(RaceStats).screen:
            return  # the help screen covers the panels
        self._show_progress()
        if self._ticks % CHART_EVERY_TICKS == 0:
            self.query_one(LossChart).redraw_if_new()
        if self._to_compare and time.monotonic() - self._compared_at >= COMPARE_EVERY_S:
            self._show_comparison()

    def _show_progress(self) -> None:
        progress, evaluated = self._progress, self._evaluated
        self._progress, self._evaluated = None, {}
        if progress is not None or evaluated:
            self.query_one(RaceStats).show(
                progress.steps if progress else None, evaluated, progress.seconds if progress else None
            )
        if progress is not None:
            self._frames = progress
            self.query_one(LossChart).show(self._chart_frames(progress))

    def _chart_frames(self, progress: RaceProgress):
        """The curves against the chosen x: steps, or the seconds each model has had."""
        return progress.time_curves if self.by_seconds and progress.time_curves else progress.curves

    def action_x_axis(self) -> None:
        """Plot the losses against steps or against the seconds each model has had (f6)."""
        self.by_seconds = not self.by_seconds
        chart = self.query_one(LossChart)
        budget = 0 if self.by_seconds else self.race.trainers[self.names[0]].config.steps
        frames = self._chart_frames(self._frames) if self._frames else None
        chart.set_x_axis("seconds" if self.by_seconds else "", budget, frames)

    def _show_comparison(self) -> None:
        pending, self._to_compare = self._to_compare, {}
        self._compared_at = time.monotonic()
        view = self.query_one(RaceComparison)
        for name, r in pending.items():
            view.show(name, r.evaluation, r.on_validation)

    def _catch_up(self) -> None:
        self._show_progress()
        self.query_one(LossChart).redraw_if_new()
        self._show_comparison()

    @on(RaceSaved)
    def _on_saved(self, message: RaceSaved) -> None:
        """A model was saved (or not); once every model of a save round is, say so (or quit)."""
        r, name = message.report, message.cell
        if r.kind == "best":
            return
        if r.error:
            self.notify(f"{name}: {r.error}", title="not saved", severity="error", timeout=15, markup=False)
        else:
            self.saved_paths[name] = r.path
        self._save_round[name] = r.error
        if len(self._save_round) < len(self.names):
            return
        failed = [n for n, e in self._save_round.items() if e]
        self._save_round = {}
        if self._quitting:
            if failed:
                self._quitting, self._quit_save_failed = False, True
                self.state = "stopped" if not self.training else self.state
                self.notify("press ctrl+q again to quit without saving", title="still here", severity="warning")
                return
            self.saved_path = self.saved_paths[self.names[0]]
            if not self.training:
                self.exit()
        elif not failed:
            paths = ", ".join(self.saved_paths[n] for n in self.names)
            self.notify(f"{paths}", title="saved", markup=False)

    @on(RaceDiverged)
    @until_exit
    def _on_diverged(self, message: RaceDiverged) -> None:
        """A model's loss became non-finite: it leaves the race, the others go on."""
        self.query_one(RaceStats).out[message.cell] = "diverged"
        self.notify(
            f"{message.cell} left the race: {message.report.message}",
            title="diverged",
            severity="error",
            timeout=30,
            markup=False,
        )

    @on(RaceFinished)
    def _on_finished(self, message: RaceFinished) -> None:
        """The race's loop ended: quit (once saved), or say so."""
        if self._exit or self._closing:
            return
        if self._quitting:
            if self.saved_path is not None:
                self.exit()
            return
        self._catch_up()
        if message.reason == "budget":
            self.state = "done"
            self.notify("every model reached its step budget; generate away, or ctrl+q to save and quit")
        else:
            self.state = "stopped"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure surfaces here as a notice."""
        if event.state != WorkerState.ERROR:
            return
        worker, error = event.worker, event.worker.error
        self.notify(f"{type(error).__name__}: {error}", title=f"{worker.name} failed", severity="error", markup=False)
        if worker.group == "training":
            self.state = "error"
            if self._quitting:
                self._save_direct()

    # ----------------------------------------------------------------- actions
    async def action_quit(self) -> None:
        """Save every model to its checkpoint, then exit (a failed save keeps the app open)."""
        if self._quitting:
            return
        if self._quit_save_failed:
            self.exit()
            return
        self._quitting = True
        self.state = "stopping"
        self._stop_generation()
        if self.training:
            self.race.controls.request_save(None)
            self.race.controls.stop()  # the loop saves every model, then ends; then we exit
        else:
            self._save_direct()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """f2 pauses a running race and resumes a paused one."""
        running = self.state != "paused"
        if action == "pause":
            return running
        if action == "resume":
            return not running
        return True

    def action_pause(self) -> None:
        """Pause the race (f2 while it runs)."""
        self.action_toggle_pause()

    def action_resume(self) -> None:
        """Resume the race (f2 while paused)."""
        self.action_toggle_pause()

    def action_toggle_pause(self) -> None:
        """Pause or resume the whole race (f2)."""
        if self._quitting:
            return
        if not self.training:
            self.notify("the race has finished")
            return
        controls = self.race.controls
        if controls.paused:
            controls.resume()
            self.state = "running"
        else:
            controls.pause()
            self.state = "paused"

    def action_save(self) -> None:
        """Save every model now, each to its own checkpoint (at the next turn while racing)."""
        if self.training:
            self.race.controls.request_save(None)
        else:
            self._save_direct()

    @work(thread=True, group="save", name="save", exit_on_error=False)
    def _save_direct(self) -> None:
        """Save every model from a thread once the race's loop has ended (nobody else touches them)."""
        for name, trainer in self.race.trainers.items():
            self.post_message(RaceSaved(name, save_report(trainer, trainer.checkpoint)))

    def action_help(self) -> None:
        """Show the help screen."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(HELP))

    # ----------------------------------------------------- generation (tui.play)
    def play_models(self) -> dict[str, CharModel]:
        """Every model continues the seed, each from its trainer's published snapshot (a copy the
        race's thread swaps in whole, never the weights it is training)."""
        return {name: trainer.snapshot for name, trainer in self.race.trainers.items()}

    def play_vocab(self) -> Vocab:
        return self.corpus.vocab

    def _generation_started(self) -> None:
        """A text per model."""
        self.generated = dict.fromkeys(self.names, "")
        self.generation_temperatures = []

    def _keep_generated(self, name: str, message: Generated) -> None:
        self.generated[name] += message.text
        self.generation_temperatures.append(message.temperature)

    def on_unmount(self) -> None:
        """Leave no thread behind."""
        self.race.controls.stop()
        self.workers.cancel_all()
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
