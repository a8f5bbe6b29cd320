"""Looking inside the model: activations match the equations; a planted unit is found."""

from __future__ import annotations

import numpy as np
import pytest

from core import CharLSTM, ModelConfig, corpus, create_model
from core.inside import (
    FEATURES,
    activations,
    attention,
    default_quantity,
    feature,
    has_attention,
    quantities,
    rank_units,
)
from core.models import MODELS


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_activations_match_a_manual_forward_pass():
    rng = np.random.default_rng(0)
    V, H = 6, 5
    model = CharLSTM.create(ModelConfig(V, H, layers=2, dtype="float64"), rng)
    ids = rng.integers(0, V, 12)
    acts = activations(model, ids, "x" * 12)
    assert set(acts.values) == set(quantities("lstm"))
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


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_each_cell_shows_its_own_quantities(cell):
    """GRU: reset, update, candidate, hidden; RNN: hidden. Values follow the cell's equations and
    the hidden states are the ones the model's own one-step inference reaches."""
    rng = np.random.default_rng(2)
    V, H, L = 6, 5, 2
    model = create_model(ModelConfig(V, H, layers=L, dtype="float64", cell=cell), rng)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape)
    ids = rng.integers(0, V, 12)
    acts = activations(model, ids, "x" * 12)
    assert tuple(acts.values) == quantities(cell)
    assert quantities(cell) == {"gru": ("reset", "update", "candidate", "hidden"), "rnn": ("hidden",)}[cell]
    assert default_quantity(cell) == "hidden" and default_quantity("lstm") == "cell"
    stepper = model.stepper()
    state = stepper.initial_state(1)
    P = model.params
    for t, ch in enumerate(ids):
        prev = [s[0][0] for s in state]
        _, state = stepper.step(np.array([ch]), state)
        x = np.eye(V)[ch]
        for layer in range(L):
            h = acts.values["hidden"][layer, t]
            np.testing.assert_allclose(h, state[layer][0][0], rtol=1e-10)
            if cell == "gru":
                r, z, n = (acts.values[q][layer, t] for q in ("reset", "update", "candidate"))
                Wx, Wh, b = P[f"Wx{layer}"], P[f"Wh{layer}"], P[f"b{layer}"]
                np.testing.assert_allclose(r, sigmoid(x @ Wx[:, :H] + prev[layer] @ Wh[:, :H] + b[:H]), rtol=1e-12)
                zz = sigmoid(x @ Wx[:, H : 2 * H] + prev[layer] @ Wh[:, H : 2 * H] + b[H : 2 * H])
                np.testing.assert_allclose(z, zz, rtol=1e-12)
                hn = prev[layer] @ Wh[:, 2 * H :] + P[f"bhn{layer}"]
                np.testing.assert_allclose(n, np.tanh(x @ Wx[:, 2 * H :] + b[2 * H :] + r * hn), rtol=1e-12)
                np.testing.assert_allclose(h, (1 - z) * n + z * prev[layer], rtol=1e-12)
            x = h


def test_attention_at_every_position_is_read_in_its_generation_context():
    """Each position's row is its context (context_length characters ending there, as generation
    reads them) read afresh: past the block the context restarts, as the key/value cache does."""
    from core.models.gpt import context_length

    rng = np.random.default_rng(5)
    config = ModelConfig(12, 16, layers=2, cell="gpt", heads=2, block=8, dtype="float64")
    model = create_model(config, rng)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape)
    ids = rng.integers(0, 12, 30)
    att = attention(model, ids, "x" * 30)
    assert (att.layers, att.heads, len(att)) == (2, 2, 30)
    for p in range(30):
        c = context_length(p, 8)
        assert att.context(p) == p - c + 1
        alone = model.attention(ids[p - c + 1 : p + 1])[:, :, -1]  # (L, heads, c) read afresh
        for layer in range(2):
            for head in range(2):
                np.testing.assert_allclose(att.row(layer, head, p), alone[layer, head], rtol=0, atol=1e-12)
    w = att.row(1, 0, 29)
    top = att.top(1, 0, 29, 3)
    assert [wt for _, wt in top] == sorted(w, reverse=True)[:3]
    assert all(w[i - att.context(29)] == wt for i, wt in top)


def test_ties_in_the_top_list_go_to_the_nearer_character():
    rng = np.random.default_rng(6)
    model = create_model(ModelConfig(5, 8, cell="gpt", heads=1, block=8), rng)
    for name in model.params:
        if name.startswith("Wqkv"):
            model.params[name][:] = 0  # every score 0: each position spreads evenly
    att = attention(model, np.array([1, 2, 3, 4]))
    assert att.top(0, 0, 3, 4) == [(3, 0.25), (2, 0.25), (1, 0.25), (0, 0.25)]


@pytest.mark.parametrize("cell", MODELS)
def test_only_models_with_heads_show_attention(cell):
    model = create_model(ModelConfig(5, 8, cell=cell, heads=2, block=8), np.random.default_rng(0))
    assert has_attention(cell) == (cell == "gpt")
    if not has_attention(cell):
        with pytest.raises(ValueError, match="no attention heads"):
            attention(model, np.array([1, 2]))
