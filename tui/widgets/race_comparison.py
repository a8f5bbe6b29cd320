"""A race's predictions: one line of ground truth, and under it each model's prediction."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

from core import Evaluation

from ..plain.format import visible
from .comparison import RIGHT, WRONG, shade

LABEL = 7  # "truth  " / "lstm   "
MARGIN = 1  # a blank cell after the scores, so that no renderer's last column clips them


def score(evaluation: Evaluation, step: int) -> str:
    """' 31% @1,200': a model's accuracy on the whole evaluation text, and the step it was scored at."""
    return f" {evaluation.accuracy:4.0%} @{step:,}"


class RaceComparison(Widget):
    """The start of the evaluation text over each model's teacher-forced prediction of it, from
    that model's latest evaluation. A wrong prediction is red and underlined (it reads without
    colour); each model's line ends in its accuracy on the whole evaluation text and the step of
    the evaluation. The truth line heads the panel, on a band, and says which text it is."""

    COMPONENT_CLASSES = {"race-compare--truth"}
    DEFAULT_CSS = """
    RaceComparison { height: auto; }
    RaceComparison > .race-compare--truth { background: $panel; }
    """

    def __init__(self, names: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.names = list(names)
        self.evaluations: dict[str, Evaluation] = {}
        self.steps: dict[str, int] = {}  # the step of each model's evaluation
        self.on_validation = True

    def show(self, name: str, evaluation: Evaluation, on_validation: bool, step: int) -> None:
        """A model's newer evaluation, made at `step`."""
        self.evaluations[name] = evaluation
        self.steps[name] = step
        self.on_validation = on_validation
        self.refresh()

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.names) + 1

    def render(self) -> Text:
        """The truth line, then a prediction line per model, column under column, each ending in
        the model's score and its step."""
        scores = {n: score(self.evaluations[n], self.steps[n]) for n in self.evaluations}
        which = " val text" if self.on_validation else " train text"  # over the scores: the text scored
        room = max((len(s) for s in (which, *scores.values())), default=0)
        width = max(2, self.size.width - LABEL - room - MARGIN)
        truth = next(iter(self.evaluations.values()), None)
        band = self.get_component_rich_style("race-compare--truth")
        out = Text(no_wrap=True, overflow="crop")
        head = Text("truth  ", style="dim")
        if truth is None:
            head.append("waiting for the first evaluation…", "dim")
        else:
            head.append("".join(visible(c) for c in _fit(truth.truth, width)))
            head.append(" " * max(0, LABEL + width - head.cell_len) + which.rjust(room), "dim")
        head.append(" " * max(0, self.size.width - head.cell_len))
        head.stylize_before(band)
        out.append_text(head)
        for name in self.names:
            out.append(f"\n{name[: LABEL - 2]:<{LABEL}}", "dim")
            ev = self.evaluations.get(name)
            if ev is None:
                continue
            n = len(_fit(ev.truth, width))
            used = 0
            for i in range(n):
                right = ev.predicted[i] == ev.truth[i]
                style = (RIGHT if right else WRONG)[shade(float(ev.p_true[i]))] + ("" if right else " underline")
                out.append(visible(ev.predicted[i]), style)
                used += cell_len(visible(ev.predicted[i]))
            out.append(" " * max(0, width - used) + scores[name].rjust(room), "bold")
        return out


def _fit(text: str, width: int) -> str:
    """The longest start of `text` that fits `width` cells."""
    used = 0
    for i, ch in enumerate(text):
        used += cell_len(visible(ch))
        if used > width:
            return text[:i]
    return text
