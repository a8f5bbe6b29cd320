"""Talking to a model on screen: generation from a seed and the next-character table, for every app.

The training app, the watcher and the race all let the reader type a seed and a temperature and
see the model continue it; the training app and the watcher also show the likeliest next
characters. `PlayApp` holds that behaviour once, and `compose_model_screen` the layout of the
one-model screen, which the watcher shares with the training app. Each app says only which
weights to use, through two hooks: `play_models()` (the weights generation starts from now, by
name) and `play_vocab()`; an app with a next-character view also supplies `play_model()`, its one
model.

Why a common App base class and not a plain mixin: Textual collects `@on` handlers per class, in
its message pump's metaclass (`_MessagePumpMeta` puts them in each class's own
`_decorated_handlers`), and dispatch walks the instance's MRO reading that attribute. A class that
is not a MessagePump never gets one, so `@on` handlers in a plain mixin would silently never fire.
The same walk means a subclass must not define a handler of the same name again (nor its own
`on_mount`, `on_unmount` or `on_worker_state_changed`, which PlayApp defines): both would run. So
the lifecycle handlers live here once, and the apps change what they do through the plain methods
documented as hooks (`start`, `stop`, `worker_failed`, `thread_engines`). tui.apps.lifecycle adds
the lifecycle of a screen that trains, in the same way.

The threads: every hook is called on the UI thread and must return weights that no worker writes
(the training app's published snapshot copies, the watcher's newest read, each racer's snapshot).
Generation and the next-character table run in thread workers that reach the screen only through
`post_message`; a new generation cancels the running one, and escape cancels it too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core import CharModel, Vocab

from ..plain.threads import Limit, Limited, limit_threads
from ..widgets.comparison import ComparisonView
from ..widgets.generate_panel import GeneratePanel
from ..widgets.help_screen import HelpScreen
from ..widgets.loss_chart import LossChart
from ..widgets.next_chars import NextCharView
from ..widgets.stats import StatsPanel
from ..widgets.status_line import Part, StatusLine
from . import workers
from .keys import Key, bindings, keys_help
from .messages import Generated, GenerationDone, NextChars
from .palette import AppCommands

GENERATE_CHARS = 600  # characters per generation run (per model)
NEXT_CHARS = 12  # candidates computed for the next-character view

ONE = ""  # the name of the model in an app that has one (names label the race's models)


def until_exit(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A worker-message handler that does nothing once the app is exiting: its widgets may be gone,
    and a worker's last message can arrive after they are."""

    @functools.wraps(handler)
    def guarded(self: App[Any], *args: object, **kwargs: object) -> Any:
        if self._exit or self._closing or not self.is_running:  # (a test's shutdown sets only the last)
            return None
        return handler(self, *args, **kwargs)

    return guarded


def default_seed(text: str) -> str:
    """The first few words of the text: something the model has seen, to start with."""
    words = text.replace("\n", " ").split(" ")
    seed = ""
    for w in words:
        if len(seed) + len(w) > 12:
            break
        seed += w + " "
    return seed if seed.strip() else text[:8]


def compose_model_screen(
    corpus: list[Part], model: list[Part], vocab_size: int, steps: int, tokens_per_step: int, seed: str
) -> ComposeResult:
    """The one-model screen's panels: the training app's, and the watcher's, which shows the same
    screen fed from a checkpoint. One place, because train.tcss lays both out by these ids."""
    yield StatusLine(corpus, model, id="status")
    with Horizontal(id="top"):
        yield LossChart(vocab_size, steps, id="chart")
        yield StatsPanel(steps, tokens_per_step, id="stats")
    with Vertical(id="compare-panel"):
        yield ComparisonView(id="compare")
    with Horizontal(id="bottom"):
        yield GeneratePanel(seed=seed, id="generate")
        yield NextCharView(id="next")
    yield Static("a small terminal: 80×24 or more shows every panel", id="small-note", markup=False)
    yield Footer(compact=True)


class PlayApp(App[None]):
    """An app with a GeneratePanel (and perhaps a NextCharView): generation and next characters.

    Subclasses implement `play_models()` and `play_vocab()`, and `play_model()` when
    `SHOWS_NEXT_CHARS`. What a run wrote is kept in `generated` (and the temperatures it was
    sampled at in `generation_temperatures`); the race keeps a text per model by overriding
    `_generation_started` and `_keep_generated`.
    """

    # Below these sizes the screen gets a reduced layout (see train.tcss and race.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (70, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (22, "-tall")]

    COMMANDS = App.COMMANDS | {AppCommands}  # the palette lists the app's palette_commands(), if any
    SHOWS_NEXT_CHARS: ClassVar[bool] = True  # the screen has a NextCharView that follows the seed
    KEYS: ClassVar[tuple[Key, ...]] = ()  # the app's keys (tui.apps.keys): its BINDINGS and the help's KEYS
    HELP: ClassVar[str] = ""  # the help screen's text before its KEYS section

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An app's KEYS make its BINDINGS (tui.apps.keys), so that the two cannot disagree."""
        if "KEYS" in cls.__dict__:
            cls.BINDINGS = bindings(cls.KEYS)
        super().__init_subclass__(**kwargs)

    def __init__(self, generate_chars: int = GENERATE_CHARS, notes: list[str] | None = None) -> None:
        super().__init__()
        self.notes = list(notes or [])  # what the command line chose, shown under the seed until a generation
        self.sampling_temperature = 0.8  # read by the generation threads before every character
        self.generate_chars = generate_chars  # length of a generation run, per model
        self.generation_rng: np.random.Generator | None = None  # None: a fresh unseeded one per run
        self.generated: str | dict[str, str] = ""  # what the latest run wrote (the race: a text per model)
        self.generation_temperatures: list[float] = []  # temperatures the sampler used, latest run
        self._run_id = 0  # the latest generation run (one per model)
        self._gen_runs: dict[int, str] = {}  # the latest runs: run id -> model name
        self._steppers: dict[str, workers.StepperCache] = {}  # per model name
        self._next_key: tuple[object, str, float] | None = None  # what the shown table came from
        self._next_chars: NextChars | None = None  # a table from newer weights, not on screen yet
        self._thread_limit: Limit | None = None

    # -------------------------------------------------------------- lifecycle
    def on_mount(self) -> None:
        """The screen is up: the seed box takes the keys, the arithmetic gets its threads, then the
        app starts (`start`)."""
        self.query_one("#seed", Input).focus()
        self._thread_limit = limit_threads(self.thread_engines())
        if self.notes:
            self.query_one(GeneratePanel).show_notes(self.notes)
        self.start()

    def on_unmount(self) -> None:
        """Leave no thread behind: the app stops its work (`stop`), every worker is cancelled."""
        self.stop()
        self.workers.cancel_all()
        if self._thread_limit is not None:
            self._thread_limit.restore()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's failure surfaces here as a notice (then `worker_failed`)."""
        if event.state != WorkerState.ERROR:
            return
        worker, error = event.worker, event.worker.error
        title = f"{worker.name or 'worker'} failed"
        self.notify(f"{type(error).__name__}: {error}", title=title, severity="error", timeout=30, markup=False)
        self.worker_failed(worker)

    def action_help(self) -> None:
        """Show the help screen: the app's panels, then its keys."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.HELP + "\n" + keys_help(self.KEYS)))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's palette commands, with Quit saying what quitting does here (its key's help)."""
        quits = [k.help for k in self.KEYS if k.action == "quit" and k.key == "ctrl+q"]
        for command in super().get_system_commands(screen):
            if command.title == "Quit" and quits:
                command = SystemCommand("Quit", quits[0], self.action_quit)
            yield command

    # ------------------------------------------------------------------ hooks
    def start(self) -> None:
        """The screen is up: start following or training."""

    def stop(self) -> None:
        """The app is closing: stop what `start` began (the workers are cancelled after this)."""

    def worker_failed(self, worker: Worker) -> None:
        """A worker raised (already shown as a notice)."""

    def thread_engines(self) -> list[Limited]:
        """Engines with a thread pool of their own, limited by the thread rule (tui.plain.threads)."""
        return []

    def play_models(self) -> dict[str, CharModel]:
        """The weights generation starts from now, by name. Called on the UI thread, so it must
        return weights no worker is writing. Default: `play_model()` under the name ONE."""
        return {ONE: self.play_model()}

    def play_model(self) -> CharModel:
        """The one model of an app that has one (generation and the next-character table)."""
        raise NotImplementedError

    def play_vocab(self) -> Vocab:
        """The characters the models read and write."""
        raise NotImplementedError

    def _generation_started(self) -> None:
        """A run is starting: forget what the last one wrote."""
        self.generated = ""
        self.generation_temperatures = []

    def _keep_generated(self, name: str, message: Generated) -> None:
        """Keep what model `name` wrote."""
        self.generated += message.text
        self.generation_temperatures.append(message.temperature)

    def _newer_next_chars(self, message: NextChars) -> None:
        """A table for the seed and temperature on screen, from newer weights: shown at once here;
        the training app paints it at its next tick, together with the other panels."""
        self._show_next_chars(message)

    # -------------------------------------------------------------- seed keys
    def action_focus_seed(self) -> None:
        """Put the cursor in the seed box with its text selected, so that typing replaces it."""
        seed = self.query_one("#seed", Input)
        seed.focus()
        seed.select_all()

    def action_temperature(self, direction: int) -> None:
        """Temperature one 0.05 step down or up."""
        self.query_one(GeneratePanel).nudge(direction)

    @on(GeneratePanel.GenerateRequested)
    def _on_generate_requested(self) -> None:
        """Enter in the seed or temperature box."""
        self.action_generate()

    @on(GeneratePanel.Changed)
    def _on_generate_changed(self) -> None:
        """Seed or temperature changed: the samplers (which read it before every character) and
        the next-character view follow."""
        self.sampling_temperature = self.query_one(GeneratePanel).temperature
        if self.SHOWS_NEXT_CHARS:
            self._refresh_next_chars(force=True)

    # -------------------------------------------------------------- generation
    def action_generate(self) -> None:
        """Continue the seed from the weights `play_models()` gives, each model in its own thread."""
        panel = self.query_one(GeneratePanel)
        vocab = self.play_vocab()
        ids, skipped = vocab.encode_known(panel.seed)
        if skipped:
            self.notify(
                "not in the text's characters, skipped: " + " ".join(repr(c) for c in skipped),
                title="unknown seed characters",
                severity="warning",
                markup=False,
            )
        self._stop_generation()
        self._generation_started()
        panel.start(vocab.decode(ids))
        self._gen_runs = {}
        for name, model in self.play_models().items():
            self._run_id += 1
            self._gen_runs[self._run_id] = name
            stepper = self._stepper_cache(name).get(model)  # (a copy of the weights for this run)
            self.run_worker(
                functools.partial(self._generate, self._run_id, stepper, vocab, ids, self._rng()),
                thread=True,
                group="generate",
                name=f"generate {name}" if name else "generate",
                exit_on_error=False,
            )

    def _rng(self) -> np.random.Generator:
        """A run's random numbers: `generation_rng` when set (tests seed it, to compare the text with
        core.generate's), else a fresh one. (The race's models would share a set one: NumPy's
        generators lock, so that is safe, but which model draws which number is then up to the threads.)"""
        return self.generation_rng if self.generation_rng is not None else np.random.default_rng()

    def _stepper_cache(self, name: str) -> workers.StepperCache:
        return self._steppers.setdefault(name, workers.StepperCache())

    def _generate(self, run_id: int, stepper, vocab: Vocab, ids: np.ndarray, rng: np.random.Generator) -> None:
        """A generation thread: sample characters, post them a few at a time, stop when cancelled."""
        worker = get_current_worker()
        workers.generate(
            run_id,
            stepper,
            vocab,
            ids,
            self.generate_chars,
            rng,
            lambda: self.sampling_temperature,
            self.post_message,
            lambda: worker.is_cancelled,
        )

    @on(Generated)
    @until_exit
    def _on_generated(self, message: Generated) -> None:
        """More generated characters (those of an older run are dropped)."""
        name = self._gen_runs.get(message.run_id)
        if name is None:
            return
        self._keep_generated(name, message)
        self.query_one(GeneratePanel).append_for(name, message.text)

    @on(GenerationDone)
    @until_exit
    def _on_generation_done(self, message: GenerationDone) -> None:
        """A model's generation run ended."""
        name = self._gen_runs.get(message.run_id)
        if name is not None:
            self.query_one(GeneratePanel).finish_for(name, message.stopped)

    def action_stop_generation(self) -> None:
        """Stop the text streaming in."""
        self._stop_generation()

    def _stop_generation(self) -> None:
        self.workers.cancel_group(self, "generate")

    # ------------------------------------------------------------ next chars
    @until_exit
    def _refresh_next_chars(self, force: bool = False) -> None:
        """Recompute the next-character table if the weights, seed or temperature changed."""
        panel = self.query_one(GeneratePanel)
        model = self.play_model()
        key = (model, panel.seed, panel.temperature)
        if not force and key == self._next_key:
            return
        self._next_key = key
        self.run_worker(
            functools.partial(self._compute_next_chars, model, self.play_vocab(), panel.seed, panel.temperature),
            thread=True,
            exclusive=True,
            group="next-chars",
            name="next characters",
            exit_on_error=False,
        )

    def _compute_next_chars(self, model: CharModel, vocab: Vocab, seed: str, temperature: float) -> None:
        """The next-character thread: prime on the seed, post the top candidates."""
        if get_current_worker().is_cancelled:
            return
        stepper = self._stepper_cache(ONE).get(model)
        candidates, skipped = workers.next_chars(stepper, vocab, seed, temperature, NEXT_CHARS)
        self.post_message(NextChars(model, seed, temperature, candidates, skipped))

    @on(NextChars)
    @until_exit
    def _on_next_chars(self, message: NextChars) -> None:
        """A fresh table of next characters: at once for a new seed or temperature (the user is
        typing); for newer weights, when `_newer_next_chars` says."""
        view = self.query_one(NextCharView)
        if message.seed != view.seed or message.temperature != view.temperature:
            self._next_chars = None  # older than this one
            self._show_next_chars(message)
        else:
            self._newer_next_chars(message)

    def _show_next_chars(self, message: NextChars) -> None:
        view = self.query_one(NextCharView)
        view.source = message.source
        view.show(message.seed, message.temperature, message.candidates, message.skipped)
