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


def score(evaluation: Evaluation, step: int) -> str:
    """' 31% @1,200': a model's accuracy on the whole evaluation text, and the step it was scored at."""
    return f" {evaluation.accuracy:4.0%} @{step:,}"


class RaceComparison(Widget):
    """The start of the evaluation text over each model's teacher-forced prediction of it, from
    that model's latest evaluation. A wrong prediction is red and underlined (it reads without
    colour); each model's line ends in its accuracy on the whole evaluation text and the step of
    the evaluation."""

    DEFAULT_CSS = """
    RaceComparison { height: auto; }
    """

    def __init__(self, names: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.names = list(names)
        self.evaluations: dict[str, Evaluation] = {}
        self.steps: dict[str, int] = {}  # the step of each model's evaluation
        self.on_validation = True

    def on_mount(self) -> None:
        """Title the panel."""
        self._title()

    def show(self, name: str, evaluation: Evaluation, on_validation: bool, step: int) -> None:
        """A model's newer evaluation, made at `step`."""
        self.evaluations[name] = evaluation
        self.steps[name] = step
        self.on_validation = on_validation
        self._title()
        self.refresh()

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.names) + 1

    def _title(self) -> None:
        parent = self.parent if self.parent is not None else self
        where = "validation text" if self.on_validation else "training text"
        parent.border_title = f" truth vs predictions · {where} · accuracy @step "

    def render(self) -> Text:
        """The truth line, then a prediction line per model, column under column, each ending in
        the model's score and its step."""
        scores = {n: score(self.evaluations[n], self.steps[n]) for n in self.evaluations}
        room = max((len(s) for s in scores.values()), default=0)
        width = max(2, self.size.width - LABEL - room)
        truth = next(iter(self.evaluations.values()), None)
        out = Text(no_wrap=True, overflow="crop")
        out.append("truth  ", "dim")
        if truth is None:
            out.append("waiting for the first evaluation…", "dim")
        else:
            out.append("".join(visible(c) for c in _fit(truth.truth, width)))
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
