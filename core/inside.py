"""Looking inside: per-character activations of every gate, cell and hidden unit, and which
units track a simple feature of the text (inside quotes, position in the line, ...).

Each model computes its own quantities (`CharModel.activations`: a plain step-by-step forward
pass on a copy of the weights that reads like its equations, so it never touches training) and
declares what they are (`inside_quantities`): the LSTM its input, forget and output gates,
candidate, cell and hidden state; the GRU its reset (r) and update (z) gates, candidate (n) and
hidden state; the RNN its hidden state.

A model with attention heads (the GPT: `inside_attention`) shows instead which earlier characters
each head attends to (`attention`): at every position of a text, each head's weights over the
characters the model read for it, in the context generation and evaluation give that position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .models import MODELS, CharModel, model_class

# Every quantity any model shows, and those in (0, 1) (gates: sequential colours; the others,
# in (-1, 1) or unbounded like the LSTM's cell, get diverging colours).
ALL_QUANTITIES = tuple(dict.fromkeys(q for m in MODELS.values() for q in m.inside_quantities))
GATE_QUANTITIES = tuple(dict.fromkeys(q for m in MODELS.values() for q in m.gate_quantities))


def quantities(cell: str) -> tuple[str, ...]:
    """What the inside view can show for the model `cell`, in display order."""
    return model_class(cell).inside_quantities


def has_attention(cell: str) -> bool:
    """True when the inside view of the model `cell` shows attention heads rather than units."""
    return model_class(cell).inside_attention


def default_quantity(cell: str) -> str:
    """The quantity shown first (the LSTM's cell, which carries its memory; else the hidden state)."""
    return model_class(cell).inside_default


@dataclass(frozen=True, eq=False)
class Activations:
    """Every layer's gates and states for each character of a text, read from a blank state."""

    text: str  # the characters read, one per row
    values: dict[str, NDArray]  # quantity -> (L, n, H); row t is the value after reading text[t]

    @property
    def layers(self) -> int:
        return next(iter(self.values.values())).shape[0]

    @property
    def hidden(self) -> int:
        return next(iter(self.values.values())).shape[2]

    def unit(self, quantity: str, layer: int, unit: int) -> NDArray:
        """(n,) one unit's value at every character."""
        return self.values[quantity][layer, :, unit]


def activations(model: CharModel, ids: NDArray, text: str | None = None) -> Activations:
    """Run `model` over `ids` (n,) from a blank state and record every quantity it shows."""
    return Activations(text=text if text is not None else "", values=model.activations(np.asarray(ids)))


@dataclass(frozen=True, eq=False)
class Attention:
    """Every head's attention at every position of a text. Position p was read in the context
    generation gives it (the characters context(p) = start..p, at most a block of them): its
    weights are row p - start of the window that starts there."""

    text: str  # the characters read
    windows: list[tuple[int, NDArray]]  # (start, (L, heads, m, m) weights of text[start:start+m])
    where: NDArray  # (n,) for each position, the index of the window its row is read from

    @property
    def layers(self) -> int:
        return self.windows[0][1].shape[0]

    @property
    def heads(self) -> int:
        return self.windows[0][1].shape[1]

    def __len__(self) -> int:
        return len(self.where)

    def context(self, p: int) -> int:
        """The first position of the characters position p attends over."""
        return self.windows[int(self.where[p])][0]

    def row(self, layer: int, head: int, p: int) -> NDArray:
        """(p - context(p) + 1,) how head `head` of layer `layer` at position p spreads its
        attention over positions context(p)..p (they sum to 1)."""
        start, A = self.windows[int(self.where[p])]
        return A[layer, head, p - start, : p - start + 1]

    def top(self, layer: int, head: int, p: int, k: int) -> list[tuple[int, float]]:
        """The k positions (of the text) position p attends to most, with their weights, largest first
        (ties: the nearer first)."""
        w = self.row(layer, head, p)
        order = np.argsort(-w[::-1], kind="stable")[:k]  # reversed: a tie goes to the later position
        start = self.context(p)
        return [(start + len(w) - 1 - int(i), float(w[len(w) - 1 - i])) for i in order]


def attention(model: CharModel, ids: NDArray, text: str | None = None) -> Attention:
    """Every head's attention at each character of `ids` (n,), n >= 1, each position read in the
    context generation gives it: the windows of `score_windows` (all of a text of up to a block is
    one context), each read afresh with `model.attention`."""
    ids = np.asarray(ids)
    if not model.inside_attention:
        raise ValueError(f"the {model.title} model has no attention heads")
    if len(ids) == 0:
        raise ValueError("attention needs at least one character")
    windows = model.score_windows(len(ids)) or [(0, len(ids), 0)]
    where = np.empty(len(ids), np.int64)  # (n,)
    kept = []
    for w, (start, stop, first) in enumerate(windows):
        kept.append((start, model.attention(ids[start:stop])))
        where[first:stop] = w
    return Attention(text=text if text is not None else "", windows=kept, where=where)


# ------------------------------------------------------------------------ features
def _inside_quotes(text: str) -> NDArray:
    inside, out = False, np.zeros(len(text))
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        out[t] = inside
    return out


def _inside_brackets(text: str) -> NDArray:
    depth, out = 0, np.zeros(len(text))
    for t, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}" and depth:
            depth -= 1
        out[t] = depth > 0
    return out


def _position_in_line(text: str) -> NDArray:
    pos, out = 0, np.zeros(len(text))
    for t, ch in enumerate(text):
        out[t] = pos
        pos = 0 if ch == "\n" else pos + 1
    return out


def _position_in_word(text: str) -> NDArray:
    pos, out = 0, np.zeros(len(text))
    for t, ch in enumerate(text):
        pos = pos + 1 if ch.isalnum() else 0
        out[t] = pos
    return out


FEATURES: dict[str, Callable[[str], NDArray]] = {
    "inside quotes": _inside_quotes,
    "inside brackets": _inside_brackets,
    "position in line": _position_in_line,
    "position in word": _position_in_word,
    "after a space": lambda s: np.array([ch == " " for ch in s], dtype=float),
    "vowel": lambda s: np.array([ch.lower() in "aeiou" for ch in s], dtype=float),
    "punctuation": lambda s: np.array([not ch.isalnum() and not ch.isspace() for ch in s], dtype=float),
}


def feature(name: str, text: str) -> NDArray:
    """(n,) the value of feature `name` at every character of `text`."""
    return FEATURES[name](text)


@dataclass(frozen=True)
class UnitScore:
    layer: int
    unit: int
    r: float  # Pearson correlation of the unit's activation with the feature, in [-1, 1]


def rank_units(acts: Activations, quantity: str, values: NDArray, top: int = 5) -> list[UnitScore]:
    """The `top` units of `quantity` whose activation correlates most (by |r|) with `values` (n,)."""
    y = np.asarray(values, dtype=np.float64)
    y = y - y.mean()
    ys = np.sqrt(np.sum(y * y))
    X = acts.values[quantity]  # (L, n, H)
    Xc = X - X.mean(axis=1, keepdims=True)
    xs = np.sqrt(np.sum(Xc * Xc, axis=1))  # (L, H)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("lnh,n->lh", Xc, y) / (xs * ys)  # (L, H)
    r = np.nan_to_num(r)  # a constant unit or feature correlates with nothing
    order = np.argsort(-np.abs(r), axis=None, kind="stable")[:top]
    layers, units = np.unravel_index(order, r.shape)
    return [UnitScore(int(li), int(ui), float(r[li, ui])) for li, ui in zip(layers, units, strict=True)]
