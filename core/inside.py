"""Looking inside: per-character activations of every gate, cell and hidden unit, and which
units track a simple feature of the text (inside quotes, position in the line, ...).

Computed by a plain step-by-step forward pass on a copy of the weights, written to read like
the equations in core/model.py (LSTM), core/gru.py and core/rnn.py, so it never touches training.
Each cell shows its own quantities: the LSTM its input, forget and output gates, candidate, cell
and hidden state; the GRU its reset (r) and update (z) gates, candidate (n) and hidden state;
the RNN its hidden state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .model import CharModel

# What can be looked at in each cell, and the range of its values.
CELL_QUANTITIES = {
    "lstm": ("input", "forget", "output", "candidate", "cell", "hidden"),
    "gru": ("reset", "update", "candidate", "hidden"),
    "rnn": ("hidden",),
}
QUANTITIES = CELL_QUANTITIES["lstm"]
ALL_QUANTITIES = tuple(dict.fromkeys(q for qs in CELL_QUANTITIES.values() for q in qs))
GATE_QUANTITIES = ("input", "forget", "output", "reset", "update")  # in (0, 1): sequential colours
# candidate and hidden are in (-1, 1), the LSTM's cell is unbounded: diverging colours


def quantities(cell: str) -> tuple[str, ...]:
    """What the inside view can show for `cell`, in display order."""
    return CELL_QUANTITIES[cell]


def default_quantity(cell: str) -> str:
    """The quantity shown first: the LSTM's cell, which carries its memory; otherwise the hidden state."""
    return "cell" if cell == "lstm" else "hidden"


@dataclass(frozen=True, eq=False)
class Activations:
    """Every layer's gates and states for each character of a text, read from a fresh state."""

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


def _sigmoid(z: NDArray) -> NDArray:
    return 1.0 / (1.0 + np.exp(-z))


def activations(model: CharModel, ids: NDArray, text: str | None = None) -> Activations:
    """Run `model` over `ids` (n,) from a fresh state and record every gate and state."""
    cfg = model.config
    P = {k: v.astype(np.float64) for k, v in model.params.items()}  # a private copy
    H, L, n = cfg.hidden, cfg.layers, len(ids)
    names = quantities(cfg.cell)
    out = {q: np.zeros((L, n, H)) for q in names}
    h = [np.zeros(H) for _ in range(L)]  # (H,) per layer
    c = [np.zeros(H) for _ in range(L)]  # (H,) the LSTM's cell per layer
    for t, ch in enumerate(np.asarray(ids, dtype=np.int64)):
        x = P["Wx0"][ch]  # (G*H,) layer 0: the one-hot input times Wx0 is a row of it
        for layer in range(L):
            Wh, b = P[f"Wh{layer}"], P[f"b{layer}"]
            xz = x if layer == 0 else x @ P[f"Wx{layer}"]  # (G*H,) the input's contribution
            if cfg.cell == "lstm":
                z = xz + h[layer] @ Wh + b  # (4H,) all gates, in GATES order
                i = _sigmoid(z[:H])
                f = _sigmoid(z[H : 2 * H])
                o = _sigmoid(z[2 * H : 3 * H])
                g = np.tanh(z[3 * H :])
                c[layer] = f * c[layer] + i * g
                h[layer] = o * np.tanh(c[layer])
                values: tuple[NDArray, ...] = (i, f, o, g, c[layer], h[layer])
            elif cfg.cell == "gru":
                a = xz + b  # (3H,) input side, in GRU_GATES order r, z, n
                u = h[layer] @ Wh  # (3H,) recurrent side
                r = _sigmoid(a[:H] + u[:H])
                zg = _sigmoid(a[H : 2 * H] + u[H : 2 * H])
                nc = np.tanh(a[2 * H :] + r * (u[2 * H :] + P[f"bhn{layer}"]))
                h[layer] = (1 - zg) * nc + zg * h[layer]
                values = (r, zg, nc, h[layer])
            else:
                h[layer] = np.tanh(xz + h[layer] @ Wh + b)
                values = (h[layer],)
            for q, v in zip(names, values, strict=True):
                out[q][layer, t] = v
            x = h[layer]
    return Activations(text=text if text is not None else "", values=out)


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
