"""The header line: what is being learned, by what, and whether training is running.

The line is made of parts, each with a rank: when the line is wider than the screen, parts are
dropped, the least useful first (the highest rank), until it fits; parts of rank 0 always stay
(the state, the text's name, the model's kind and shape, the step a watcher shows). Only if those
alone are too wide does the line end in '…'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.models import ModelConfig, model_class

from ..plain.format import si


@dataclass(frozen=True)
class Part:
    """A piece of the header, and when it goes: 0 never; otherwise the highest rank goes first."""

    text: str
    drop: int = 0


# The ranks, least useful first.
SEED, SIZE, VOCAB, STATE_NOTE, PARAMS, BRAND, AGE = 9, 8, 7, 6, 5, 4, 3

# Training states: how the header shows them (a label, what it adds while there is room, a style).
STATES = {
    "starting": ("○ starting", "", "bold"),
    "running": ("● running", "", "bold green"),
    "paused": ("‖ paused", "", "bold yellow"),
    "diverged": ("✖ diverged", " (paused)", "bold red"),
    "stopping": ("◌ saving…", "", "bold yellow"),
    "stopped": ("■ stopped", "", "bold"),
    "done": ("✔ done", "", "bold green"),
    "error": ("✖ error", "", "bold red"),
    # lstm-tui watch: another process trains; this screen only reads its checkpoint
    "watching": ("◉ WATCHING", ", not training", "bold reverse cyan"),
    "watch-failed": ("◉ WATCHING", ", not training", "bold reverse red"),
    # lstm-tui play: a saved model, read once; nothing trains
    "saved": ("◇ SAVED MODEL", ", not training", "bold reverse blue"),
}
BRAND_TEXT = " lstm-tui "
SEPARATOR = " │ "


class StatusLine(Widget):
    """One line: training state (and a detail such as which save a watcher shows), the text, the
    model; what does not fit the width is left out, least useful first."""

    DEFAULT_CSS = """
    StatusLine { height: 1; }
    """

    state: reactive[str] = reactive("starting")

    def __init__(self, corpus: Sequence[Part], model: Sequence[Part], **kwargs) -> None:
        super().__init__(**kwargs)
        self.corpus = list(corpus)
        self.model = list(model)
        self.detail: list[Part] = []

    def set_model(self, model: Sequence[Part]) -> None:
        """Show another model description (a watched file now holds another model)."""
        self.model = list(model)
        self.refresh()

    def set_detail(self, detail: Sequence[Part]) -> None:
        """What follows the state (a watcher: the step on screen and when it was saved)."""
        if list(detail) != self.detail:
            self.detail = list(detail)
            self.refresh()

    def watch_state(self) -> None:
        """Redraw when the training state changes."""
        self.refresh()

    def fitted(self, width: int) -> list[tuple[str, Part]]:
        """The parts shown in `width` cells, each with its group (all of them when the width is 0:
        not laid out yet)."""
        label, note, _ = STATES.get(self.state, (self.state, "", "bold"))
        parts = [("brand", Part(BRAND_TEXT, BRAND)), ("state", Part(label)), ("state", Part(note, STATE_NOTE))]
        parts += [("detail", p) for p in self.detail]
        parts += [("corpus", p) for p in self.corpus] + [("model", p) for p in self.model]
        parts = [(g, p) for g, p in parts if p.text]
        while width and self._text(parts).cell_len > width:
            droppable = [i for i, (_, p) in enumerate(parts) if p.drop]
            if not droppable:
                break
            del parts[max(droppable, key=lambda i: parts[i][1].drop)]
        return parts

    def render(self) -> Text:
        return self._text(self.fitted(self.size.width))

    def _text(self, parts: list[tuple[str, Part]]) -> Text:
        _, _, state_style = STATES.get(self.state, (self.state, "", "bold"))
        styles = {
            "brand": "reverse bold",
            "state": state_style,
            "detail": "bold red" if self.state == "watch-failed" else "bold",
            "corpus": "",
            "model": "",
        }
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        previous = None
        for group, part in parts:
            if previous is not None:
                if group == previous:
                    text.append("" if group == "state" else " · ", styles[group])
                else:
                    text.append(SEPARATOR if group in ("corpus", "model") else " ", "dim")
            text.append(part.text, styles[group])
            previous = group
        return text


def describe_model(config: ModelConfig) -> list[Part]:
    """'LSTM 1×128 · 58.6k params' (the model's title, its shape, its size)."""
    cls = model_class(config.cell)
    return [Part(f"{cls.title} {config.layers}×{config.hidden}"), Part(f"{si(cls.num_params(config))} params", PARAMS)]


def describe_corpus(name: str, size: int, vocab_size: int) -> list[Part]:
    """'hamlet.txt · 866 chars · V=32' (the text's name, its length, its characters)."""
    return [Part(name), Part(f"{size:,} chars", SIZE), Part(f"V={vocab_size}", VOCAB)]
