"""The GRU and the vanilla RNN beside the LSTM: each cell's forward pass against its equations
written out plainly (and against PyTorch's nn.GRU / nn.RNN when torch is installed), one-step
inference against the batched window, recycled buffers, and the per-cell model layout."""

from __future__ import annotations

import numpy as np
import pytest

import core.models.gru as gru_mod
from core import MODELS, CharGRU, CharLSTM, CharRNN, ConfigError, ModelConfig, TrainConfig, create_model
from core.models import model_class, softmax_cross_entropy

RECURRENT = ("lstm", "gru", "rnn")  # the models with fused gates (the GPT's layout: tests/core/test_gpt.py)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def make(cell: str, seed: int = 0, V: int = 7, H: int = 5, L: int = 2, dtype: str = "float64"):
    model = create_model(ModelConfig(V, H, L, dtype=dtype, cell=cell), np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 100)
    for p in model.params.values():  # away from zero biases, so every term matters
        p += rng.normal(0.0, 0.3, p.shape).astype(p.dtype)
    return model


def random_state(cell: str, L: int, B: int, H: int, rng):
    names = model_class(cell).state_names
    return tuple(tuple(rng.normal(size=(B, H)) for _ in names) for _ in range(L))


def reference_gru(model, x, state):
    """nn.GRU's equations, one step and one gate at a time, in float64."""
    P = {k: v.astype(np.float64) for k, v in model.params.items()}
    H, L = model.config.hidden, model.config.layers
    hs = [np.array(s[0], np.float64) for s in state]
    out = np.zeros((*x.shape, P["Wy"].shape[1]))
    for t in range(x.shape[0]):
        inp = np.eye(P["Wx0"].shape[0])[x[t]]  # the one-hot input, multiplied out in full
        for layer in range(L):
            Wx, Wh, b, bhn = P[f"Wx{layer}"], P[f"Wh{layer}"], P[f"b{layer}"], P[f"bhn{layer}"]
            h = hs[layer]
            r = sigmoid(inp @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])
            z = sigmoid(inp @ Wx[:, H : 2 * H] + h @ Wh[:, H : 2 * H] + b[H : 2 * H])
            n = np.tanh(inp @ Wx[:, 2 * H :] + b[2 * H :] + r * (h @ Wh[:, 2 * H :] + bhn))
            hs[layer] = (1 - z) * n + z * h
            inp = hs[layer]
        out[t] = inp @ P["Wy"] + P["by"]
    return out, [(h,) for h in hs]


def reference_rnn(model, x, state):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b), one step at a time, in float64."""
    P = {k: v.astype(np.float64) for k, v in model.params.items()}
    L = model.config.layers
    hs = [np.array(s[0], np.float64) for s in state]
    out = np.zeros((*x.shape, P["Wy"].shape[1]))
    for t in range(x.shape[0]):
        inp = np.eye(P["Wx0"].shape[0])[x[t]]
        for layer in range(L):
            hs[layer] = np.tanh(inp @ P[f"Wx{layer}"] + hs[layer] @ P[f"Wh{layer}"] + P[f"b{layer}"])
            inp = hs[layer]
        out[t] = inp @ P["Wy"] + P["by"]
    return out, [(h,) for h in hs]


@pytest.mark.parametrize(("cell", "reference"), [("gru", reference_gru), ("rnn", reference_rnn)])
@pytest.mark.parametrize("layers", [1, 2])
def test_forward_matches_the_equations_step_by_step(cell, reference, layers):
    model = make(cell, L=layers)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 7, (9, 3))
    state = random_state(cell, layers, 3, 5, rng)
    logits, new_state, _ = model.forward(x, state)
    ref, ref_state = reference(model, x, state)
    np.testing.assert_allclose(logits, ref, rtol=1e-10, atol=1e-12)
    for (h,), (rh,) in zip(new_state, ref_state, strict=True):
        np.testing.assert_allclose(h, rh, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_resets_start_a_stream_afresh_mid_window(cell):
    """A stream reset before step t reads the rest of the window exactly as a fresh stream would."""
    model = make(cell)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 7, (8, 3))
    state = random_state(cell, 2, 3, 5, rng)
    logits, _, _ = model.forward(x, state, resets={5: np.array([1])})
    fresh, _, _ = model.forward(x[5:, 1:2], model.initial_state(1))
    np.testing.assert_allclose(logits[5:, 1], fresh[:, 0], rtol=1e-10, atol=1e-12)
    whole, _, _ = model.forward(x, state)
    np.testing.assert_allclose(logits[:, [0, 2]], whole[:, [0, 2]], rtol=1e-12)  # the others go on
    np.testing.assert_allclose(logits[:5, 1], whole[:5, 1], rtol=1e-12)


@pytest.mark.parametrize("cell", tuple(MODELS))
def test_step_by_step_equals_the_batched_window(cell):
    model = make(cell)
    x = np.random.default_rng(1).integers(0, 7, (9, 3))  # (T, B)
    logits, final, _ = model.forward(x, model.initial_state(3))
    stepper = model.stepper()
    state = stepper.initial_state(3)
    for t in range(9):
        out, state = stepper.step(x[t], state)
        np.testing.assert_allclose(out, logits[t], rtol=1e-10, atol=1e-12)
    if not model.state_names:
        return  # nothing carried: generation's state (a GPT's key/value cache) is its stepper's own
    for s1, s2 in zip(final, state, strict=True):
        for a, b in zip(s1, s2, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("cell", tuple(MODELS))
def test_prime_reads_a_seed_exactly_as_steps_do(cell):
    model = make(cell)
    stepper = model.stepper()
    ids = np.random.default_rng(5).integers(0, 7, 23)
    logits, state = stepper.prime(ids)
    s = stepper.initial_state(1)
    for i in ids:
        out, s = stepper.step(np.array([i]), s)
    np.testing.assert_allclose(logits, out[0], rtol=1e-10, atol=1e-12)
    for s1, s2 in zip(state, s, strict=True) if model.state_names else ():
        for a, b in zip(s1, s2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    empty_logits, empty_state = stepper.prime(ids[:0])
    assert empty_logits is None
    assert not model.state_names or all(not a.any() for s in empty_state for a in s)
    for p in model.params.values():
        p[...] = 0.0  # the stepper keeps its own copy of the weights
    np.testing.assert_allclose(stepper.prime(ids)[0], logits)


@pytest.mark.parametrize("cell", tuple(MODELS))
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_a_stream_reads_characters_exactly_as_the_window_does(cell, layers):
    model = make(cell, seed=layers, V=9, L=layers)
    ids = np.random.default_rng(layers).integers(0, 9, 30)
    logits, final, _ = model.forward(ids.reshape(-1, 1), model.initial_state(1))
    stepper = model.stepper()
    _, state = stepper.prime(ids[:4])  # start mid-text: the stream must take over a given state
    stream = stepper.stream(state)
    for t in range(4, 30):
        np.testing.assert_allclose(stream.feed(int(ids[t])), logits[t, 0], rtol=1e-10, atol=1e-12)
    for s1, s2 in zip(stream.state(), final, strict=True) if model.state_names else ():
        assert len(s1) == len(s2) == len(model.state_names)
        for a, b in zip(s1, s2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    fresh = stepper.stream()  # from the zero state
    np.testing.assert_allclose(fresh.feed(int(ids[0])), logits[0, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", tuple(MODELS))
def test_recycled_buffers_give_the_same_gradients_and_leave_results_alone(cell):
    """Buffers are recycled between steps: gradients must not depend on stale contents, and
    what a caller was handed must not change under it."""
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 7, (8, 3)), rng.integers(0, 7, (8, 3))

    def grads_of(model):
        logits, state, cache = model.forward(x, model.initial_state(3), {3: np.array([2])})
        _, dl = softmax_cross_entropy(logits.reshape(24, 7), y.reshape(-1))
        grads, dstate = model.backward(dl.reshape(8, 3, 7), cache)
        return logits, state, grads, dstate

    warm = make(cell)
    first = grads_of(warm)
    kept = [np.copy(first[0])] + [a.copy() for s in first[1] for a in s] + [v.copy() for v in first[2].values()]
    for _ in range(2):
        grads_of(warm)
        warm.forward(rng.integers(0, 7, (20, 1)), warm.initial_state(1))  # an evaluation-shaped pass
    again = grads_of(warm)
    fresh = grads_of(make(cell))
    for k in fresh[2]:
        np.testing.assert_array_equal(again[2][k], fresh[2][k], err_msg=k)
    now = [first[0]] + [a for s in first[1] for a in s] + list(first[2].values())
    for a, b in zip(now, kept, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="already backpropagated"):
        logits, _, cache = warm.forward(x, warm.initial_state(3))
        warm.backward(np.ones_like(logits), cache)
        warm.backward(np.ones_like(logits), cache)


@pytest.mark.parametrize("chunk", [1, 3])
def test_chunked_gru_derivatives_give_the_same_gradients(monkeypatch, chunk):
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 7, (11, 2)), rng.integers(0, 7, (11, 2))
    resets = {4: np.array([1]), 9: np.array([0, 1])}

    def grads_of():
        model = make("gru")
        logits, _, cache = model.forward(x, model.initial_state(2), resets)
        _, dl = softmax_cross_entropy(logits.reshape(22, 7), y.reshape(-1))
        return model.backward(dl.reshape(11, 2, 7), cache)

    g_whole, d_whole = grads_of()
    monkeypatch.setattr(gru_mod, "CHUNK_FLOATS", chunk * 2 * 3 * 5)
    g_chunk, d_chunk = grads_of()
    for k in g_whole:
        np.testing.assert_allclose(g_chunk[k], g_whole[k], rtol=1e-12, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(d_chunk[0][0], d_whole[0][0], rtol=1e-12, atol=1e-14)


def test_each_cell_has_its_own_layout():
    V, H = 5, 4
    shapes = {cell: model_class(cell).param_shapes(ModelConfig(V, H, layers=2, cell=cell)) for cell in RECURRENT}
    assert shapes["lstm"]["Wh1"] == (H, 4 * H) and "bhn0" not in shapes["lstm"]
    assert shapes["gru"]["Wx0"] == (V, 3 * H) and shapes["gru"]["Wh1"] == (H, 3 * H)
    assert shapes["gru"]["b1"] == (3 * H,) and shapes["gru"]["bhn1"] == (H,)
    assert shapes["rnn"]["Wx0"] == (V, H) and shapes["rnn"]["Wh0"] == (H, H) and shapes["rnn"]["b0"] == (H,)
    assert [model_class(c) for c in RECURRENT] == [CharLSTM, CharGRU, CharRNN]
    for cell in RECURRENT:
        model = create_model(ModelConfig(V, H, cell=cell), np.random.default_rng(0))
        assert model.config.cell == cell and model.params["Wh0"].dtype == np.float32
        assert isinstance(model.copy(), type(model))
        k = 1 / np.sqrt(H)
        assert all(np.abs(model.params[n]).max() <= k for n in ("Wx0", "Wh0", "Wy"))
        assert not model.params["by"].any()
        state = model.initial_state(3)
        assert [a.shape for a in state[0]] == [(3, H)] * len(model.state_names)
    assert not create_model(ModelConfig(V, H, cell="gru"), np.random.default_rng(0)).params["b0"].any()
    with pytest.raises(ConfigError, match="unknown cell"):
        create_model(ModelConfig(V, H, cell="transformer"), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown cell"):
        TrainConfig(cell="transformer")
    with pytest.raises(ConfigError, match="cannot hold"):
        CharGRU(ModelConfig(V, H), {})


# ------------------------------------------------------------------ against PyTorch
@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_the_cells_are_pytorchs(cell):
    """Our parameters copied into nn.GRU / nn.RNN (by the mapping the docstrings state) give the
    same logits: the variant really is PyTorch's."""
    torch = pytest.importorskip("torch")
    V, H, L = 6, 5, 2
    model = make(cell, V=V, H=H, L=L)
    net = {"gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](V, H, L).double()
    P = model.params
    with torch.no_grad():
        for layer in range(L):
            getattr(net, f"weight_ih_l{layer}").copy_(torch.from_numpy(P[f"Wx{layer}"].T.copy()))
            getattr(net, f"weight_hh_l{layer}").copy_(torch.from_numpy(P[f"Wh{layer}"].T.copy()))
            getattr(net, f"bias_ih_l{layer}").copy_(torch.from_numpy(P[f"b{layer}"]))
            bias_hh = np.zeros(3 * H if cell == "gru" else H)
            if cell == "gru":
                bias_hh[2 * H :] = P[f"bhn{layer}"]
            getattr(net, f"bias_hh_l{layer}").copy_(torch.from_numpy(bias_hh))
    x = np.random.default_rng(3).integers(0, V, (7, 2))
    h0 = np.random.default_rng(4).normal(size=(L, 2, H))
    logits, state, _ = model.forward(x, tuple((h0[layer],) for layer in range(L)))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(x), V).double()
    out, hn = net(onehot, torch.from_numpy(h0))
    ref = out.detach().numpy() @ P["Wy"] + P["by"]
    np.testing.assert_allclose(logits, ref, rtol=1e-10, atol=1e-12)
    for layer in range(L):
        np.testing.assert_allclose(state[layer][0], hn[layer].detach().numpy(), rtol=1e-10, atol=1e-12)
