"""The model's top candidates for the next character after the seed, at the current temperature."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from ..apps.messages import Candidate
from ..plain.format import bar, char_label

LABEL = 7  # cells for the character's name ('a', space, newline)
PERCENT = 6  # " 99.8%"


class NextCharView(Static):
    """A table of the most likely next characters with their probabilities.

    Drawn as plain lines of text (a rich Table measures every cell on every repaint, several times
    the cost, and this view repaints every second while training).
    """

    DEFAULT_CSS = """
    NextCharView { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.candidates: list[Candidate] = []
        self.seed = ""
        self.temperature = 1.0
        self.skipped: list[str] = []
        self.source: object = None  # the weights the table came from

    def on_mount(self) -> None:
        """Title the panel."""
        self.border_title = " next character "
        self.update(Text("type a seed…", style="dim"))

    def on_resize(self) -> None:
        """Bars follow the width."""
        self._redraw()

    def show(self, seed: str, temperature: float, candidates: list[Candidate], skipped: list[str]) -> None:
        """Show a new table."""
        self.seed, self.temperature, self.candidates, self.skipped = seed, temperature, candidates, skipped
        self._redraw()

    def _redraw(self) -> None:
        if not self.candidates:
            return
        self.border_title = f" next char · T {self.temperature:.2f} "
        width = max(3, self.content_size.width - LABEL - PERCENT - 2)
        rows = max(1, self.content_size.height - (1 if self.skipped else 0))
        text = Text()
        for i, c in enumerate(self.candidates[:rows]):
            label = char_label(c.char)
            if i:
                text.append("\n")
            text.append(label + " " * max(1, LABEL + 1 - cell_len(label)))
            text.append(bar(c.p, width), "rgb(120,190,255)")
            text.append(f" {c.p:{PERCENT}.1%}")
        if self.skipped:
            text.append("\nignored " + "".join(self.skipped), "dim italic")
        self.update(text, layout=False)  # fixed size: repaint only, no screen layout
