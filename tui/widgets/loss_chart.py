"""The loss graph: training loss (raw and smoothed) and validation loss against step, with ln V."""

from __future__ import annotations

import math

import numpy as np
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.strip import Strip
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, PlotWidget
from textual_plot.plot_widget import Legend

from ..messages import CurveFrame

# Line styles; NO_COLOR turns them into greys, so the kinds also differ in shape:
# raw is a thin braille trace, smoothed a half-block line, validation diamonds, ln V a dashed line.
RAW_STYLE = "rgb(90,110,150)"
SMOOTH_STYLE = "bold rgb(120,190,255)"
VAL_STYLE = "bold rgb(255,170,60)"
BASE_STYLE = "rgb(150,80,80)"

# Redraws per second at most (a redraw costs milliseconds of the interpreter shared with training).
REDRAWS_PER_S = 2


class _Canvas(Canvas):
    """textual-hires-canvas's Canvas, but an empty line carries a style.

    Canvas.render_line returns `Strip.blank(0)` (a segment whose style is None) before its first
    resize, and Textual's NO_COLOR filter (Monochrome) fails on a None style. Seen with
    textual 8.2.8, textual-hires-canvas 0.14.
    """

    def render_line(self, y: int) -> Strip:
        if not self._canvas_size.area or y >= self._canvas_size.height:
            return Strip.blank(self.size.width, self.rich_style)
        return super().render_line(y)


class _Plot(PlotWidget):
    """PlotWidget built from _Canvas (its compose, otherwise unchanged)."""

    def compose(self) -> ComposeResult:
        with Grid():
            yield _Canvas(1, 1, id="margin-top")
            yield _Canvas(1, 1, id="margin-left")
            yield _Canvas(1, 1, id="plot")
            yield _Canvas(1, 1, id="margin-bottom")
        yield Legend(id="legend")


class LossChart(Vertical):
    """A PlotWidget redrawn at most REDRAWS_PER_S times a second from the latest curve frame."""

    def __init__(self, vocab_size: int, budget: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.baseline = math.log(vocab_size)  # the loss of a uniform guess, nats/char
        self.budget = budget  # step budget (0 = none): the x axis then spans the whole run
        self.frame: CurveFrame | None = None  # the latest curve received
        self.drawn: CurveFrame | None = None  # the curve on screen
        self.redraws = 0

    def compose(self) -> ComposeResult:
        plot = _Plot(allow_pan_and_zoom=False)
        plot.can_focus = False
        yield plot

    def on_mount(self) -> None:
        """Set up the axes and the redraw timer."""
        plot = self.query_one(PlotWidget)
        plot.margin_top = 0
        plot.margin_bottom = 1
        plot.margin_left = 5
        self.border_title = " nats/char  ⠒ raw ▀ smooth ◆ val ╌ ln V "
        self.set_interval(1 / REDRAWS_PER_S, self._redraw_if_new)
        self._draw(self.frame)

    def show(self, frame: CurveFrame) -> None:
        """Take a new curve; it is drawn at the next tick."""
        self.frame = frame

    def reset(self, frame: CurveFrame | None = None) -> None:
        """Start again (after a model reset)."""
        self.frame = frame
        self._draw(frame)

    def _redraw_if_new(self) -> None:
        if self.frame is not self.drawn and self.display:
            self._draw(self.frame)

    def _draw(self, frame: CurveFrame | None) -> None:
        plot = self.query_one(PlotWidget)
        plot.clear()
        self.drawn = frame
        self.redraws += 1
        last = frame.total_steps if frame is not None else 0
        x_max = float(max(self.budget, last, 10))
        y_top = self.baseline * 1.1
        plot.set_xlimits(0.0, x_max)
        plot.set_ylimits(0.0, y_top)
        plot.set_yticks(_ticks(y_top, max(2, self.size.height // 3)))
        cells = max(2, self.size.width - plot.margin_left - 2)
        plot.scatter(np.linspace(0.0, x_max, cells), np.full(cells, self.baseline), marker="╌", marker_style=BASE_STYLE)
        if frame is None:
            return
        if len(frame.steps):
            plot.plot(frame.steps, np.minimum(frame.raw, y_top), line_style=RAW_STYLE, hires_mode=HiResMode.BRAILLE)
            plot.plot(
                frame.steps, np.minimum(frame.smooth, y_top), line_style=SMOOTH_STYLE, hires_mode=HiResMode.HALFBLOCK
            )
        if len(frame.val_steps):
            plot.scatter(frame.val_steps, np.minimum(frame.val, y_top), marker="◆", marker_style=VAL_STYLE)


def _ticks(top: float, n: int) -> list[float]:
    """Round tick values from 0 up to `top`, about `n` of them."""
    for step in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        if top / step <= n:
            break
    return [i * step for i in range(int(top / step) + 1)]
