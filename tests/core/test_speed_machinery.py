"""The engine's speed machinery must not change its results: recycled buffers, chunked gate
derivatives, and the fast paths all agree with a plain reference computation."""

from __future__ import annotations

import numpy as np
import pytest

import core.models.lstm as model_mod
import core.models.recurrent as recurrent
from core.models import CharLSTM, ModelConfig, softmax_cross_entropy


def make(seed: int = 0, V: int = 7, H: int = 5, L: int = 2, dtype: str = "float64") -> CharLSTM:
    model = CharLSTM.create(ModelConfig(V, H, L, dtype=dtype), np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 100)
    for p in model.params.values():
        p += rng.normal(0.0, 0.3, p.shape).astype(p.dtype)
    return model


def reference_forward(model: CharLSTM, x: np.ndarray, state) -> tuple[np.ndarray, list]:
    """The equations, one step and one gate at a time, in float64."""
    P = {k: v.astype(np.float64) for k, v in model.params.items()}
    H, L = model.config.hidden, model.config.layers
    T, B = x.shape
    hs = [np.array(h, np.float64) for h, _ in state]
    cs = [np.array(c, np.float64) for _, c in state]
    out = np.zeros((T, B, P["Wy"].shape[1]))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(T):
        inp = None
        for layer in range(L):
            xin = P[f"Wx{layer}"][x[t]] if layer == 0 else inp @ P[f"Wx{layer}"]
            z = xin + hs[layer] @ P[f"Wh{layer}"] + P[f"b{layer}"]
            i, f, o, g = sig(z[:, :H]), sig(z[:, H : 2 * H]), sig(z[:, 2 * H : 3 * H]), np.tanh(z[:, 3 * H :])
            cs[layer] = f * cs[layer] + i * g
            hs[layer] = o * np.tanh(cs[layer])
            inp = hs[layer]
        out[t] = inp @ P["Wy"] + P["by"]
    return out, list(zip(hs, cs, strict=True))


def grads_of(model: CharLSTM, x, y, state, resets=None):
    logits, new_state, cache = model.forward(x, state, resets)
    T, B, V = logits.shape
    _, dl = softmax_cross_entropy(logits.reshape(T * B, V), y.reshape(-1))
    grads, dstate = model.backward(dl.reshape(T, B, V), cache)
    return logits, new_state, grads, dstate


def test_forward_matches_the_equations_step_by_step():
    model = make()
    rng = np.random.default_rng(1)
    x = rng.integers(0, 7, (9, 3))
    state = tuple((rng.normal(size=(3, 5)), rng.normal(size=(3, 5))) for _ in range(2))
    logits, new_state, _ = model.forward(x, state)
    ref, ref_state = reference_forward(model, x, state)
    np.testing.assert_allclose(logits, ref, rtol=1e-10, atol=1e-12)
    for (h, c), (rh, rc) in zip(new_state, ref_state, strict=True):
        np.testing.assert_allclose(h, rh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c, rc, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_chunked_gate_derivatives_give_the_same_gradients(monkeypatch, chunk):
    """Chunks of 1, 3 and 7 steps (not dividing T=11) against one chunk for the whole window."""
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 7, (11, 2)), rng.integers(0, 7, (11, 2))
    resets = {4: np.array([1]), 9: np.array([0, 1])}
    whole = make()
    state = whole.initial_state(2)
    _, _, g_whole, d_whole = grads_of(whole, x, y, state, resets)
    B, H = 2, 5
    monkeypatch.setattr(model_mod, "CHUNK_FLOATS", chunk * B * 4 * H)
    chunked = make()
    _, _, g_chunk, d_chunk = grads_of(chunked, x, y, state, resets)
    for k in g_whole:
        np.testing.assert_allclose(g_chunk[k], g_whole[k], rtol=1e-12, atol=1e-14, err_msg=k)
    for (a, b), (c, d) in zip(d_whole, d_chunk, strict=True):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(d, b, rtol=1e-12, atol=1e-14)


def test_results_held_by_the_caller_survive_later_steps():
    """Buffers are recycled between steps; what a caller was handed must not change under it."""
    model = make(dtype="float32")
    rng = np.random.default_rng(3)
    x1, y1 = rng.integers(0, 7, (6, 4)), rng.integers(0, 7, (6, 4))
    logits, state, grads, dstate = grads_of(model, x1, y1, model.initial_state(4))
    kept = (logits.copy(), [(h.copy(), c.copy()) for h, c in state], {k: v.copy() for k, v in grads.items()})
    kept_d = [(h.copy(), c.copy()) for h, c in dstate]
    for _ in range(3):  # same shapes: these reuse the recycled arrays
        x2, y2 = rng.integers(0, 7, (6, 4)), rng.integers(0, 7, (6, 4))
        grads_of(model, x2, y2, state)
        model.forward(rng.integers(0, 7, (20, 1)), model.initial_state(1))  # an evaluation-shaped pass
    np.testing.assert_array_equal(logits, kept[0])
    for (h, c), (kh, kc) in zip(state, kept[1], strict=True):
        np.testing.assert_array_equal(h, kh)
        np.testing.assert_array_equal(c, kc)
    for k, v in grads.items():
        np.testing.assert_array_equal(v, kept[2][k])
    for (h, c), (kh, kc) in zip(dstate, kept_d, strict=True):
        np.testing.assert_array_equal(h, kh)
        np.testing.assert_array_equal(c, kc)


def test_recycled_buffers_give_the_same_gradients_as_a_fresh_model():
    rng = np.random.default_rng(4)
    x, y = rng.integers(0, 7, (8, 3)), rng.integers(0, 7, (8, 3))
    warm = make()
    for _ in range(2):  # fill the spares with stale values
        grads_of(warm, rng.integers(0, 7, (8, 3)), rng.integers(0, 7, (8, 3)), warm.initial_state(3))
    fresh = make()
    _, _, g_warm, _ = grads_of(warm, x, y, warm.initial_state(3))
    _, _, g_fresh, _ = grads_of(fresh, x, y, fresh.initial_state(3))
    for k in g_fresh:
        np.testing.assert_array_equal(g_warm[k], g_fresh[k], err_msg=k)


def test_a_cache_is_backpropagated_once():
    model = make()
    x = np.zeros((3, 1), np.int64)
    logits, _, cache = model.forward(x, model.initial_state(1))
    model.backward(np.ones_like(logits), cache)
    with pytest.raises(ValueError, match="already backpropagated"):
        model.backward(np.ones_like(logits), cache)


def test_prime_reads_a_seed_exactly_as_steps_do():
    """Stepper.prime runs the seed as one window; it must agree with feeding it one step at a time."""
    model = make(dtype="float64")
    stepper = model.stepper()
    ids = np.random.default_rng(5).integers(0, 7, 23)
    logits, state = stepper.prime(ids)
    s = stepper.initial_state(1)
    for i in ids:
        out, s = stepper.step(np.array([i]), s)
    np.testing.assert_allclose(logits, out[0], rtol=1e-10, atol=1e-12)
    for (h, c), (rh, rc) in zip(state, s, strict=True):
        np.testing.assert_allclose(h, rh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c, rc, rtol=1e-10, atol=1e-12)
    empty_logits, empty_state = stepper.prime(ids[:0])
    assert empty_logits is None and all(not h.any() and not c.any() for h, c in empty_state)
    model.params["Wy"][...] = 0.0  # the stepper keeps its own copy of the weights
    np.testing.assert_allclose(stepper.prime(ids)[0], logits)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_a_stream_reads_characters_exactly_as_the_window_does(layers):
    """Stream keeps one stream's state in reused buffers (and layer outputs inside each other's
    input vectors); every character's logits must still be those of the batched forward pass."""
    rng = np.random.default_rng(layers)
    model = CharLSTM.create(ModelConfig(vocab_size=9, hidden=5, layers=layers, dtype="float64"), rng)
    ids = rng.integers(0, 9, 30)
    logits, final, _ = model.forward(ids.reshape(-1, 1), model.initial_state(1))
    stepper = model.stepper()
    _, state = stepper.prime(ids[:4])  # start mid-text: the stream must take over a given state
    stream = stepper.stream(state)
    for t in range(4, 30):
        out = stream.feed(int(ids[t]))
        np.testing.assert_allclose(out, logits[t, 0], rtol=1e-10, atol=1e-12)
    for (h, c), (rh, rc) in zip(stream.state(), final, strict=True):
        np.testing.assert_allclose(h, rh, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(c, rc, rtol=1e-10, atol=1e-12)
    fresh = stepper.stream()  # from the zero state
    np.testing.assert_allclose(fresh.feed(int(ids[0])), logits[0, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("rows", "n"), [(7, 40), (128, 300), (129, 300), (3000, 500), (1, 5)])
def test_scatter_rows_sums_each_position_into_its_row(rows, n):
    """The gradient of the layer-0 row lookup: every dz row lands in its id's row, absent ids stay 0."""
    rng = np.random.default_rng(rows)
    ids = rng.integers(0, rows, n).astype(np.uint16)
    dz = rng.standard_normal((n, 8)).astype(np.float32)
    expected = np.zeros((rows, 8), np.float64)
    np.add.at(expected, ids, dz.astype(np.float64))
    got = recurrent.scatter_rows(ids, dz, rows)
    assert got.shape == (rows, 8) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
