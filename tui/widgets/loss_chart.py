"""The loss graph: training loss (raw and smoothed) and validation loss against step, with the levels
a model must get below to know anything: ln V, and the text's unigram and bigram levels.

Given `names`, it overlays named series instead (a race of cells): each series' smoothed loss and
validation points in its own colour and, so that they read without colour, its own marker.

The levels are horizontal lines, each its own glyph so that they read without colour (NO_COLOR):
ln V dashed (╌), the unigram level dotted (·), the bigram level solid (─). The unigram and
bigram levels (core.baselines) are the loss of predicting each character from its frequency in the
training part, or from the character before it, scored on the validation part; the app hands
them over (`set_baselines`) once computed. The title names every mark, shortened to fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.geometry import Region
from textual.strip import Strip
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, PlotWidget
from textual_plot.plot_widget import Legend, map_coordinate_to_pixel

from core.baselines import Baselines

from ..plain.curve import CurveFrame

# Line styles; NO_COLOR turns them into greys, so the kinds also differ in shape:
# raw is a thin braille trace, smoothed a half-block line, validation diamonds, ln V a dashed line.
RAW_STYLE = "rgb(90,110,150)"
SMOOTH_STYLE = "bold rgb(120,190,255)"
VAL_STYLE = "bold rgb(255,170,60)"
BASE_STYLE = "rgb(150,80,80)"
UNIGRAM_STYLE = "rgb(150,130,90)"
BIGRAM_STYLE = "rgb(110,150,110)"
# The levels' glyphs, one line each: (marker, style, the level's name in the title, a shorter one).
LN_V = ("╌", BASE_STYLE, "ln V", "ln V")
UNIGRAM = ("·", UNIGRAM_STYLE, "unigram", "uni")
BIGRAM = ("─", BIGRAM_STYLE, "bigram", "bi")
# Named series (a race): a colour each, and a marker each for when there is no colour (NO_COLOR):
# the curve is then drawn with the marker and the validation points with the name's capital.
SERIES_STYLES = ("bold rgb(120,190,255)", "bold rgb(255,170,60)", "bold rgb(140,220,120)", "bold rgb(230,120,230)")
SERIES_MARKERS = ("•", "+", "x", "o")

# What the chart shows: one curve, or named curves.
Frames = CurveFrame | Mapping[str, CurveFrame]


class _Canvas(Canvas):
    """textual-hires-canvas's Canvas, with lines that are cheaper to paint and never unstyled.

    Canvas.render_line returns `Strip.blank(0)` (a segment whose style is None) before its first
    resize, and Textual's NO_COLOR filter (Monochrome) fails on a None style; here an empty line
    carries the widget's style. Seen with textual 8.2.8, textual-hires-canvas 0.14.

    Canvas.render_line also reads `self.rich_style` (a walk up the widget tree) for every line;
    during a repaint (`render_lines`) it is computed once and the cached value is read instead.
    """

    _base_style: Style | None = None

    @property
    def rich_style(self) -> Style:
        cached = self._base_style
        return cached if cached is not None else super().rich_style

    def render_lines(self, crop: Region) -> list[Strip]:
        self._base_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._base_style = None

    def render_line(self, y: int) -> Strip:
        if not self._canvas_size.area or y >= self._canvas_size.height:
            return Strip.blank(self.size.width, self.rich_style)
        return super().render_line(y)


class _Plot(PlotWidget):
    """PlotWidget built from _Canvas, drawing a frame at less cost to the interpreter training shares.

    PlotWidget draws its datasets pixel by pixel, and the canvas refreshes (marks itself dirty,
    which costs tens of microseconds) on every pixel set: hundreds of times per frame. Here each
    canvas refreshes once per frame. And PlotWidget draws onto its canvases when it is itself
    painted, so the canvases are painted in a second screen update; `changes` draws them at once
    (one screen update, and each costs a millisecond or more whatever changed).
    """

    _batching = False

    @contextmanager
    def changes(self) -> Iterator[None]:
        """Clear, plot, set limits… inside; the canvases are drawn once, on leaving."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
        canvas = self.query_one("#plot", Canvas)
        if self._needs_canvas_resize or not canvas._canvas_size or canvas._canvas_size != canvas.size:
            super()._rerender()  # not laid out at this size yet: drawn when painted, the usual way
        else:
            self._render_plot()
            self._needs_rerender = False

    def _rerender(self) -> None:
        if self._batching:
            self._needs_rerender = True
        else:
            super()._rerender()

    def compose(self) -> ComposeResult:
        with Grid():
            yield _Canvas(1, 1, id="margin-top")
            yield _Canvas(1, 1, id="margin-left")
            yield _Canvas(1, 1, id="plot")
            yield _Canvas(1, 1, id="margin-bottom")
        yield Legend(id="legend")

    def _render_plot(self) -> None:
        with ExitStack() as batch:
            for canvas in self.query(Canvas):
                batch.enter_context(canvas.batch_refresh())
            super()._render_plot()


class LossChart(Vertical):
    """A PlotWidget showing the latest curve frame, redrawn when the app calls `redraw_if_new`.

    A redraw costs milliseconds of the interpreter the training thread shares, so the app paces it.
    """

    def __init__(self, vocab_size: int, budget: int = 0, names: Sequence[str] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.baseline = math.log(vocab_size)  # the loss of a uniform guess, nats/char
        self.budget = budget  # step budget (0 = none): the x axis then spans the whole run
        self.names = list(names)  # named series: `show` then takes {name: CurveFrame}
        self.x_label = ""  # what the x axis counts, when not steps (named in the title)
        self.levels: Baselines | None = None  # the unigram and bigram levels, once computed
        self.frame: Frames | None = None  # the latest curve (or curves) received
        self.drawn: Frames | None = None  # the curve on screen
        self.redraws = 0

    def compose(self) -> ComposeResult:
        plot = _Plot(allow_pan_and_zoom=False)
        plot.can_focus = False
        yield plot

    def on_mount(self) -> None:
        """Set up the axes."""
        plot = self.query_one(PlotWidget)
        plot.margin_top = 0
        plot.margin_bottom = 1
        plot.margin_left = 5
        self.border_title = self._legend()
        self._draw(self.frame)

    def on_resize(self) -> None:
        """The title is shortened to the width, and the graph drawn again at its new size (the
        first drawing may come before the graph is laid out)."""
        self.border_title = self._legend()
        self._draw(self.drawn)

    def _legend(self) -> str:
        """The title: every mark and what it is, the longest wording that fits the width."""
        room = self.outer_size.width - 2 if self.outer_size.width else 1_000  # (a border's corner each side)
        x = f"· x: {self.x_label} " if self.x_label else ""
        if self.names:
            if self.app.no_color:
                keys = "  ".join(f"{SERIES_MARKERS[i % 4]} {n}" for i, n in enumerate(self.names))
                curves = [f"{keys}  {''.join(val_letters(self.names).values())} val"]
            else:
                keys = "  ".join(f"[{SERIES_STYLES[i % 4]}]▀ {n}[/]" for i, n in enumerate(self.names))
                curves = [f"{keys}  ◆ val"]
        else:
            curves = ["⠒ raw ▀ smooth ◆ val", "⠒▀ train ◆ val"]
        levels = [LN_V] if self.levels is None else [LN_V, UNIGRAM, BIGRAM]
        wordings = [
            " ".join(f"{mark} {long if full else short}" for mark, _, long, short in levels) for full in (True, False)
        ]
        titles = [f" nats/char  {c} {w} {x}" for c in curves for w in wordings]
        fits = [t for t in titles if Text.from_markup(t).cell_len <= room]
        return fits[0] if fits else titles[-1]

    def set_baselines(self, levels: Baselines | None) -> None:
        """Draw the unigram and bigram levels (None: no longer: the text is not at hand)."""
        self.levels = levels
        if self.is_mounted:
            self.border_title = self._legend()
            self._draw(self.drawn)

    def set_x_axis(self, label: str, budget: int, frame: Frames | None) -> None:
        """Plot against another x (`label`, "" for steps; `budget` its extent, 0 = the data's)."""
        self.x_label, self.budget = label, budget
        self.border_title = self._legend()
        self.reset(frame)

    def show(self, frame: Frames) -> None:
        """Take a new curve; it is drawn at the next `redraw_if_new`."""
        self.frame = frame

    def reset(self, frame: Frames | None = None) -> None:
        """Start again (after a model reset)."""
        self.frame = frame
        self._draw(frame)

    def redraw_if_new(self) -> None:
        """Draw the latest curve if it is not on screen yet (and the graph is shown)."""
        if self.frame is not self.drawn and self.display:
            self._draw(self.frame)

    def _draw(self, frame: Frames | None) -> None:
        plot = self.query_one(_Plot)
        with plot.changes():
            self._plot(plot, frame)

    def _plot(self, plot: PlotWidget, frame: Frames | None) -> None:
        plot.clear()
        self.drawn = frame
        self.redraws += 1
        if isinstance(frame, Mapping):
            last = max((f.total_steps for f in frame.values()), default=0)
        else:
            last = frame.total_steps if frame is not None else 0
        x_max = float(max(self.budget, last, 1 if self.x_label else 10))  # steps: at least 10; seconds: 1
        y_top = self.baseline * 1.1
        plot.set_xlimits(0.0, x_max)
        plot.set_ylimits(0.0, y_top)
        plot.set_yticks(_ticks(y_top, max(2, self.size.height // 3)))
        cells = max(2, self.size.width - plot.margin_left - 2)
        self._plot_levels(plot, x_max, y_top, cells)
        if frame is None:
            return
        if isinstance(frame, Mapping):
            self._plot_series(plot, frame, y_top, cells)
            return
        if len(frame.steps):
            # No more points than the graph has columns of dots (braille has two per cell, half
            # blocks one): more cost drawing time and look the same.
            steps, raw = _thin(frame.steps, frame.raw, 2 * cells)
            plot.plot(steps, np.minimum(raw, y_top), line_style=RAW_STYLE, hires_mode=HiResMode.BRAILLE)
            steps, smooth = _thin(frame.steps, frame.smooth, cells, mean=False)
            plot.plot(steps, np.minimum(smooth, y_top), line_style=SMOOTH_STYLE, hires_mode=HiResMode.HALFBLOCK)
        if len(frame.val_steps):
            plot.scatter(frame.val_steps, np.minimum(frame.val, y_top), marker="◆", marker_style=VAL_STYLE)

    def _plot_levels(self, plot: PlotWidget, x_max: float, y_top: float, cells: int) -> None:
        """ln V and the unigram and bigram levels, a line each across the graph. Levels that fall in
        the same row of cells share it, taking turns cell by cell ("╌·╌·"), so that none hides
        another on a short graph. (A level above the graph's top is left out.)"""
        levels = [(self.baseline, LN_V)]
        if self.levels is not None:
            levels += [(self.levels.unigram, UNIGRAM), (self.levels.bigram, BIGRAM)]
        levels = [(y, glyph) for y, glyph in levels if y <= y_top]
        # The row each falls in, by the plot's own mapping onto the area it draws in at this size:
        # its canvas, less the margins, less a cell of frame all round (textual_plot's render).
        height = self.size.height - plot.margin_top - plot.margin_bottom
        area = Region(1, 1, 1, max(0, height - 2))
        rows = [map_coordinate_to_pixel(0.0, y, 0.0, x_max, 0.0, y_top, area)[1] for y, _ in levels]
        xs = np.linspace(0.0, x_max, cells)
        for j, (y, (marker, style, _, _)) in enumerate(levels):
            sharing = [k for k, row in enumerate(rows) if row == rows[j]]
            turn = xs[sharing.index(j) :: len(sharing)]
            plot.scatter(turn, np.full(len(turn), y), marker=marker, marker_style=style)

    def _plot_series(self, plot: PlotWidget, frames: Mapping[str, CurveFrame], y_top: float, cells: int) -> None:
        """Each named series: its smoothed loss as a line of its colour (or a trail of its marker,
        without colour) and its validation points."""
        no_color = self.app.no_color
        letters = val_letters(self.names)
        for i, name in enumerate(self.names):
            frame = frames.get(name)
            if frame is None:
                continue
            style, marker = SERIES_STYLES[i % 4], SERIES_MARKERS[i % 4]
            if len(frame.steps):
                if no_color:
                    steps, smooth = _thin(frame.steps, frame.smooth, max(2, cells // 2), mean=False)
                    plot.scatter(steps, np.minimum(smooth, y_top), marker=marker, marker_style=style)
                else:
                    steps, smooth = _thin(frame.steps, frame.smooth, cells, mean=False)
                    plot.plot(steps, np.minimum(smooth, y_top), line_style=style, hires_mode=HiResMode.HALFBLOCK)
            if len(frame.val_steps):
                val_marker = letters[name] if no_color else "◆"
                plot.scatter(frame.val_steps, np.minimum(frame.val, y_top), marker=val_marker, marker_style=style)


def val_letters(names: Sequence[str]) -> dict[str, str]:
    """Without colour, each series' validation points are a capital letter: its first one that no
    series before it took (lstm L, gru G, rnn R, gpt P)."""
    out: dict[str, str] = {}
    for name in names:
        free = [c for c in name.upper() if c.isalnum() and c not in out.values()]
        out[name] = free[0] if free else "◆"
    return out


def _thin(x: np.ndarray, y: np.ndarray, n: int, mean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """At most about `n` points of the curve (x, y): consecutive groups become their last x and
    their mean y (or their last y, for an already smoothed curve). The latest point stays last."""
    k = math.ceil(len(x) / max(1, n))
    if k <= 1:
        return x, y
    ends = np.arange(len(x) - 1, -1, -k)[::-1]  # groups end at the latest point, every k back
    if not mean:
        return x[ends], y[ends]
    starts = np.concatenate(([0], ends[:-1] + 1))
    return x[ends], np.add.reduceat(y, starts) / (ends - starts + 1)


def _ticks(top: float, n: int) -> list[float]:
    """Round tick values from 0 up to `top`, about `n` of them."""
    for step in (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0):
        if top / step <= n:
            break
    return [i * step for i in range(int(top / step) + 1)]
