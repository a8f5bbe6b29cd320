"""Plain-text formatting shared by the panels (no widgets here)."""

from __future__ import annotations

# Characters that would break the column alignment of the panels, shown as one visible cell.
_VISIBLE = {"\n": "↵", "\t": "→", " ": " ", "\r": "↵"}


def visible(ch: str) -> str:
    """`ch` as one printable cell: newline and tab get symbols, other control characters a dot."""
    if ch in _VISIBLE:
        return _VISIBLE[ch]
    if not ch.isprintable():
        return "·"
    return ch


def char_label(ch: str) -> str:
    """A character named for a table: 'a', space, newline."""
    return {" ": "space", "\n": "newline", "\t": "tab"}.get(ch, repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}")


def si(x: float) -> str:
    """1234567 -> '1.23M'."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.3g}{suffix}"
    return f"{x:.3g}"


def duration(seconds: float) -> str:
    """65 -> '1m05s'; 3725 -> '1h02m'."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def bar(fraction: float, width: int) -> str:
    """A text bar of `width` cells, `fraction` of it filled, with eighth-cell resolution."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "·")[:width]
