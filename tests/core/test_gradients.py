"""Finite-difference checks of every gradient each cell's model computes, in float64 on tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numeric_grad

import core.models.gru as gru_mod
import core.models.lstm as model_mod
import core.models.rnn as rnn_mod
from core.models import MODELS, ModelConfig, create_model, softmax_cross_entropy

CELLS = tuple(MODELS)

TOL = 1e-4  # entry-wise; float64 central differences reach ~1e-7 except on ~1e-7-sized entries, bugs give ~1


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """max |a-n| / max(1e-8, |a|+|n|) over all entries, except those whose analytic gradient is zero
    to rounding (a GPT's query and key when a position can see only itself): there the differences
    must be rounding noise too, under 1e-9, or the entry counts as wrong (error 1)."""
    err = np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))
    zero = np.abs(a) < 1e-14 * max(1.0, float(np.abs(a).max()))
    err[zero] = np.where(np.abs(n[zero]) < 1e-9, 0.0, 1.0)
    return float(err.max())


def make_problem(seed: int, layers: int, dropout: float, resets: bool, cell: str = "lstm"):
    rng = np.random.default_rng(seed)
    V, H, T, B = int(rng.integers(3, 7)), int(rng.integers(2, 6)), int(rng.integers(3, 7)), int(rng.integers(1, 4))
    config = ModelConfig(V, H, layers, dropout=dropout, dtype="float64", cell=cell)
    model = create_model(config, rng)
    for p in model.params.values():  # move away from the symmetric start so every path matters
        p += rng.normal(0.0, 0.5, p.shape)
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    state = tuple(tuple(rng.normal(size=(B, H)) for _ in model.state_names) for _ in range(layers))
    masks = model.dropout_masks(T, B, rng)  # fixed masks, so the loss is a function of the weights
    reset_at = {1: np.array([0]), T - 1: np.arange(B)} if resets else None

    def loss() -> float:
        logits, _, _ = model.forward(x, state, reset_at, masks)
        return softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))[0]

    logits, _, cache = model.forward(x, state, reset_at, masks)
    _, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))
    grads, dstate = model.backward(dlogits.reshape(T, B, V), cache)
    return model, state, loss, grads, dstate


def worst_parameter(model, loss, grads) -> tuple[str, float]:
    """The parameter whose analytic gradient is furthest from the finite differences."""
    assert set(grads) == set(model.params)
    errors = {name: rel_error(grads[name], numeric_grad(loss, p)) for name, p in model.params.items()}
    name = max(errors, key=errors.__getitem__)
    return name, errors[name]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("resets", [False, True])
def test_every_parameter_matches_finite_differences(cell, seed, dropout, resets):
    model, _, loss, grads, _ = make_problem(seed, layers=2, dropout=dropout, resets=resets, cell=cell)
    name, err = worst_parameter(model, loss, grads)
    assert err < TOL, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_one_layer_matches_finite_differences(cell, dropout):
    model, _, loss, grads, _ = make_problem(6, layers=1, dropout=dropout, resets=True, cell=cell)
    name, err = worst_parameter(model, loss, grads)
    assert err < TOL, f"{cell} {name}: relative error {err:.2e}"


@pytest.mark.parametrize("cell", [c for c in CELLS if MODELS[c].state_names])  # those that carry a state
@pytest.mark.parametrize(("seed", "layers", "resets"), [(3, 2, False), (4, 2, True), (7, 1, True)])
def test_initial_state_gradients_match_finite_differences(cell, seed, layers, resets):
    _, state, loss, _, dstate = make_problem(seed, layers=layers, dropout=0.0, resets=resets, cell=cell)
    for layer, (s, ds) in enumerate(zip(state, dstate, strict=True)):
        assert len(s) == len(ds)
        for name, a0, da0 in zip(MODELS[cell].state_names, s, ds, strict=True):
            assert rel_error(da0, numeric_grad(loss, a0)) < TOL, f"{cell} {name}0 of layer {layer}"


def test_a_broken_gradient_is_caught():
    """The check itself must be able to fail: perturb one analytic gradient and see it flagged."""
    model, _, loss, grads, _ = make_problem(5, layers=1, dropout=0.0, resets=False)
    bad = grads["Wh0"].copy()
    bad[0, 0] += 0.1
    assert rel_error(bad, numeric_grad(loss, model.params["Wh0"])) > 1e-3


# the real functions, which the planted versions below call before they go wrong
real_gru_derivatives = gru_mod._local_derivatives
real_lstm_derivatives = model_mod._gate_derivatives


def _gru_without_hn(A, Hprev, HN, M, S):
    """A plausible slip in the GRU's backward pass: the reset gate's derivative forgets the
    h_{t-1} Wh_n + bhn it multiplies (M_r = r (1 - r) instead of hn r (1 - r))."""
    real_gru_derivatives(A, Hprev, HN, M, S)
    H = HN.shape[-1]
    np.divide(M[..., :H], HN, out=M[..., :H])


def _rnn_sigmoid_slope(Hout, D):
    """A plausible slip in the RNN's backward pass: the derivative of tanh written as h (1 - h)."""
    np.subtract(1.0, Hout, out=D)
    D *= Hout


def _lstm_forget_slip(A, Cprev, TC, M, oD, H):
    """A plausible slip in the LSTM's backward pass: the forget gate's derivative without c_{t-1}."""
    real_lstm_derivatives(A, Cprev, TC, M, oD, H)
    np.divide(M[..., H : 2 * H], Cprev, out=M[..., H : 2 * H])


@pytest.mark.parametrize(
    ("cell", "module", "name", "planted"),
    [
        ("gru", gru_mod, "_local_derivatives", _gru_without_hn),
        ("rnn", rnn_mod, "_tanh_derivative", _rnn_sigmoid_slope),
        ("lstm", model_mod, "_gate_derivatives", _lstm_forget_slip),
    ],
)
def test_a_planted_error_in_a_backward_pass_fails_the_check(monkeypatch, cell, module, name, planted):
    """Each cell's check can fail: the same check, with a realistic bug planted in its backward pass."""
    model, _, loss, grads, _ = make_problem(0, layers=2, dropout=0.0, resets=False, cell=cell)
    assert worst_parameter(model, loss, grads)[1] < TOL  # sound before the bug is planted
    monkeypatch.setattr(module, name, planted)
    model, _, loss, grads, _ = make_problem(0, layers=2, dropout=0.0, resets=False, cell=cell)
    assert worst_parameter(model, loss, grads)[1] > 1e-2
