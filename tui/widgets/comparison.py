"""Ground truth against the model's teacher-forced prediction, character under character."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from core import Evaluation

from ..plain.format import visible

LABEL = 7  # "truth  " / "model  "
# Prediction colours from "the true character got little probability" to "got most of it".
RIGHT = ("rgb(40,90,50)", "rgb(50,140,70)", "rgb(70,200,100)", "bold rgb(110,255,140)")
WRONG = ("rgb(110,40,40)", "rgb(170,50,50)", "rgb(230,70,70)", "bold rgb(255,120,120)")


def shade(p: float) -> int:
    """Which of four shades shows a probability of the true character."""
    return 0 if p < 0.1 else 1 if p < 0.35 else 2 if p < 0.7 else 3


class ComparisonView(Widget):
    """Pairs of lines, 'truth' over 'model', filling the panel; wrong predictions are underlined too
    (so the view reads without colour)."""

    DEFAULT_CSS = """
    ComparisonView { height: 1fr; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.evaluation: Evaluation | None = None
        self.step = 0
        self.on_validation = True
        self.part = ""  # what part of the text the accuracy is of ("": the whole evaluation text)
        self.waiting = "waiting for the first evaluation…"

    def on_mount(self) -> None:
        """Title the panel."""
        self._title()

    def show(self, evaluation: Evaluation, step: int, on_validation: bool, part: str = "") -> None:
        """Show a new comparison, of the weights at `step` (`part`: what the accuracy is of, when
        not the whole evaluation text)."""
        self.evaluation, self.step, self.on_validation, self.part = evaluation, step, on_validation, part
        self._title()
        self.refresh()

    def on_resize(self) -> None:
        """The title follows the width."""
        self._title()

    def _title(self) -> None:
        """'truth vs prediction · validation text · step 1,200 · accuracy 31.2%', shortened to fit."""
        parent = self.parent if self.parent is not None else self
        ev = self.evaluation
        where = "validation" if self.on_validation else "training"
        if ev is None:
            titles = [f"truth vs prediction · {where} text"]
        else:
            scored = f"step {self.step:,} · accuracy {ev.accuracy:.1%}"
            part = f" of the {self.part}" if self.part else ""
            titles = [
                f"truth vs prediction · {where} text · {scored}{part}",
                f"truth vs prediction · {where} · {scored}{part}",
                f"{where} · {scored}{part}",
                f"{where} · step {self.step:,} · {ev.accuracy:.1%}{part}",
            ]
        room = parent.size.width - 4  # the border's corners and the title's padding
        fits = [t for t in titles if room <= 0 or len(t) + 2 <= room]
        parent.border_title = f" {(fits or titles)[0 if fits else -1]} "

    def render(self) -> Text:
        """As many truth/model line pairs as fit the panel, each character over its prediction."""
        ev = self.evaluation
        if ev is None:
            return Text(self.waiting, style="dim")
        width = max(2, self.size.width - LABEL)
        pairs = max(1, self.size.height // 2)
        out = Text(no_wrap=True, overflow="crop")
        i, n = 0, len(ev.truth)
        for row in range(pairs):
            if i >= n:
                break
            # Runs of characters sharing a style become one span each: a span per character
            # costs several times more to build and to paint, and this repaints during training.
            truth: list[str] = []
            model = Text()
            run: list[str] = []
            run_style = ""
            used = 0
            while i < n:
                t, p = visible(ev.truth[i]), visible(ev.predicted[i])
                wt, wp = cell_len(t), cell_len(p)
                w = max(wt, wp)  # wide characters: keep the columns aligned
                if used + w > width:
                    break
                right = ev.predicted[i] == ev.truth[i]
                style = (RIGHT if right else WRONG)[shade(float(ev.p_true[i]))]
                if not right:
                    style += " underline"
                if style != run_style and run:
                    model.append("".join(run), run_style)
                    run = []
                run_style = style
                truth.append(t + " " * (w - wt))
                run.append(p + " " * (w - wp))
                used += w
                i += 1
            if run:
                model.append("".join(run), run_style)
            if row:
                out.append("\n")
            out.append("truth  ", "dim")
            out.append("".join(truth))
            out.append("\nmodel  ", "dim")
            out.append_text(model)
        return out
