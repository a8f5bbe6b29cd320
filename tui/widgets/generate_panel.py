"""Talk to the model: a seed, a temperature, and the text it writes streaming in."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, Static

from ..plain.format import bar

T_MIN, T_MAX, T_STEP = 0.0, 2.0, 0.05
SHOWN_CHARS = 4000  # generated characters kept on screen
HINT = "ctrl+g or enter generates from the seed; esc stops."


def snap_temperature(t: float) -> float:
    """Clamp to [0, 2] and round to the 0.05 grid."""
    t = min(T_MAX, max(T_MIN, t))
    return round(round(t / T_STEP) * T_STEP, 2)


class TemperatureInput(Input):
    """The temperature as a typed number; up/down nudge it by 0.05."""

    BINDINGS = [
        Binding("up", "nudge(1)", "T +0.05", show=False),
        Binding("down", "nudge(-1)", "T −0.05", show=False),
    ]

    class Nudged(Message):
        """Up or down was pressed in the temperature box."""

        def __init__(self, direction: int) -> None:
            super().__init__()
            self.direction = direction

    def action_nudge(self, direction: int) -> None:
        """Ask the panel to move the temperature one step."""
        self.post_message(self.Nudged(direction))


class GeneratePanel(Vertical):
    """Seed input, temperature control, and the streamed output."""

    temperature: reactive[float] = reactive(0.8)

    class Changed(Message):
        """The seed or the temperature changed (the next-character view follows)."""

    class GenerateRequested(Message):
        """Enter was pressed in the seed box."""

    def __init__(self, seed: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial_seed = seed
        self.output_text = ""  # what was generated in the current run
        self.run_seed = ""  # the seed of the current run
        self.running = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="gen-controls"):
            yield Label("seed", classes="gen-label")
            yield Input(self.initial_seed, placeholder="text to continue", id="seed", select_on_focus=False)
            yield Label("T", classes="gen-label")
            yield TemperatureInput(
                f"{self.temperature:.2f}", id="temperature", restrict=r"[0-9.]*", max_length=5, select_on_focus=True
            )
            yield Static("", id="temperature-bar", markup=False)
        with VerticalScroll(id="gen-scroll"):
            yield Static(Text(HINT, style="dim"), id="gen-output")

    def on_mount(self) -> None:
        """Title the panel and draw the temperature bar."""
        self.border_title = " generate "
        self.query_one("#gen-scroll").can_focus = True
        self._show_temperature()

    @property
    def seed(self) -> str:
        return self.query_one("#seed", Input).value

    def watch_temperature(self) -> None:
        """Show the new temperature and tell the app."""
        if not self.is_mounted:
            return
        self._show_temperature()
        self.post_message(self.Changed())

    def _show_temperature(self) -> None:
        box = self.query_one("#temperature", TemperatureInput)
        if not box.has_focus:  # never rewrite what is being typed
            self._tidy_box()
        mode = "greedy" if self.temperature == 0 else ""
        self.query_one("#temperature-bar", Static).update(
            Text(bar(self.temperature / T_MAX, 8)) + Text(f" {mode}", style="dim")
        )

    def _tidy_box(self) -> None:
        box = self.query_one("#temperature", TemperatureInput)
        text = f"{self.temperature:.2f}"
        if box.value != text:
            with box.prevent(Input.Changed):
                box.value = text

    def nudge(self, direction: int) -> None:
        """Move the temperature one 0.05 step (and show it, even while the box has focus)."""
        self.temperature = snap_temperature(self.temperature + direction * T_STEP)
        self._tidy_box()

    @on(TemperatureInput.Nudged)
    def _on_nudged(self, event: TemperatureInput.Nudged) -> None:
        """Up/down in the temperature box."""
        event.stop()
        self.nudge(event.direction)

    @on(Input.Changed, "#temperature")
    def _on_temperature_typed(self, event: Input.Changed) -> None:
        """A typed temperature applies as soon as it parses."""
        event.stop()
        t = _parse(event.value)
        if t is not None:
            self.temperature = snap_temperature(t)

    @on(Input.Submitted, "#temperature")
    def _on_temperature_submitted(self, event: Input.Submitted) -> None:
        """Enter in the temperature box: tidy the value and generate."""
        event.stop()
        self._tidy_box()
        self.post_message(self.GenerateRequested())

    @on(Input.Blurred, "#temperature")
    def _on_temperature_blurred(self, event: Input.Blurred) -> None:
        """Leaving the temperature box shows the value in use."""
        event.stop()
        self._tidy_box()

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

    def __init__(self, names: list[str], styles: list[str], seed: str = "", **kwargs) -> None:
        super().__init__(seed=seed, **kwargs)
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
