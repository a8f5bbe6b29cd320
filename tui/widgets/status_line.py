"""The header line: what is being learned, by what, and whether training is running."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from core.models import ModelConfig, model_class

from ..plain.format import si

# Training states and how the header shows them.
STATES = {
    "starting": ("○ starting", "bold"),
    "running": ("● running", "bold green"),
    "paused": ("‖ paused", "bold yellow"),
    "diverged": ("✖ diverged (paused)", "bold red"),
    "stopping": ("◌ saving…", "bold yellow"),
    "stopped": ("■ stopped", "bold"),
    "done": ("✔ done", "bold green"),
    "error": ("✖ error", "bold red"),
    # lstm-tui watch: another process trains; this screen only reads its checkpoint
    "watching": ("◉ WATCHING, not training", "bold reverse cyan"),
    "watch-failed": ("◉ WATCHING, not training", "bold reverse red"),
}


class StatusLine(Static):
    """One line: training state (and a detail such as when the watched run last saved), corpus,
    model shape, parameters."""

    state: reactive[str] = reactive("starting")
    detail: reactive[str] = reactive("")

    def __init__(self, corpus: str, model: str, **kwargs) -> None:
        super().__init__("", markup=False, **kwargs)
        self.corpus = corpus
        self.model = model

    def on_mount(self) -> None:
        """Draw the line once mounted."""
        self._redraw()

    def watch_state(self) -> None:
        """Redraw when the training state changes."""
        self._redraw()

    def watch_detail(self) -> None:
        """Redraw when the detail after the state changes."""
        self._redraw()

    def set_model(self, model: str) -> None:
        """Show another model description (after a reset)."""
        self.model = model
        self._redraw()

    def _redraw(self) -> None:
        label, style = STATES.get(self.state, (self.state, "bold"))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" lstm-tui ", "reverse bold")
        text.append(f" {label} ", style)
        if self.detail:
            text.append(f" {self.detail} ", "bold red" if self.state == "watch-failed" else "bold")
        text.append("│", "dim")
        text.append(f" {self.corpus} ")
        text.append("│", "dim")
        text.append(f" {self.model}")
        self.update(text, layout=False)  # one line, always


def describe_model(config: ModelConfig) -> str:
    """'LSTM 1×128 · 58.6k params' (the model's title, its shape, its size)."""
    cls = model_class(config.cell)
    return f"{cls.title} {config.layers}×{config.hidden} · {si(cls.num_params(config))} params"
