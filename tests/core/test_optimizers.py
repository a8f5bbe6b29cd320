"""The optimizers follow the textbook updates; clipping scales to the global norm."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.optim import clip_by_global_norm, make_optimizer


def _textbook(name: str, steps: list[dict[str, np.ndarray]], p0: dict[str, np.ndarray], lr: float):
    """The update rules as papers write them, in float64, one step at a time."""
    p = {k: v.astype(np.float64) for k, v in p0.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t, grads in enumerate(steps, start=1):
        for k, g in grads.items():
            g = g.astype(np.float64)
            if name == "sgd":
                p[k] -= lr * g
            elif name == "adagrad":
                v2[k] += g * g
                p[k] -= lr * g / (np.sqrt(v2[k]) + 1e-8)
            else:  # adam, with bias-corrected moments
                m[k] = 0.9 * m[k] + 0.1 * g
                v2[k] = 0.999 * v2[k] + 0.001 * g * g
                m_hat, v_hat = m[k] / (1 - 0.9**t), v2[k] / (1 - 0.999**t)
                p[k] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return p


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad"])
def test_optimizers_follow_the_textbook_update(name):
    rng = np.random.default_rng(4)
    p0 = {"W": rng.standard_normal((3, 5)), "b": rng.standard_normal(5)}
    steps = [{k: rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 2) for k, v in p0.items()} for _ in range(7)]
    params = {k: v.copy() for k, v in p0.items()}
    opt = make_optimizer(name, params, 0.01)
    for grads in steps:
        opt.step(params, {k: g.copy() for k, g in grads.items()})
    expected = _textbook(name, steps, p0, 0.01)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-10, atol=1e-12)
    assert opt.t == len(steps)


def test_clipping_scales_to_the_global_norm_and_leaves_small_gradients_alone():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # global norm 5
    assert clip_by_global_norm(grads, 10.0) == pytest.approx(5.0)
    assert grads["a"].tolist() == [3.0, 0.0]
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.8]])


def test_adamw_decays_the_named_parameters_apart_from_the_moments():
    """Loshchilov & Hutter's AdamW, as torch.optim.AdamW writes it: p -= lr wd p, then Adam's step
    (with its own beta2), for the parameters named as decayed; the others take Adam's step alone."""
    rng = np.random.default_rng(5)
    p0 = {"W": rng.standard_normal((3, 5)), "b": rng.standard_normal(5)}
    steps = [{k: rng.standard_normal(v.shape) for k, v in p0.items()} for _ in range(6)]
    params = {k: v.copy() for k, v in p0.items()}
    opt = make_optimizer("adam", params, 0.01, beta2=0.99, weight_decay=0.1, decayed=("W",))
    for grads in steps:
        opt.step(params, {k: g.copy() for k, g in grads.items()})
    p = {k: v.copy() for k, v in p0.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t, grads in enumerate(steps, start=1):
        for k, g in grads.items():
            if k == "W":
                p[k] *= 1 - 0.01 * 0.1
            m[k] = 0.9 * m[k] + 0.1 * g
            v2[k] = 0.99 * v2[k] + 0.01 * g * g
            p[k] -= 0.01 * (m[k] / (1 - 0.9**t)) / (np.sqrt(v2[k] / (1 - 0.99**t)) + 1e-8)
    for k in params:
        np.testing.assert_allclose(params[k], p[k], rtol=1e-10, atol=1e-12)
    with pytest.raises(ConfigError, match="adam"):
        make_optimizer("sgd", params, 0.01, weight_decay=0.1)
