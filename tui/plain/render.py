"""Colouring text by one unit's activation: for `lstm-tui inspect` and the interface's inside view.

Gate values (input, forget, output) lie in (0, 1) and get a sequential scale (dark to bright);
candidate, cell and hidden values are signed and get a diverging scale (red below zero, blue
above). Without colour, values are drawn as shade characters under the text. A value that is NaN
marks a character the model did not read (one it never saw): it is shown in place, uncoloured,
with UNREAD under it. This module imports no UI library, so the headless `inspect` command stays
fast.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from core.inside import GATE_QUANTITIES

from .format import char_label

SHADES = " ░▒▓█"  # five levels from the bottom of the range to the top
UNREAD = "×"  # under a character the model did not read


def value_range(quantity: str, values: NDArray) -> tuple[float, float]:
    """The (lo, hi) the colour scale spans: (0, 1) for gates, symmetric around 0 otherwise."""
    if quantity in GATE_QUANTITIES:
        return 0.0, 1.0
    if quantity in ("candidate", "hidden"):
        return -1.0, 1.0
    read = np.abs(np.asarray(values, dtype=np.float64))
    read = read[~np.isnan(read)]
    m = float(read.max()) if len(read) else 1.0  # the cell is unbounded
    return -max(m, 1e-6), max(m, 1e-6)


def unit_fraction(values: NDArray, lo: float, hi: float) -> NDArray:
    """(n,) values mapped to [0, 1] across the range."""
    return np.clip((np.asarray(values, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)


def colour(fraction: float, diverging: bool) -> tuple[int, int, int]:
    """An RGB background for a position in [0, 1] of the scale."""
    if diverging:  # red (-) through near-black (0) to blue (+)
        d = 2.0 * fraction - 1.0
        if d < 0:
            return (int(40 + 200 * -d), 40, 40)
        return (40, int(40 + 90 * d), int(40 + 215 * d))
    v = int(20 + 220 * fraction)  # sequential: dark to bright green
    return (v // 3, v, v // 2)


def foreground_for(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white text, whichever reads better on `rgb`."""
    r, g, b = rgb
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def visible(ch: str) -> str:
    """A one-cell stand-in for characters that would break the layout."""
    if ch == "\n":
        return "↵"
    if ch == "\t":
        return "→"
    if ch.isprintable():
        return ch
    return "·"


def render_ansi(text: str, values: NDArray, quantity: str, width: int = 80) -> str:
    """The text with each character's background coloured by its value (24-bit ANSI)."""
    lo, hi = value_range(quantity, values)
    return ansi_fractions(text, unit_fraction(values, lo, hi), quantity not in GATE_QUANTITIES, width)


def ansi_fractions(text: str, frac: NDArray, diverging: bool, width: int = 80) -> str:
    """The text with each character's background at its place (in [0, 1], NaN: not read) on the
    scale, 24-bit ANSI, wrapped at `width`."""
    lines, line, col = [], [], 0
    for ch, f in zip(text, frac, strict=True):
        if np.isnan(f):  # not read: the terminal's own colours
            line.append(f"\x1b[0m{visible(ch)}")
        else:
            bg = colour(float(f), diverging)
            fg = foreground_for(bg)
            line.append(f"\x1b[38;2;{fg[0]};{fg[1]};{fg[2]}m\x1b[48;2;{bg[0]};{bg[1]};{bg[2]}m{visible(ch)}")
        col += 1
        if ch == "\n" or col >= width:
            lines.append("".join(line) + "\x1b[0m")
            line, col = [], 0
    if line:
        lines.append("".join(line) + "\x1b[0m")
    return "\n".join(lines)


def render_shades(text: str, values: NDArray, quantity: str, width: int = 80) -> str:
    """Without colour: each line of text, and under it a line of shade characters."""
    lo, hi = value_range(quantity, values)
    return shades_fractions(text, unit_fraction(values, lo, hi), width)


def shades_fractions(text: str, frac: NDArray, width: int = 80) -> str:
    """Each line of text (wrapped at `width`) over a line of shades, one per character's place (in
    [0, 1], NaN: not read) on the scale."""
    out, chars, shades = [], [], []
    for ch, f in zip(text, frac, strict=True):
        chars.append(visible(ch))
        shades.append(UNREAD if np.isnan(f) else SHADES[min(len(SHADES) - 1, int(f * len(SHADES)))])
        if ch == "\n" or len(chars) >= width:
            out += ["".join(chars), "".join(shades)]
            chars, shades = [], []
    if chars:
        out += ["".join(chars), "".join(shades)]
    return "\n".join(out)


def render_plain(text: str, values: NDArray) -> str:
    """One line per character: position, the character (escaped), and the value ('not read' for a
    character the model never saw)."""
    return "\n".join(
        f"{t}\t{ch!r}\t{'not read' if np.isnan(v) else format(float(v), '+.4f')}"
        for t, (ch, v) in enumerate(zip(text, values, strict=True))
    )


def legend(quantity: str, values: NDArray) -> str:
    """One line naming the scale and the range it spans."""
    lo, hi = value_range(quantity, values)
    kind = "sequential" if quantity in GATE_QUANTITIES else "diverging"
    return f"{quantity}: {kind} scale from {lo:+.2f} to {hi:+.2f}; shades {SHADES!r} low to high"


# ------------------------------------------------------------------ attention heads
def shade(fraction: float) -> str:
    """The shade character for a fraction in [0, 1] of the scale."""
    return SHADES[min(len(SHADES) - 1, max(0, int(fraction * len(SHADES))))]


def relative_weights(weights: NDArray) -> NDArray:
    """Attention weights scaled so that the largest is 1: what the shades and colours show (a head
    spreading over 60 characters would otherwise leave them all blank)."""
    w = np.asarray(weights, dtype=np.float64)
    top = float(w.max()) if len(w) else 0.0
    return w / top if top > 0 else np.zeros_like(w)


def attention_shades(context: str, weights: NDArray, width: int = 80) -> str:
    """Without colour: the characters a head reads, each line with a line of shades under it
    (SHADES, by weight relative to the largest)."""
    return shades_fractions(context, relative_weights(weights), width)


def attention_ansi(context: str, weights: NDArray, width: int = 80) -> str:
    """The characters a head reads, each on a background as bright as its weight (relative to the
    largest)."""
    return ansi_fractions(context, relative_weights(weights), False, width)


def attention_top(text: str, top: list[tuple[int, float]], at: int, bar_width: int = 20) -> list[str]:
    """A line per attended character, largest weight first: the weight, a bar, the character and
    how far back it is from position `at` (positions of `text`, counted from 0)."""
    heaviest = top[0][1] if top else 1.0
    lines = []
    for i, w in top:
        n = int(round(bar_width * w / heaviest)) if heaviest > 0 else 0
        back = "itself" if i == at else f"{at - i} back"
        lines.append(f"{w:6.1%}  {'█' * n:<{bar_width}}  {char_label(text[i]):<9} {back}")
    return lines
