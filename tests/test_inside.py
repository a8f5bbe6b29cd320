"""Looking inside the model: activations match the equations; a planted unit is found."""

from __future__ import annotations

import numpy as np
import pytest

from core import CharLSTM, ModelConfig, corpus
from core.inside import FEATURES, QUANTITIES, activations, feature, rank_units


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_activations_match_a_manual_forward_pass():
    rng = np.random.default_rng(0)
    V, H = 6, 5
    model = CharLSTM.create(ModelConfig(V, H, layers=2, dtype="float64"), rng)
    ids = rng.integers(0, V, 12)
    acts = activations(model, ids, "x" * 12)
    assert set(acts.values) == set(QUANTITIES)
    assert acts.values["cell"].shape == (2, 12, H)
    P = model.params
    h = [np.zeros(H), np.zeros(H)]
    c = [np.zeros(H), np.zeros(H)]
    for t, ch in enumerate(ids):
        x = np.eye(V)[ch]  # the one-hot input, multiplied out in full
        for layer in range(2):
            z = x @ P[f"Wx{layer}"] + h[layer] @ P[f"Wh{layer}"] + P[f"b{layer}"]
            i, f, o, g = sigmoid(z[:H]), sigmoid(z[H : 2 * H]), sigmoid(z[2 * H : 3 * H]), np.tanh(z[3 * H :])
            c[layer] = f * c[layer] + i * g
            h[layer] = o * np.tanh(c[layer])
            for name, v in (("input", i), ("forget", f), ("output", o), ("candidate", g)):
                np.testing.assert_allclose(acts.unit(name, layer, 0), acts.values[name][layer, :, 0])
                np.testing.assert_allclose(acts.values[name][layer, t], v, rtol=1e-12)
            np.testing.assert_allclose(acts.values["cell"][layer, t], c[layer], rtol=1e-12)
            np.testing.assert_allclose(acts.values["hidden"][layer, t], h[layer], rtol=1e-12)
            x = h[layer]
    # The hidden state of the top layer is what the model's own forward pass produces.
    _, state, _ = model.forward(ids[:, None], model.initial_state(1))
    np.testing.assert_allclose(state[1][0][0], h[1], rtol=1e-10)


def test_a_planted_quote_unit_is_ranked_first():
    """Build a model whose hidden unit 3 of layer 0 is driven by a quote-tracking cell."""
    text = 'he said "to be" and then "not to be" was "the question" so'
    c = corpus.from_text(text)
    V, H = c.vocab.size, 6
    model = CharLSTM.create(ModelConfig(V, H, dtype="float64"), np.random.default_rng(1))
    P = model.params
    for k in P:
        P[k] *= 0.01  # quiet everything else
    q = c.vocab.index['"']
    u = 3
    # Unit u: input gate open only on a quote, forget gate always open, output open,
    # candidate +1 on a quote when the cell is low, -1 when it is high (a flip-flop).
    P["b0"][u] = -8.0  # input gate shut...
    P["Wx0"][q, u] = 16.0  # ...except on a quote
    P["b0"][H + u] = 8.0  # forget gate: keep
    P["b0"][2 * H + u] = 8.0  # output gate: show
    P["Wx0"][q, 3 * H + u] = 3.0  # candidate pushes up on a quote...
    P["Wh0"][u, 3 * H + u] = -8.0  # ...and down when the unit is already on
    acts = activations(model, c.ids, text)
    inside = feature("inside quotes", text)
    ranked = rank_units(acts, "hidden", inside, top=3)
    assert (ranked[0].layer, ranked[0].unit) == (0, u)
    assert ranked[0].r > 0.9 and abs(ranked[1].r) < ranked[0].r


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_every_feature_has_one_value_per_character(name):
    text = 'a "quoted (bracketed) word"\nnext line'
    v = feature(name, text)
    assert v.shape == (len(text),) and np.all(np.isfinite(v))


def test_features_mean_what_they_say():
    assert feature("inside quotes", 'a"bc"d').tolist() == [0, 1, 1, 1, 0, 0]
    assert feature("position in line", "ab\ncd").tolist() == [0, 1, 2, 0, 1]
    assert feature("after a space", "a b").tolist() == [0, 1, 0]
    assert feature("vowel", "bad").tolist() == [0, 1, 0]
