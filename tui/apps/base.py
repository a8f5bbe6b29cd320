"""Talking to a model on screen: generation from a seed and the next-character table, for every app.

The training app, the watcher, the race and the player all let the reader type a seed, choose how
each character is drawn (temperature, top-k, top-p) and see the model continue it; all but the
race also show the likeliest next characters. `PlayApp` holds that behaviour once, and
`compose_model_screen` the layout of the one-model screen, which the watcher shares with the
training app. Each app says only which weights to use, through two hooks: `play_models()` (the
weights generation starts from now, by name) and `play_vocab()`; an app with a next-character
view also supplies `play_model()`, its one model.

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
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from core import CharModel, Vocab
from core.baselines import baselines
from core.corpus import Corpus
from core.errors import ConfigError
from core.sampling import check_settings

from ..plain.threads import Limit, Limited, limit_threads
from ..widgets.comparison import ComparisonView
from ..widgets.generate_panel import T_MAX, GeneratePanel
from ..widgets.help_screen import HelpScreen
from ..widgets.loss_chart import LossChart
from ..widgets.next_chars import NextCharView
from ..widgets.prompt_screen import PromptScreen
from ..widgets.stats import StatsPanel
from ..widgets.status_line import Part, StatusLine
from . import workers
from .keys import Key, bindings, keys_help
from .messages import BaselinesReady, Generated, GenerationDone, NextChars, Sampling
from .palette import AppCommands, PaletteCommand

GENERATE_CHARS = 600  # characters per generation run (per model)
NEXT_CHARS = 12  # candidates computed for the next-character view

ONE = ""  # the name of the model in an app that has one (names label the race's models)

# The help screens' lines on the loss graph's levels (tui.widgets.loss_chart), after each graph's
# own line: the training app's, the race's and the watcher's.
LEVELS_HELP = """\
              The levels to get below: ╌ ln V, a uniform guess among the
              V characters; · unigram, each character guessed from how
              often it occurs in the training text; ─ bigram, guessed from
              the character before it (both scored on the validation
              text). Levels that fall in one row take turns: ╌·╌·.
"""
# The help screens' lines on drawing characters, after each app's "generate" line, and on the
# next-character view: written once, as the controls are the same in every app.
SAMPLING_HELP = """\
              Each character is drawn from the model's probabilities: its
              scores divided by T, the temperature (0: greedy, the
              likeliest character every time; 1, where it starts: the
              model as it is, as lstm-tui sample draws; 2: wild), then cut
              to the k likeliest characters (top-k), then to the likeliest
              that hold p of the probability (top-p). "all", 1.00: no cut.
"""
NEXT_CHAR_HELP = """\
  next char   the likeliest next characters after the seed, with the
              probability each is drawn with at these settings; those
              top-k or top-p cut come last, marked "cut".
"""


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
    corpus: list[Part],
    model: list[Part],
    vocab_size: int,
    steps: int,
    tokens_per_step: int,
    seed: str,
    sampling: Sampling | None = None,
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
        yield GeneratePanel(seed, vocab_size, sampling, id="generate")
        yield NextCharView(id="next")
    yield Static("a small terminal: 80×24 or more shows every panel", id="small-note", markup=False)
    yield Footer(compact=True)


class PlayApp(App[None]):
    """An app with a GeneratePanel (and perhaps a NextCharView): generation and next characters.

    Subclasses implement `play_models()` and `play_vocab()`, and `play_model()` when
    `SHOWS_NEXT_CHARS`. What a run wrote is kept in `generated` (and the settings it was drawn
    with in `generation_settings`); the race keeps a text per model by overriding
    `_generation_started` and `_keep_generated`.
    """

    # Below these sizes the screen gets a reduced layout (see train.tcss and race.tcss).
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (70, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (22, "-tall")]

    COMMANDS = App.COMMANDS | {AppCommands}  # the palette lists the app's palette_commands(), if any
    SHOWS_NEXT_CHARS: ClassVar[bool] = True  # the screen has a NextCharView that follows the seed
    NEXT_CHARS: ClassVar[int] = NEXT_CHARS  # candidates computed for it (it shows as many as fit)
    KEYS: ClassVar[tuple[Key, ...]] = ()  # the app's keys (tui.apps.keys): its BINDINGS and the help's KEYS
    HELP: ClassVar[str] = ""  # the help screen's text before its KEYS section

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An app's KEYS make its BINDINGS (tui.apps.keys), so that the two cannot disagree."""
        if "KEYS" in cls.__dict__:
            cls.BINDINGS = bindings(cls.KEYS)
        super().__init_subclass__(**kwargs)

    def __init__(
        self, generate_chars: int = GENERATE_CHARS, notes: list[str] | None = None, sampling: Sampling | None = None
    ) -> None:
        super().__init__()
        self.notes = list(notes or [])  # what the command line chose, shown under the seed until a generation
        # How characters are drawn: the generate panel's settings, read by the generation threads
        # before every character (a frozen value, replaced whole, so a thread never sees half a change).
        self.sampling = sampling or Sampling()
        self.generate_chars = generate_chars  # length of a generation run, per model
        self.generation_rng: np.random.Generator | None = None  # None: a fresh unseeded one per run
        self.generated: str | dict[str, str] = ""  # what the latest run wrote (the race: a text per model)
        self.generation_settings: list[Sampling] = []  # the settings the sampler used, latest run
        self._run_id = 0  # the latest generation run (one per model)
        self._gen_runs: dict[int, str] = {}  # the latest runs: run id -> model name
        self._steppers: dict[str, workers.StepperCache] = {}  # per model name
        self._next_key: tuple[object, str, Sampling] | None = None  # what the shown table came from
        self._next_chars: NextChars | None = None  # a table from newer weights, not on screen yet
        self._thread_limit: Limit | None = None
        self._levels_of: Corpus | None = None  # the text whose levels the loss graph shows or awaits

    # -------------------------------------------------------------- lifecycle
    def on_mount(self) -> None:
        """The screen is up: the seed box takes the keys, the arithmetic gets its threads, then the
        app starts (`start`)."""
        self.query_one("#seed", Input).focus()
        self.sampling = self.query_one(GeneratePanel).sampling  # as the panel can show it (k below V, ...)
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

    def recent_text(self) -> str:
        """The generation panel's text: the latest run's seed and what it wrote ("" before the
        first run). A GPT's inside view reads it."""
        panel = self.screen_stack[0].query_one(GeneratePanel)  # (asked from the inside view's screen)
        return panel.run_seed + panel.output_text

    def _generation_started(self) -> None:
        """A run is starting: forget what the last one wrote."""
        self.generated = ""
        self.generation_settings = []

    def _keep_generated(self, name: str, message: Generated) -> None:
        """Keep what model `name` wrote."""
        self.generated += message.text
        self.generation_settings.append(message.sampling)

    @property
    def sampling_temperature(self) -> float:
        """The temperature the samplers use now."""
        return self.sampling.temperature

    @property
    def generation_temperatures(self) -> list[float]:
        """The temperatures the latest run's characters were drawn at."""
        return [s.temperature for s in self.generation_settings]

    def _newer_next_chars(self, message: NextChars) -> None:
        """A table for the seed and temperature on screen, from newer weights: shown at once here;
        the training app paints it at its next tick, together with the other panels."""
        self._show_next_chars(message)

    # ------------------------------------------------------- the graph's levels
    def show_baselines(self, text: Corpus | None) -> None:
        """Draw the unigram and bigram levels of `text` on the loss graph, computed in a thread
        (they count every character of the training part); None: take them off (no text)."""
        self._levels_of = text
        if text is None:
            self.query_one(LossChart).set_baselines(None)
            return
        self.run_worker(
            functools.partial(self._compute_baselines, text),
            thread=True,
            exclusive=True,
            group="baselines",
            name="unigram and bigram levels",
            exit_on_error=False,
        )

    def _compute_baselines(self, text: Corpus) -> None:
        """The levels' thread: count on the training part, score on the validation part."""
        try:
            levels = baselines(text)
        except ValueError:  # too little text to score: the graph keeps only ln V
            return
        if not get_current_worker().is_cancelled:
            self.post_message(BaselinesReady(text, levels))

    @on(BaselinesReady)
    @until_exit
    def _on_baselines_ready(self, message: BaselinesReady) -> None:
        """The levels are ready: drawn, if the graph still shows that text."""
        if message.text is self._levels_of:
            self.query_one(LossChart).set_baselines(message.levels)

    # -------------------------------------------------------------- seed keys
    def action_focus_seed(self) -> None:
        """Put the cursor in the seed box with its text selected, so that typing replaces it."""
        seed = self.query_one("#seed", Input)
        seed.focus()
        seed.select_all()

    def action_temperature(self, direction: int) -> None:
        """Temperature one 0.05 step down or up."""
        self.query_one(GeneratePanel).nudge(direction)

    def action_top_k(self) -> None:
        """Top-k keeps fewer characters (20, 10, 5, 3, 2, 1), then all of them again."""
        self.query_one(GeneratePanel).tighten_top_k()

    def action_top_p(self) -> None:
        """Top-p keeps less of the probability (0.95, 0.9, 0.8, 0.5), then all of it again."""
        self.query_one(GeneratePanel).tighten_top_p()

    def sampling_commands(self) -> list[PaletteCommand]:
        """The palette's entries for how characters are drawn (every app that generates lists them)."""
        return [
            ("Set temperature…", self._ask_temperature, "f7 / f8: 0 greedy, 1 the model as it is, 2 wild"),
            ("Set top-k…", self._ask_top_k, "f5: draw only among the k likeliest characters"),
            ("Set top-p…", self._ask_top_p, "f9: only the likeliest characters holding p of the probability"),
            ("Draw from every character", self._no_cuts, "top-k and top-p off; the temperature stays"),
        ]

    def _ask(self, question: str, value: str, placeholder: str, apply: Callable[[str], Sampling]) -> None:
        """Ask for one sampling setting; a value that is not one gets a notice and changes nothing."""

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                sampling = apply(text)
                check_settings(sampling.temperature, sampling.top_k, sampling.top_p)
            except (ValueError, ConfigError) as e:
                self.notify(f"{text!r}: {e}", title=f"not a {question.lower()}", severity="error", markup=False)
                return
            self.query_one(GeneratePanel).set_sampling(sampling)

        self.push_screen(PromptScreen(question, value, placeholder), answered)

    def _ask_temperature(self) -> None:
        s = self.sampling

        def apply(text: str) -> Sampling:
            if not 0 <= float(text) <= T_MAX:
                raise ConfigError(f"the temperature goes from 0 to {T_MAX:g} here")
            return replace(s, temperature=float(text))

        self._ask("Temperature", f"{s.temperature:.2f}", f"0 to {T_MAX:g}", apply)

    def _ask_top_k(self) -> None:
        s = self.sampling
        value = "" if s.top_k is None else str(s.top_k)
        self._ask("Top-k", value, "empty: every character", lambda k: replace(s, top_k=int(k) if k else None))

    def _ask_top_p(self) -> None:
        s = self.sampling
        value = "" if s.top_p is None else f"{s.top_p:.2f}"
        self._ask("Top-p", value, "empty: no cut", lambda p: replace(s, top_p=float(p) if p else None))

    def _no_cuts(self) -> None:
        self.query_one(GeneratePanel).set_sampling(replace(self.sampling, top_k=None, top_p=None))

    @on(GeneratePanel.GenerateRequested)
    def _on_generate_requested(self) -> None:
        """Enter in the seed or temperature box."""
        self.action_generate()

    @on(GeneratePanel.Changed)
    def _on_generate_changed(self) -> None:
        """Seed or sampling changed: the samplers (which read it before every character) and the
        next-character view follow."""
        self.sampling = self.query_one(GeneratePanel).sampling
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
            lambda: self.sampling,
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
        """Recompute the next-character table if the weights, seed or sampling changed."""
        panel = self.query_one(GeneratePanel)
        model = self.play_model()
        key = (model, panel.seed, panel.sampling)
        if not force and key == self._next_key:
            return
        self._next_key = key
        self.run_worker(
            functools.partial(self._compute_next_chars, model, self.play_vocab(), panel.seed, panel.sampling),
            thread=True,
            exclusive=True,
            group="next-chars",
            name="next characters",
            exit_on_error=False,
        )

    def _compute_next_chars(self, model: CharModel, vocab: Vocab, seed: str, sampling: Sampling) -> None:
        """The next-character thread: prime on the seed, post the top candidates."""
        if get_current_worker().is_cancelled:
            return
        stepper = self._stepper_cache(ONE).get(model)
        candidates, skipped = workers.next_chars(stepper, vocab, seed, sampling, self.NEXT_CHARS)
        self.post_message(NextChars(model, seed, sampling, candidates, skipped))

    @on(NextChars)
    @until_exit
    def _on_next_chars(self, message: NextChars) -> None:
        """A fresh table of next characters: at once for a new seed or sampling (the user is
        typing); for newer weights, when `_newer_next_chars` says."""
        view = self.query_one(NextCharView)
        if message.seed != view.seed or message.sampling != view.sampling:
            self._next_chars = None  # older than this one
            self._show_next_chars(message)
        else:
            self._newer_next_chars(message)

    def _show_next_chars(self, message: NextChars) -> None:
        view = self.query_one(NextCharView)
        view.source = message.source
        view.show(message.seed, message.sampling, message.candidates, message.skipped)
