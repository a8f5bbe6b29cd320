"""Finite-difference checks of every gradient the model computes, in float64 on tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numeric_grad

from core.model import CharLSTM, ModelConfig, softmax_cross_entropy

TOL = 1e-4  # entry-wise; float64 central differences reach ~1e-7 except on ~1e-7-sized entries, bugs give ~1


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """max |a-n| / max(1e-8, |a|+|n|) over all entries."""
    return float(np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))))


def make_problem(seed: int, layers: int, dropout: float, resets: bool):
    rng = np.random.default_rng(seed)
    V, H, T, B = int(rng.integers(3, 7)), int(rng.integers(2, 6)), int(rng.integers(3, 7)), int(rng.integers(1, 4))
    model = CharLSTM.create(ModelConfig(V, H, layers, dropout=dropout, dtype="float64"), rng)
    for p in model.params.values():  # move away from the symmetric start so every path matters
        p += rng.normal(0.0, 0.5, p.shape)
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    state = tuple((rng.normal(size=(B, H)), rng.normal(size=(B, H))) for _ in range(layers))
    masks = model.dropout_masks(T, B, rng)  # fixed masks, so the loss is a function of the weights
    reset_at = {1: np.array([0]), T - 1: np.arange(B)} if resets else None

    def loss() -> float:
        logits, _, _ = model.forward(x, state, reset_at, masks)
        return softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))[0]

    logits, _, cache = model.forward(x, state, reset_at, masks)
    _, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))
    grads, dstate = model.backward(dlogits.reshape(T, B, V), cache)
    return model, state, loss, grads, dstate


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("resets", [False, True])
def test_every_parameter_matches_finite_differences(seed, dropout, resets):
    model, _, loss, grads, _ = make_problem(seed, layers=2, dropout=dropout, resets=resets)
    assert set(grads) == set(model.params)
    for name, p in model.params.items():
        err = rel_error(grads[name], numeric_grad(loss, p))
        assert err < TOL, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("seed", [3, 4])
def test_initial_state_gradients_match_finite_differences(seed):
    _, state, loss, _, dstate = make_problem(seed, layers=2, dropout=0.0, resets=False)
    for layer, ((h0, c0), (dh0, dc0)) in enumerate(zip(state, dstate, strict=True)):
        assert rel_error(dh0, numeric_grad(loss, h0)) < TOL, f"h0 of layer {layer}"
        assert rel_error(dc0, numeric_grad(loss, c0)) < TOL, f"c0 of layer {layer}"


def test_a_broken_gradient_is_caught():
    """The check itself must be able to fail: perturb one analytic gradient and see it flagged."""
    model, _, loss, grads, _ = make_problem(5, layers=1, dropout=0.0, resets=False)
    bad = grads["Wh0"].copy()
    bad[0, 0] += 0.1
    assert rel_error(bad, numeric_grad(loss, model.params["Wh0"])) > 1e-3
