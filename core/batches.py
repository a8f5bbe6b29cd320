"""B parallel streams over a text, read in windows of T steps: carried or random windows.

"carried" (WINDOWS[0]): stream b starts at phase b * P / B of the text's P = N - 1 (input, target)
pairs and reads on through the whole text, wrapping at its end, its state carried from window to
window. That is what gives a recurrent model context longer than a window. A stream starts from a
blank state at its first window, when it wraps (the end of the text does not lead into its start)
and, with `reset_prob` p > 0, at the start of any window with probability p: a model that never
starts blank in the middle of a text cannot read a seed typed from nothing. Each blank start is
marked as a reset, so a model that learns its blank state (--init-state learned) learns it from all.

"random": every window starts at a random place of the text, read from a blank state, as nanoGPT's
get_batch draws its batches. Each window teaches the model to start anywhere; the context it
learns is at most T characters. core/recipe.py chooses between them (benchmarks/blank_start.py
measured both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError
from .models import Resets

WINDOWS = ("carried", "random")  # TrainConfig.windows


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
    """The stream/window iterator. `positions` (B,) is the data position, saved in checkpoints.

    Random windows and random resets are drawn from `rng` (the run's generator, which its
    checkpoint keeps, so a resumed run draws what the straight one would have)."""

    def __init__(
        self,
        ids: NDArray,
        batch: int,
        seq_len: int,
        positions: NDArray | None = None,
        windows: str = "carried",
        reset_prob: float = 0.0,
        rng: np.random.Generator | None = None,
    ):
        if windows not in WINDOWS:
            raise ConfigError(f"unknown windows {windows!r}; choose {' or '.join(WINDOWS)}")
        if not 0 <= reset_prob <= 1:
            raise ConfigError(f"reset-prob must be in [0, 1], got {reset_prob}")
        if (windows == "random" or reset_prob > 0) and rng is None:
            raise ValueError("random windows and resets need a generator")
        self.ids = ids
        self.windows, self.reset_prob, self.rng = windows, reset_prob, rng
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
        if self.windows == "random":
            return self._random()
        B, T, P = self.batch, self.seq_len, self.pairs
        idx = (self.positions[None, :] + np.arange(T)[:, None]) % P  # (T, B) input positions
        x = self.ids[idx]  # (T, B)
        y = self.ids[idx + 1]  # (T, B)
        resets: Resets = {}
        zeros = np.argwhere(idx == 0)  # (k, 2) (t, b): a stream arriving at the start of the text
        for t in np.unique(zeros[:, 0]):
            resets[int(t)] = zeros[zeros[:, 0] == t, 1]
        if self.reset_prob > 0 and self.rng is not None:
            drawn = np.flatnonzero(self.rng.random(B) < self.reset_prob)  # streams starting blank now
            if len(drawn):
                resets[0] = np.union1d(resets.get(0, np.zeros(0, np.int64)), drawn).astype(np.int64)
        if self.blank:
            resets[0] = np.arange(B, dtype=np.int64)
            self.blank = False
        self.positions = (self.positions + T) % P
        self.chars_seen += B * T
        return Window(x=x, y=y, resets=resets)

    def _random(self) -> Window:
        """B windows at random places of the text, each read from a blank state."""
        B, T, P = self.batch, self.seq_len, self.pairs
        assert self.rng is not None
        starts = self.rng.integers(0, P - T + 1, size=B)  # (B,) a window never wraps
        idx = starts[None, :] + np.arange(T)[:, None]  # (T, B)
        self.positions = (starts + T) % P  # (where each window ended: kept, but not read on from)
        self.chars_seen += B * T
        self.blank = False
        return Window(x=self.ids[idx], y=self.ids[idx + 1], resets={0: np.arange(B, dtype=np.int64)})
