"""The loss curve the training thread keeps for the graph, and the message throttling contract."""

from __future__ import annotations

import numpy as np

from core import StepReport
from tui.apps.messages import Evaluated, Generated, NextChars, Progress
from tui.plain.curve import CurveFrame, LossCurve


def test_short_curves_keep_every_step():
    curve = LossCurve(points=50)
    for step in range(1, 31):
        curve.add(step, float(step), float(step) / 2)
    frame = curve.frame()
    assert list(frame.steps) == list(range(1, 31))
    assert list(frame.raw) == [float(s) for s in range(1, 31)]
    assert frame.total_steps == 30


def test_long_curves_are_bucket_means_and_stay_small():
    rng = np.random.default_rng(0)
    losses = rng.random(100_003)
    curve = LossCurve(points=100)
    for step, loss in enumerate(losses, start=1):
        curve.add(step, float(loss), 0.0)
    frame = curve.frame()
    assert len(frame.steps) <= 2 * 100 + 1
    assert frame.steps[-1] == len(losses) and frame.total_steps == len(losses)
    # every full bucket is the mean of its steps
    width = curve.bucket
    first = losses[:width].mean()
    assert np.isclose(frame.raw[0], first)
    assert frame.steps[0] == width
    # the steps covered by the frame add up to the whole run
    assert np.all(np.diff(frame.steps) > 0)


def test_history_seeds_the_curve_with_the_smoothed_loss():
    losses = [3.0, 2.0, 1.0]
    curve = LossCurve.from_history(losses, [(2, 2.5)], step=3, smoothing=0.5)
    frame = curve.frame()
    assert list(frame.steps) == [1, 2, 3]
    assert list(frame.smooth) == [3.0, 2.5, 1.75]
    assert list(frame.val_steps) == [2] and list(frame.val) == [2.5]


def test_evaluations_are_thinned_keeping_the_latest():
    curve = LossCurve(points=10)
    for step in range(1, 1001):
        curve.add_val(step, 1.0 / step)
    frame = curve.frame()
    assert len(frame.val_steps) <= 2 * 10 + 1 and frame.val_steps[-1] == 1000


def _step(n: int) -> StepReport:
    return StepReport(n, 0.0, 1.0, 1.0, 1.0, 0.01, 1.0, 1.0)


def test_high_rate_messages_replace_stale_ones_and_text_does_not():
    empty = np.zeros(0)
    frame = CurveFrame(empty, empty, empty, empty, empty, 0)
    old, new = Progress("lstm", _step(1), frame), Progress("lstm", _step(2), frame)
    assert old.can_replace(new)
    assert not Progress("gru", _step(1), frame).can_replace(new)  # a race: each model's own
    assert Evaluated("gru", None).can_replace(Evaluated("gru", None))
    assert not Evaluated("gru", None).can_replace(Evaluated("rnn", None))
    assert NextChars(None, "a", 1.0, [], []).can_replace(NextChars(None, "ab", 1.0, [], []))
    assert not old.can_replace(Evaluated.__new__(Evaluated))
    assert not Generated(1, "ab", 1.0).can_replace(Generated(1, "cd", 1.0))  # every character counts


def test_the_graph_plots_no_more_points_than_it_has_columns_of_dots():
    from tui.widgets.loss_chart import _thin

    steps = np.arange(1.0, 401.0)
    raw = np.random.default_rng(1).random(400)
    x, y = _thin(steps, raw, 150)
    assert len(x) <= 150 and len(x) == len(y)
    assert x[-1] == 400  # the latest step stays the last point
    k = 3  # ceil(400 / 150): groups of three, ending at the latest step
    assert np.isclose(y[-1], raw[-k:].mean()) and np.isclose(y[-2], raw[-2 * k : -k].mean())
    assert np.isclose(y[0], raw[: 400 - k * (len(x) - 1)].mean())  # the oldest group may be shorter
    xs, ys = _thin(steps, raw, 150, mean=False)  # a smoothed curve: the value at each group's end
    assert list(xs) == list(x) and list(ys) == list(raw[(x - 1).astype(int)])
    same = _thin(steps[:100], raw[:100], 150)  # already few enough: unchanged
    assert list(same[0]) == list(steps[:100])
    assert list(same[1]) == list(raw[:100])
