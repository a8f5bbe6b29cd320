"""Talk to the model: a seed, how to draw each character (temperature, top-k, top-p), and the text
it writes streaming in."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from core.sampling import TEMPERATURE

from ..apps.messages import Sampling
from ..plain.format import bar

T_MIN, T_MAX, T_STEP = 0.0, 2.0, 0.05
P_STEP = 0.05  # top-p's step (up / down in its box), from P_STEP up to 1 (no cut)
K_PRESETS = (20, 10, 5, 3, 2, 1)  # top-k's key: each press keeps fewer characters, then all again
P_PRESETS = (0.95, 0.9, 0.8, 0.5)  # top-p's key: each press keeps less probability, then all again
BAR_ROOM = 64  # the temperature bar shows when the panel is at least this wide (the numbers always)
SHOWN_CHARS = 4000  # generated characters kept on screen
HINT = "ctrl+g or enter generates from the seed; esc stops."


def snap_temperature(t: float) -> float:
    """Clamp to [0, 2] and round to the 0.05 grid."""
    t = min(T_MAX, max(T_MIN, t))
    return round(round(t / T_STEP) * T_STEP, 2)


def top_k_setting(k: int | None, vocab_size: int) -> int | None:
    """k as the sampler takes it: None (no cut) for k at or above the vocabulary's size."""
    return None if k is None or k >= vocab_size else max(1, k)


def top_p_setting(p: float | None) -> float | None:
    """p as the sampler takes it: None (no cut) at 1 or above; else at least P_STEP, to 2 decimals."""
    return None if p is None or p >= 1.0 else max(P_STEP, round(p, 2))


def tighter_k(k: int | None, vocab_size: int) -> int | None:
    """The top-k key: the next preset below k (fewer characters); after the last, no cut again."""
    below = [c for c in K_PRESETS if c < (vocab_size if k is None else k)]
    return below[0] if below else None


def tighter_p(p: float | None) -> float | None:
    """The top-p key: the next preset below p (less probability kept); after the last, no cut again."""
    below = [c for c in P_PRESETS if c < (1.0 if p is None else p) - 1e-9]
    return below[0] if below else None


class SteppedInput(Input):
    """A number typed in a box, where up/down step it (the temperature, top-k, top-p)."""

    BINDINGS = [
        Binding("up", "nudge(1)", "up one step", show=False),
        Binding("down", "nudge(-1)", "down one step", show=False),
    ]

    class Nudged(Message):
        """Up or down was pressed in the box."""

        def __init__(self, box: SteppedInput, direction: int) -> None:
            super().__init__()
            self.box = box
            self.direction = direction

    def action_nudge(self, direction: int) -> None:
        """Ask the panel to move the number one step."""
        self.post_message(self.Nudged(self, direction))


class GeneratePanel(Vertical):
    """Seed input, the sampling controls (temperature, top-k, top-p), and the streamed output."""

    DEFAULT_CSS = """
    GeneratePanel #gen-controls { height: 1; }
    GeneratePanel .gen-label { width: auto; padding: 0 0 0 1; color: $text-muted; }
    GeneratePanel #seed-label { padding: 0 1; }
    GeneratePanel #seed, GeneratePanel #temperature, GeneratePanel #top-k, GeneratePanel #top-p {
        height: 1; border: none; padding: 0 1;
    }
    GeneratePanel #seed { width: 1fr; }
    GeneratePanel #temperature { width: 6; }
    GeneratePanel #top-k { width: 5; }
    GeneratePanel #top-p { width: 6; }
    GeneratePanel #temperature-bar { width: 14; height: 1; padding: 0 0 0 1; }
    GeneratePanel #gen-scroll { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    GeneratePanel #gen-scroll:focus { background: $boost; }
    """

    temperature: reactive[float] = reactive(TEMPERATURE)
    top_k: reactive[int | None] = reactive(None)  # None: every character may be drawn
    top_p: reactive[float | None] = reactive(None)  # None: no cut (the same as 1)

    class Changed(Message):
        """The seed or a sampling setting changed (the next-character view follows)."""

    class GenerateRequested(Message):
        """Enter was pressed in the seed box (or a sampling box)."""

    def __init__(self, seed: str = "", vocab_size: int = 0, sampling: Sampling | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial_seed = seed
        self.vocab_size = vocab_size  # top-k at or above it cuts nothing (0: unknown)
        self.output_text = ""  # what was generated in the current run
        self.run_seed = ""  # the seed of the current run
        self.running = False
        if sampling is not None:
            self.set_reactive(GeneratePanel.temperature, snap_temperature(sampling.temperature))
            self.set_reactive(GeneratePanel.top_k, self._k(sampling.top_k))
            self.set_reactive(GeneratePanel.top_p, top_p_setting(sampling.top_p))

    def compose(self) -> ComposeResult:
        with Horizontal(id="gen-controls"):
            yield Label("seed", classes="gen-label", id="seed-label")
            yield Input(self.initial_seed, placeholder="text to continue", id="seed", select_on_focus=False)
            yield Label("T", classes="gen-label")
            yield SteppedInput(
                f"{self.temperature:.2f}", id="temperature", restrict=r"[0-9.]*", max_length=5, select_on_focus=True
            )
            yield Label("k", classes="gen-label")
            yield SteppedInput(self._k_text(), placeholder="all", id="top-k", restrict=r"[0-9]*", max_length=5)
            yield Label("p", classes="gen-label")
            yield SteppedInput(self._p_text(), placeholder="1.00", id="top-p", restrict=r"[0-9.]*", max_length=4)
            yield Static("", id="temperature-bar", markup=False)
        with VerticalScroll(id="gen-scroll"):
            yield Static(Text(HINT, style="dim"), id="gen-output")

    def on_mount(self) -> None:
        """Title the panel and draw the temperature bar."""
        self.border_title = " generate "
        self.query_one("#gen-scroll").can_focus = True
        self._show_temperature()

    def on_resize(self) -> None:
        """The temperature bar shows only where it leaves the seed box room."""
        self.query_one("#temperature-bar").display = self.size.width >= BAR_ROOM

    @property
    def seed(self) -> str:
        return self.query_one("#seed", Input).value

    @property
    def sampling(self) -> Sampling:
        """The settings the next character is drawn with."""
        return Sampling(self.temperature, self.top_k, self.top_p)

    def set_sampling(self, sampling: Sampling) -> None:
        """Take these settings (the palette's prompts), each snapped to what its box can show."""
        self.temperature = snap_temperature(sampling.temperature)
        self.top_k = self._k(sampling.top_k)
        self.top_p = top_p_setting(sampling.top_p)
        self._tidy_boxes(force=True)

    def _k(self, k: int | None) -> int | None:
        return top_k_setting(k, self.vocab_size) if self.vocab_size else k

    def watch_temperature(self) -> None:
        """Show the new temperature and tell the app."""
        if not self.is_mounted:
            return
        self._show_temperature()
        self.post_message(self.Changed())

    def watch_top_k(self) -> None:
        """Show the new top-k and tell the app."""
        if self.is_mounted:
            self._tidy_boxes()
            self.post_message(self.Changed())

    def watch_top_p(self) -> None:
        """Show the new top-p and tell the app."""
        if self.is_mounted:
            self._tidy_boxes()
            self.post_message(self.Changed())

    def _show_temperature(self) -> None:
        self._tidy_boxes()
        mode = "greedy" if self.temperature == 0 else ""
        self.query_one("#temperature-bar", Static).update(
            Text(bar(self.temperature / T_MAX, 8)) + Text(f" {mode}", style="dim")
        )

    def _k_text(self) -> str:
        return "" if self.top_k is None else str(self.top_k)

    def _p_text(self) -> str:
        return "" if self.top_p is None else f"{self.top_p:.2f}"

    def _tidy_boxes(self, force: bool = False) -> None:
        """Each box shows the value in use, unless it is being typed in (`force`: even then)."""
        shown = {"#temperature": f"{self.temperature:.2f}", "#top-k": self._k_text(), "#top-p": self._p_text()}
        for selector, text in shown.items():
            box = self.query_one(selector, SteppedInput)
            if box.value != text and (force or not box.has_focus):  # never rewrite what is being typed
                with box.prevent(Input.Changed):
                    box.value = text

    def nudge(self, direction: int) -> None:
        """Move the temperature one 0.05 step (and show it, even while the box has focus)."""
        self.temperature = snap_temperature(self.temperature + direction * T_STEP)
        self._tidy_boxes(force=True)

    def nudge_top_k(self, direction: int) -> None:
        """One character more (up) or fewer (down) for top-k; up to the vocabulary is no cut."""
        V = self.vocab_size or 1_000_000
        k = self.top_k
        if k is None:
            k = None if direction > 0 else V - 1
        else:
            k = k + direction
        self.top_k = top_k_setting(k, V) if k is None or k >= 1 else 1
        self._tidy_boxes(force=True)

    def nudge_top_p(self, direction: int) -> None:
        """top-p one 0.05 step up or down; up to 1 is no cut."""
        p = self.top_p
        if p is None:
            p = None if direction > 0 else 1.0 - P_STEP
        else:
            p = round(p + direction * P_STEP, 2)
        self.top_p = top_p_setting(p)
        self._tidy_boxes(force=True)

    def tighten_top_k(self) -> None:
        """The top-k key: keep fewer characters (K_PRESETS), then all of them again."""
        self.top_k = tighter_k(self.top_k, self.vocab_size or 1_000_000)
        self._tidy_boxes(force=True)

    def tighten_top_p(self) -> None:
        """The top-p key: keep less probability (P_PRESETS), then all of it again."""
        self.top_p = tighter_p(self.top_p)
        self._tidy_boxes(force=True)

    @on(SteppedInput.Nudged)
    def _on_nudged(self, event: SteppedInput.Nudged) -> None:
        """Up/down in a sampling box."""
        event.stop()
        step = {"temperature": self.nudge, "top-k": self.nudge_top_k, "top-p": self.nudge_top_p}
        step[event.box.id or "temperature"](event.direction)

    @on(Input.Changed, "#temperature")
    def _on_temperature_typed(self, event: Input.Changed) -> None:
        """A typed temperature applies as soon as it parses."""
        event.stop()
        t = _parse(event.value)
        if t is not None:
            self.temperature = snap_temperature(t)

    @on(Input.Changed, "#top-k")
    def _on_top_k_typed(self, event: Input.Changed) -> None:
        """A typed top-k applies as soon as it is a whole number of at least 1 (empty: no cut)."""
        event.stop()
        if not event.value:
            self.top_k = None
        elif event.value.isdigit() and int(event.value) >= 1:
            self.top_k = self._k(int(event.value))

    @on(Input.Changed, "#top-p")
    def _on_top_p_typed(self, event: Input.Changed) -> None:
        """A typed top-p applies as soon as it is a number above 0 (empty, or 1 and above: no cut)."""
        event.stop()
        p = _parse(event.value) if event.value else 1.0
        if p is not None and p > 0:
            self.top_p = top_p_setting(p)

    @on(Input.Submitted, "#temperature, #top-k, #top-p")
    def _on_setting_submitted(self, event: Input.Submitted) -> None:
        """Enter in a sampling box: tidy the value and generate."""
        event.stop()
        self._tidy_boxes(force=True)
        self.post_message(self.GenerateRequested())

    @on(Input.Blurred, "#temperature, #top-k, #top-p")
    def _on_setting_blurred(self, event: Input.Blurred) -> None:
        """Leaving a sampling box shows the value in use."""
        event.stop()
        self._tidy_boxes(force=True)

    @on(Input.Changed, "#seed")
    def _on_seed_changed(self, event: Input.Changed) -> None:
        """The seed changed: the next-character view follows."""
        event.stop()
        self.post_message(self.Changed())

    @on(Input.Submitted, "#seed")
    def _on_seed_submitted(self, event: Input.Submitted) -> None:
        """Enter in the seed box generates."""
        event.stop()
        self.post_message(self.GenerateRequested())

    # ------------------------------------------------------------------ output
    def show_notes(self, notes: list[str]) -> None:
        """Notes on the run's settings (what the command line chose, and why), under the hint until
        the first generation: the panel is idle then, so they cover nothing and need no timer."""
        out = Text(HINT, style="dim")
        for note in notes:
            out.append("\n")
            out.append(note, "italic")
        self.query_one("#gen-output", Static).update(out)

    def start(self, seed: str) -> None:
        """A new run: clear the output and show the seed."""
        self.run_seed, self.output_text, self.running = seed, "", True
        self._render_output()

    def append(self, text: str) -> None:
        """More characters of the current run."""
        self.output_text += text
        self._render_output()

    def finish(self, stopped: bool) -> None:
        """The run ended."""
        self.running = False
        self._render_output(note=" [stopped]" if stopped else "")

    def append_for(self, name: str, text: str) -> None:
        """More characters from model `name`: this panel shows one model, so they are the run's.
        (The app hands every panel its models' text this way; RaceGeneratePanel keeps a block each.)"""
        self.append(text)

    def finish_for(self, name: str, stopped: bool) -> None:
        """Model `name`'s run ended: with one model, the run ended."""
        self.finish(stopped)

    def _render_output(self, note: str = "") -> None:
        out = Text()
        shown = self.output_text[-SHOWN_CHARS:]  # a long run shows its end: redrawing stays cheap
        if len(shown) == len(self.output_text):
            out.append(self.run_seed, "dim")
        out.append(shown, "bold")
        if self.running:
            out.append("▌", "blink")
        if note:
            out.append(note, "dim italic")
        self.query_one("#gen-output", Static).update(out)
        self.query_one("#gen-scroll", VerticalScroll).scroll_end(animate=False)


def _parse(value: str) -> float | None:
    try:
        t = float(value)
    except ValueError:
        return None
    return t if t == t else None


class RaceGeneratePanel(GeneratePanel):
    """The same seed and temperature, and a block of generated text per model (a race)."""

    def __init__(
        self,
        names: list[str],
        styles: list[str],
        seed: str = "",
        vocab_size: int = 0,
        sampling: Sampling | None = None,
        **kwargs,
    ) -> None:
        super().__init__(seed, vocab_size, sampling, **kwargs)
        self.names = names
        self.series_styles = dict(zip(names, styles, strict=False))
        self.outputs: dict[str, str] = dict.fromkeys(names, "")
        self.runs: set[str] = set()  # the models still writing
        self.notes: dict[str, str] = {}

    def start(self, seed: str) -> None:
        """A new run for every model: clear the blocks and show the seed."""
        self.run_seed, self.outputs, self.notes = seed, dict.fromkeys(self.names, ""), {}
        self.runs = set(self.names)
        self.running = True
        self._render_output()

    def append_for(self, name: str, text: str) -> None:
        """More characters from one model."""
        self.outputs[name] += text
        self._render_output()

    def finish_for(self, name: str, stopped: bool) -> None:
        """One model's run ended."""
        self.runs.discard(name)
        self.running = bool(self.runs)
        if stopped:
            self.notes[name] = " [stopped]"
        self._render_output()

    def _render_output(self, note: str = "") -> None:
        """A block per model, the same number of lines each, filling the panel: the end of what
        each wrote (newlines shown as ↵), so every model stays in view however small the screen."""
        if not self.run_seed and not any(self.outputs.values()) and not self.runs:
            return  # nothing generated yet: keep the hint
        scroll = self.query_one("#gen-scroll", VerticalScroll)
        width = max(8, scroll.size.width - 2)
        lines = max(1, scroll.size.height // max(1, len(self.names)))
        label = 6  # "lstm  "
        out = Text(no_wrap=True, overflow="crop")
        for i, name in enumerate(self.names):
            written = (self.run_seed + self.outputs[name]).replace("\n", "↵")
            cursor = "▌" if name in self.runs else self.notes.get(name, "")
            room = lines * (width - label) - len(cursor)
            shown = written[-room:] if room > 0 else ""
            seed_part = max(0, len(self.run_seed) - (len(written) - len(shown)))  # the seed still shown
            body = Text()
            body.append(shown[:seed_part], "dim")
            body.append(shown[seed_part:], "bold")
            body.append(cursor, "dim italic" if cursor != "▌" else "")
            for row in range(lines):
                chunk = body[row * (width - label) : (row + 1) * (width - label)]
                if i or row:
                    out.append("\n")
                if row == 0:
                    out.append(f"{name:<5}", f"reverse {self.series_styles.get(name, '')}".strip())
                    out.append(" ")
                else:
                    out.append(" " * label)
                out.append_text(chunk)
        self.query_one("#gen-output", Static).update(out)
