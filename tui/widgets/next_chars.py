"""The model's top candidates for the next character after the seed, at the current temperature."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from ..format import bar, char_label
from ..messages import Candidate


class NextCharView(Static):
    """A table of the most likely next characters with their probabilities."""

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
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, width=7)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, justify="right")
        width = max(3, self.content_size.width - 7 - 6 - 2)
        rows = max(1, self.content_size.height - (1 if self.skipped else 0))
        for c in self.candidates[:rows]:
            table.add_row(Text(char_label(c.char)), Text(bar(c.p, width), style="rgb(120,190,255)"), f"{c.p:6.1%}")
        if self.skipped:
            table.add_row(Text("ignored " + "".join(self.skipped), style="dim italic"), "", "")
        self.update(table, layout=False)  # fixed size: repaint only, no screen layout
