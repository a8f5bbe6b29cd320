"""The numbers: step, epoch, loss three ways, validation (one-pass and cold-start), speed,
learning rate, time, progress."""

from __future__ import annotations

import math
from typing import Protocol

from rich.text import Text
from textual.widgets import Static

from core import StepReport, bits_per_char, perplexity

from ..plain.format import bar, duration, si

LABEL = 5  # width of the label column


class Score(Protocol):
    """An evaluation as the panel shows it: core's EvalReport, or a watched run's own record."""

    step: int
    val_loss: float
    accuracy: float  # nan: not known
    on_validation: bool
    sample: bool
    cold_loss: float | None  # the cold-start score (core.evaluate), when known


class StatsPanel(Static):
    """Two columns, label and value, of the latest training numbers (a line too long ends in '…')."""

    DEFAULT_CSS = """
    StatsPanel { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, budget: int, tokens_per_step: int, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.budget = budget  # step budget, 0 = until stopped
        self.tokens_per_step = tokens_per_step  # B x T characters per step
        self.step: StepReport | None = None
        self.evaluation: Score | None = None
        self.start_step = 0  # the step shown before any report (a resumed run's)
        self.last_val: tuple[int, float] | None = None  # (step, loss): a resumed run's last evaluation
        self.updates = 0

    def on_mount(self) -> None:
        """Draw the empty panel."""
        self.border_title = " stats "
        self._redraw()

    def on_resize(self) -> None:
        """The progress bar follows the width."""
        self._redraw()

    def reset(self, step: int, last_val: tuple[int, float] | None = None) -> None:
        """Forget the numbers shown; start from `step` (and a resumed run's last evaluation)."""
        self.step, self.evaluation, self.start_step, self.last_val = None, None, step, last_val
        self._redraw()

    def show(self, step: StepReport | None = None, evaluation: Score | None = None) -> None:
        """Show the latest step and/or evaluation (one repaint for both)."""
        if step is not None:
            self.step = step
            self.updates += 1
        if evaluation is not None:
            self.evaluation = evaluation
        self._redraw()

    def _redraw(self) -> None:
        r, ev = self.step, self.evaluation
        # Label column, then the value: plain lines of text (a rich Table measures every cell on
        # every repaint, several times the cost, and this panel repaints several times a second).
        rows: list[tuple[str, str | Text]] = []
        step = r.step if r else self.start_step
        rows.append(("step", f"{step:,}" + (f" · epoch {r.epoch:.2f}" if r else "")))
        if r:
            rows.append(("loss", f"{r.smooth_loss:.3f} nats · {bits_per_char(r.smooth_loss):.2f} bit"))
            rows.append(("ppl", f"{perplexity(r.smooth_loss):.2f}"))
        else:
            rows.append(("loss", "–"))
            rows.append(("ppl", "–"))
        if ev:
            # the step it was scored at, always (the step row moves on between evaluations); a *
            # marks a score of only the start of the text (--eval-chars)
            # beside the one-pass score, the cold-start one (the accuracy is in the truth panel's
            # title then)
            label = ("val" if ev.on_validation else "eval") + ("*" if ev.sample else "")
            cold = getattr(ev, "cold_loss", None)
            if cold is not None and math.isfinite(cold):
                beside = f" · cold {cold:.3f}"
            else:
                beside = f" · acc {ev.accuracy:.0%}" if math.isfinite(ev.accuracy) else ""
            rows.append((label, f"{ev.val_loss:.3f}{beside} @{ev.step:,}"))
        elif self.last_val is not None:
            rows.append(("val", f"{self.last_val[1]:.3f} @{self.last_val[0]:,}"))
        else:
            rows.append(("val", "–"))
        rows.append(("speed", f"{si(r.chars_per_s)} chars/s" if r else "–"))
        rows.append(("lr", f"{r.lr:.3g} · time {duration(r.elapsed_s)}" if r else "–"))
        if self.budget:
            frac = min(1.0, step / self.budget)
            eta = ""
            if r and r.chars_per_s > 0 and step < self.budget:
                eta = " " + duration((self.budget - step) * self.tokens_per_step / r.chars_per_s)
            suffix = f" {frac:4.0%}{eta}"
            width = max(3, self.content_size.width - LABEL - 1 - len(suffix))
            rows.append(("done", bar(frac, width) + suffix))
        else:
            rows.append(("steps", Text("no budget: until stopped", style="dim")))
        text = Text()
        for i, (label, value) in enumerate(rows):
            if i:
                text.append("\n")
            text.append(label.ljust(LABEL) + " ", "dim")
            text.append(value)
        self.update(text, layout=not self.step)  # same rows every time: repaint only
