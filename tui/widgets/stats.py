"""The numbers: step, epoch, loss three ways, validation, speed, learning rate, time, progress."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from core import EvalReport, StepReport, bits_per_char, perplexity

from ..format import bar, duration, si


class StatsPanel(Static):
    """A two-column table of the latest training numbers."""

    def __init__(self, budget: int, tokens_per_step: int, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.budget = budget  # step budget, 0 = until stopped
        self.tokens_per_step = tokens_per_step  # B x T characters per step
        self.step: StepReport | None = None
        self.evaluation: EvalReport | None = None
        self.start_step = 0  # the step shown before any report (a resumed run's)
        self.last_val: tuple[int, float] | None = None  # (step, loss): a resumed run's last evaluation
        self.updates = 0

    def on_mount(self) -> None:
        """Draw the empty table."""
        self.border_title = " stats "
        self._redraw()

    def on_resize(self) -> None:
        """The progress bar follows the width."""
        self._redraw()

    def reset(self, step: int, last_val: tuple[int, float] | None = None) -> None:
        """Forget the numbers shown; start from `step` (and a resumed run's last evaluation)."""
        self.step, self.evaluation, self.start_step, self.last_val = None, None, step, last_val
        self._redraw()

    def show_step(self, report: StepReport) -> None:
        """Show the latest step."""
        self.step = report
        self.updates += 1
        self._redraw()

    def show_eval(self, report: EvalReport) -> None:
        """Show the latest evaluation."""
        self.evaluation = report
        self._redraw()

    def _redraw(self) -> None:
        r, ev = self.step, self.evaluation
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim", no_wrap=True, min_width=5)
        table.add_column(no_wrap=True, overflow="ellipsis")
        step = r.step if r else self.start_step
        table.add_row("step", f"{step:,}" + (f" · epoch {r.epoch:.2f}" if r else ""))
        if r:
            table.add_row("loss", f"{r.smooth_loss:.3f} nats · {bits_per_char(r.smooth_loss):.2f} bit")
            table.add_row("ppl", f"{perplexity(r.smooth_loss):.2f}")
        else:
            table.add_row("loss", "–")
            table.add_row("ppl", "–")
        if ev:
            table.add_row("val" if ev.on_validation else "eval", f"{ev.val_loss:.3f} nats · acc {ev.accuracy:.0%}")
        elif self.last_val is not None:
            table.add_row("val", f"{self.last_val[1]:.3f} nats at step {self.last_val[0]:,}")
        else:
            table.add_row("val", "–")
        table.add_row("speed", f"{si(r.chars_per_s)} chars/s" if r else "–")
        table.add_row("lr", f"{r.lr:.3g} · time {duration(r.elapsed_s)}" if r else "–")
        if self.budget:
            frac = min(1.0, step / self.budget)
            eta = ""
            if r and r.chars_per_s > 0 and step < self.budget:
                eta = " " + duration((self.budget - step) * self.tokens_per_step / r.chars_per_s)
            suffix = f" {frac:4.0%}{eta}"
            width = max(3, self.content_size.width - 6 - len(suffix))
            table.add_row("done", Text(bar(frac, width)) + Text(suffix))
        else:
            table.add_row("steps", Text("no budget: until stopped", style="dim"))
        self.update(table, layout=not self.step)  # same rows every time: repaint only
