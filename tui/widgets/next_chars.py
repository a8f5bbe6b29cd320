"""The model's top candidates for the next character after the seed, drawn as the generate panel
says: at its temperature, with the characters its top-k and top-p cut marked `cut`."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from ..apps.messages import Candidate, Sampling
from ..plain.format import bar, char_label

LABEL = 7  # cells for the character's name ('a', space, newline)
PERCENT = 6  # " 99.8%"
CUT = "cut"  # instead of a percentage: top-k or top-p removed this character


class NextCharView(Static):
    """A table of the most likely next characters with the probabilities they are drawn with; the
    ones top-k or top-p cut come last, marked `cut`.

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
        self.sampling = Sampling()
        self.skipped: list[str] = []
        self.source: object = None  # the weights the table came from

    def on_mount(self) -> None:
        """Title the panel."""
        self.border_title = " next character "
        self.update(Text("type a seed…", style="dim"))

    def on_resize(self) -> None:
        """Bars follow the width."""
        self._redraw()

    @property
    def temperature(self) -> float:
        return self.sampling.temperature

    def show(self, seed: str, sampling: Sampling, candidates: list[Candidate], skipped: list[str]) -> None:
        """Show a new table."""
        self.seed, self.sampling, self.candidates, self.skipped = seed, sampling, candidates, skipped
        self._redraw()

    def title(self) -> str:
        """'next char · T 0.80', and the cuts when there are some ('next · T 0.80 k 5 p 0.90')."""
        cuts = self.sampling.cuts(" ")
        if not cuts:
            return f" next char · T {self.temperature:.2f} "
        return f" next · T {self.temperature:.2f} {cuts} "

    def _redraw(self) -> None:
        if not self.candidates:
            return
        self.border_title = self.title()
        width = max(3, self.content_size.width - LABEL - PERCENT - 2)
        rows = max(1, self.content_size.height - (1 if self.skipped else 0))
        text = Text()
        for i, c in enumerate(self.candidates[:rows]):
            label = char_label(c.char)
            if i:
                text.append("\n")
            pad = " " * max(1, LABEL + 1 - cell_len(label))
            if c.cut:
                text.append(label + pad + bar(0.0, width) + f" {CUT:>{PERCENT}}", "dim")
                continue
            text.append(label + pad)
            text.append(bar(c.p, width), "rgb(120,190,255)")
            text.append(f" {c.p:{PERCENT}.1%}")
        if self.skipped:
            text.append("\nignored " + "".join(self.skipped), "dim italic")
        self.update(text, layout=False)  # fixed size: repaint only, no screen layout
