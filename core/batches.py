"""B parallel streams over a text, read in windows of T steps with the hidden state carried.

Stream b starts at phase b * P / B of the text's P = N - 1 (input, target) pairs and reads on
through the whole text, wrapping at its end. Every stream therefore sees the text from its
beginning with a fresh state, exactly as evaluation and generation read it; a stream's state
is blank at its first window and when it wraps (the end of the text does not lead into its start).
Both are marked as resets, so a model that learns its blank state learns it from both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError
from .models import Resets


@dataclass(frozen=True)
class Window:
    """One training window: inputs, targets and where streams start afresh."""

    x: NDArray  # (T, B) input ids
    y: NDArray  # (T, B) target ids: the character after each input
    resets: Resets  # t -> streams whose state is blank before step t (maybe empty)


def fit_shape(n_chars: int, batch: int, seq_len: int) -> tuple[int, int]:
    """(B, T) no larger than requested that a text of `n_chars` characters can fill.

    T is at most the P = n_chars - 1 available pairs, and B at most P // T streams, so a short
    text still trains (with smaller windows) instead of producing no batches at all.
    """
    if batch < 1 or seq_len < 1:
        raise ConfigError(f"batch and sequence length must be >= 1, got {batch} and {seq_len}")
    pairs = n_chars - 1
    if pairs < 1:
        raise ConfigError("the text needs at least 2 characters to train on")
    T = min(seq_len, pairs)
    B = max(1, min(batch, pairs // T))
    return B, T


class Batches:
    """The stream/window iterator. `positions` (B,) is the data position, saved in checkpoints."""

    def __init__(self, ids: NDArray, batch: int, seq_len: int, positions: NDArray | None = None):
        self.ids = ids
        self.batch, self.seq_len = fit_shape(len(ids), batch, seq_len)
        self.pairs = len(ids) - 1  # P: (input, target) pairs in one pass over the text
        B, P = self.batch, self.pairs
        if positions is None:
            positions = (np.arange(B, dtype=np.int64) * P) // B
        positions = np.asarray(positions, dtype=np.int64)
        if positions.shape != (B,) or positions.min() < 0 or positions.max() >= P:
            raise ConfigError("saved data positions do not fit this text and batch size")
        self.positions = positions.copy()
        self.chars_seen = 0  # (input, target) pairs read so far
        # The streams' state is blank: the next window resets every stream at step 0 (a run resumed
        # from a state saved mid-text sets this False)
        self.blank = True

    @property
    def epoch(self) -> float:
        """Passes over the text so far (B x T pairs per window)."""
        return self.chars_seen / self.pairs

    def next(self) -> Window:
        """The next window for every stream; advances the positions."""
        B, T, P = self.batch, self.seq_len, self.pairs
        idx = (self.positions[None, :] + np.arange(T)[:, None]) % P  # (T, B) input positions
        x = self.ids[idx]  # (T, B)
        y = self.ids[idx + 1]  # (T, B)
        resets: Resets = {}
        zeros = np.argwhere(idx == 0)  # (k, 2) (t, b): a stream arriving at the start of the text
        for t in np.unique(zeros[:, 0]):
            resets[int(t)] = zeros[zeros[:, 0] == t, 1]
        if self.blank:
            resets[0] = np.arange(B, dtype=np.int64)
            self.blank = False
        self.positions = (self.positions + T) % P
        self.chars_seen += B * T
        return Window(x=x, y=y, resets=resets)
