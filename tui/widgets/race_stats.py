"""A race's scoreboard: a line per model with its step, losses, speed and share of time."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widget import Widget

from core import EvalReport, StepReport

from ..plain.format import duration, si

WIDE = 66  # below this width the cold-start and speed columns are left out
NARROW = 45  # and below this one, the time column too


class RaceStats(Widget):
    """One line per model: cell, step, smoothed training loss, validation loss (one pass) with the
    step it was scored at, its cold-start score (64-character blocks each from a blank state),
    chars/s and the time it has had. The leading model on validation loss is marked ▶. The first line
    names the columns, on a band: it heads the panel."""

    COMPONENT_CLASSES = {"race-stats--head"}
    DEFAULT_CSS = """
    RaceStats { height: auto; }
    RaceStats > .race-stats--head { background: $panel; color: $text-muted; }
    """

    def __init__(self, names: Sequence[str], styles: Sequence[str], **kwargs) -> None:
        super().__init__(**kwargs)
        self.names = list(names)
        self.series_styles = dict(zip(self.names, styles, strict=False))
        self.steps: dict[str, StepReport | None] = dict.fromkeys(self.names)
        self.evaluations: dict[str, EvalReport] = {}
        self.seconds: dict[str, float] = dict.fromkeys(self.names, 0.0)
        self.out: dict[str, str] = {}  # name -> why it left the race ("diverged")

    def show(
        self,
        steps: dict[str, StepReport | None] | None = None,
        evaluations: dict[str, EvalReport] | None = None,
        seconds: dict[str, float] | None = None,
    ) -> None:
        """Take the latest numbers and repaint."""
        if steps:
            self.steps.update({k: v for k, v in steps.items() if v is not None})
        if evaluations:
            self.evaluations.update(evaluations)
        if seconds:
            self.seconds.update(seconds)
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.names) + 1

    def line(self, name: str) -> str:
        """The model's line as plain text (what the screen shows, without the styles)."""
        return self._row(name, self.size.width)

    def _row(self, name: str, width: int) -> str:
        step, ev = self.steps.get(name), self.evaluations.get(name)
        s = f"{step.step:>7,}" if step else "      -"
        loss = f"{step.smooth_loss:6.3f}" if step else "     -"
        val = f"{ev.val_loss:6.3f} @{ev.step:<6,}" if ev else "     -" + " " * 8
        row = f"{name:<5}{s} {loss} {val}"
        if width >= WIDE:
            cold = f"{ev.cold_loss:7.3f}" if ev and ev.cold_loss is not None else "      -"
            speed = f"{si(step.chars_per_s):>7}" if step else "      -"
            row += f" {cold} {speed}"
        if width >= NARROW:
            row += f" {duration(self.seconds.get(name, 0.0)):>6}"
        if name in self.out:
            row += f" {self.out[name]}"
        return row

    def render(self) -> Text:
        width = self.size.width
        head = f"{'cell':<5}{'step':>7} {'loss':>6} {'val':>6} {'@step':<7}"
        if width >= WIDE:
            head += f" {'cold':>7} {'chars/s':>7}"
        if width >= NARROW:
            head += f" {'time':>6}"
        out = Text(no_wrap=True, overflow="crop")
        out.append(f" {head:<{max(0, width - 1)}}", self.get_component_rich_style("race-stats--head"))
        scored = {n: e.val_loss for n, e in self.evaluations.items()}
        leader = min(scored, key=scored.__getitem__) if len(scored) > 1 else None
        for name in self.names:
            out.append("\n")
            out.append("▶" if name == leader else " ", "bold")
            out.append(self._row(name, width), self.series_styles.get(name, ""))
        return out
