"""The loss curve the screens draw: training loss per step and the evaluations, kept small.

No Textual here: the training worker builds frames in its thread, and `lstm-tui watch` builds them
from a checkpoint's history; the loss chart (tui/widgets/loss_chart.py) draws them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class CurveFrame:
    """The loss history, downsampled to a few hundred points, ready to plot."""

    steps: NDArray[np.float64]  # (n,) last step of each bucket
    raw: NDArray[np.float64]  # (n,) mean training loss over each bucket, nats/char
    smooth: NDArray[np.float64]  # (n,) smoothed training loss at the end of each bucket
    val_steps: NDArray[np.float64]  # (m,) steps of the evaluations
    val: NDArray[np.float64]  # (m,) evaluation losses
    total_steps: int  # steps taken so far (the x extent)

    @property
    def empty(self) -> bool:
        return len(self.steps) == 0 and len(self.val_steps) == 0


class LossCurve:
    """Training loss per step, kept as at most `2 * points` bucket means (buckets double as it grows).

    Adding a step is O(1); a frame for the plot is a few hundred points however long the run.
    """

    def __init__(self, points: int = 200) -> None:
        self.points = points
        self.bucket = 1  # steps per bucket
        self._steps: list[float] = []
        self._raw: list[float] = []
        self._smooth: list[float] = []
        self._sum = 0.0
        self._n = 0
        self._last_step = 0
        self._last_smooth = float("nan")
        self._val: list[tuple[int, float]] = []

    @classmethod
    def from_history(
        cls, losses: list[float], val: list[tuple[int, float]], step: int, smoothing: float, points: int = 200
    ) -> LossCurve:
        """A curve pre-filled with a resumed run's history (`losses` end at step `step`)."""
        curve = cls(points)
        first = step - len(losses) + 1
        smooth = float("nan")
        for i, loss in enumerate(losses):
            smooth = loss if i == 0 else smoothing * smooth + (1 - smoothing) * loss
            curve.add(first + i, loss, smooth)
        for s, v in val:
            curve.add_val(s, v)
        return curve

    def add(self, step: int, loss: float, smooth: float) -> None:
        """Record one step's loss and smoothed loss."""
        self._sum += loss
        self._n += 1
        self._last_step, self._last_smooth = step, smooth
        if self._n < self.bucket:
            return
        self._steps.append(step)
        self._raw.append(self._sum / self._n)
        self._smooth.append(smooth)
        self._sum, self._n = 0.0, 0
        if len(self._steps) >= 2 * self.points:  # merge neighbours: half as many, twice as wide
            self._steps = self._steps[1::2]
            self._raw = [(a + b) / 2 for a, b in zip(self._raw[0::2], self._raw[1::2], strict=True)]
            self._smooth = self._smooth[1::2]
            self.bucket *= 2

    def add_val(self, step: int, loss: float) -> None:
        """Record one evaluation."""
        self._val.append((step, loss))

    def frame(self) -> CurveFrame:
        """A copy of the curve (the unfinished bucket included) and at most ~`2 * points` evaluations."""
        steps, raw, smooth = list(self._steps), list(self._raw), list(self._smooth)
        if self._n:
            steps.append(self._last_step)
            raw.append(self._sum / self._n)
            smooth.append(self._last_smooth)
        val = self._val
        stride = max(1, len(val) // (2 * self.points))
        if stride > 1:
            val = val[::-1][::stride][::-1]  # thin, keeping the latest
        return CurveFrame(
            steps=np.asarray(steps, dtype=np.float64),
            raw=np.asarray(raw, dtype=np.float64),
            smooth=np.asarray(smooth, dtype=np.float64),
            val_steps=np.asarray([s for s, _ in val], dtype=np.float64),
            val=np.asarray([v for _, v in val], dtype=np.float64),
            total_steps=self._last_step if self._last_step else (val[-1][0] if val else 0),
        )
