"""The NumPy GPT (core/models/gpt.py) against finite differences and against itself: its GELU
against the normal distribution, every parameter's gradient, the key/value cache against the full
forward pass, the context rule that generation and evaluation share. Its agreement with PyTorch
(nanoGPT's model) is in tests/tui/pytorch/test_gpt_torch.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from core.errors import ConfigError
from core.models import ModelConfig, softmax_cross_entropy
from core.models.gpt import (
    CharGPT,
    _attention_probs,
    context_length,
    context_windows,
    gelu,
    gelu_backward,
    normal_cdf_exact,
    normal_cdf_fast,
)

TOL = 1e-4  # entry-wise against central differences, as the recurrent models' checks


def gpt_config(vocab_size: int, **kw) -> ModelConfig:
    """A GPT's configuration (ModelConfig with cell "gpt")."""
    return ModelConfig(vocab_size, cell="gpt", **kw)


def rel_error(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    """|a-n| / max(1e-8, |a|+|n|), entry-wise."""
    return np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))


def perturbed(config: ModelConfig, seed: int) -> CharGPT:
    """A model moved away from nanoGPT's start (gains 1, biases 0) so that every path matters."""
    rng = np.random.default_rng(seed)
    model = CharGPT.create(config, rng)
    for p in model.params.values():
        p += rng.normal(0.0, 0.5 if config.hidden <= 16 else 0.05, p.shape).astype(p.dtype)
    return model


def Phi_reference(xs: np.ndarray) -> np.ndarray:
    """Phi to 40 digits (mpmath, which comes with PyTorch through sympy; skipped without it)."""
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        return np.array([float(mp.ncdf(mp.mpf(float(v)))) for v in xs])


# ---------------------------------------------------------------------------------- GELU
def test_exact_cdf_is_float64_precise():
    xs = np.concatenate([np.linspace(-40, 40, 16001), np.linspace(-2.1, 2.1, 4001), [0.0, -0.0, 1e-300, -1e-300]])
    ours, ref = normal_cdf_exact(xs), Phi_reference(xs)
    assert np.max(np.abs(ours - ref)) <= 2.3e-16  # two units in the last place of Phi near 1
    # the left tail keeps its relative precision (no 1 + erf cancellation), down to the smallest
    # normal numbers; the rounding of x^2 / 2 costs about x^2 eps, as in libm's erfc
    tail = (xs < -2) & (ref > 1e-300)
    rel = np.abs(ours[tail] - ref[tail]) / ref[tail]
    assert np.all(rel <= 2 * np.finfo(float).eps * xs[tail] ** 2)


def test_fast_cdf_error_is_below_float32_resolution():
    x32 = np.linspace(-12, 12, 60001).astype(np.float32)
    xs = x32.astype(np.float64)  # the reference at exactly the float32 inputs
    ref = Phi_reference(xs)
    phi = normal_cdf_fast(x32).astype(np.float64)
    assert np.max(np.abs(phi - ref)) < 1.5e-7  # float32's ulp at 1 is 1.19e-7
    g = gelu(x32).astype(np.float64)
    assert np.max(np.abs(g - xs * ref) / np.maximum(1.0, np.abs(xs))) < 1.5e-7


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cdf_at_the_extremes(dtype):
    x = np.array([-np.inf, -1e30, -50.0, 50.0, 1e30, np.inf, np.nan], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        phi = normal_cdf_fast(x) if dtype == "float32" else normal_cdf_exact(x)
    assert phi.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(phi[:6], [0, 0, 0, 1, 1, 1])
    assert np.isnan(phi[6])


def test_gelu_derivative_matches_finite_differences():
    u = np.linspace(-9, 9, 1801)
    dG = np.ones_like(u)
    gelu_backward(u, normal_cdf_exact(u), dG, np.empty_like(u))
    h = 1e-6
    numeric = (gelu(u + h) - gelu(u - h)) / (2 * h)
    assert np.max(np.abs(dG - numeric)) < 1e-8


# ---------------------------------------------------------------------- finite differences
def finite_difference_problem(bias: bool, dropout: float, resets: bool, seed: int):
    rng = np.random.default_rng(100 + seed)
    config = gpt_config(vocab_size=5, hidden=8, layers=2, heads=2, block=6, bias=bias, dropout=dropout, dtype="float64")
    model = perturbed(config, seed)
    T, B = 5, 2
    x, y = rng.integers(0, 5, (T, B)), rng.integers(0, 5, (T, B))
    masks = model.dropout_masks(T, B, rng)  # fixed: the loss is then a function of the weights
    reset_at = {2: np.array([1]), 4: np.array([0, 1])} if resets else None

    def loss() -> float:
        logits, _, _ = model.forward(x, (), reset_at, masks)
        return softmax_cross_entropy(logits.reshape(T * B, 5), y.reshape(-1))[0]

    _, grads, state = model.loss_and_grads(x, y, (), reset_at, masks)
    return model, loss, grads, state


def numeric_grad(loss, p: np.ndarray, h: float = 1e-5) -> np.ndarray:
    out = np.zeros_like(p)
    for i in range(p.size):
        old = p.flat[i]
        p.flat[i] = old + h
        up = loss()
        p.flat[i] = old - h
        down = loss()
        p.flat[i] = old
        out.flat[i] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize(
    ("bias", "dropout", "resets", "seed"),
    [
        (False, 0.0, False, 0),
        (True, 0.0, False, 1),
        (False, 0.3, False, 2),
        (True, 0.3, False, 3),
        (True, 0.0, True, 4),
    ],
)
def test_every_parameter_matches_finite_differences(bias, dropout, resets, seed):
    model, loss, grads, state = finite_difference_problem(bias, dropout, resets, seed)
    assert state == ()
    assert set(grads) == set(model.params)
    C = model.config.hidden
    for name, p in model.params.items():
        a, n = grads[name], numeric_grad(loss, p)
        if name.startswith("bqkv"):
            # a bias on the keys adds q.c to every score of a row, which softmax does not see:
            # its gradient is zero (to rounding) both ways
            assert np.max(np.abs(a[C : 2 * C])) < 1e-12 and np.max(np.abs(n[C : 2 * C])) < 1e-8, name
            a, n = np.delete(a, np.s_[C : 2 * C]), np.delete(n, np.s_[C : 2 * C])
        err = rel_error(a, n)
        assert err.max() < TOL, f"{name}: relative error {err.max():.2e}"


# -------------------------------------------------------------------------- generation
def small_model(dtype: str = "float64", bias: bool = True, block: int = 16) -> CharGPT:
    return perturbed(gpt_config(vocab_size=20, hidden=32, layers=2, heads=4, block=block, bias=bias, dtype=dtype), 13)


@pytest.mark.parametrize("block", [16, 15, 1])
def test_stream_equals_full_forward_position_by_position(block):
    model = small_model(block=block)
    text = np.random.default_rng(14).integers(0, 20, 3 * block + 7)
    stream = model.stepper().stream()
    for i, c in enumerate(text):
        logits = stream.feed(int(c))
        n = context_length(i, block)
        full = model.forward(text[i - n + 1 : i + 1, None], ())[0][-1, 0]  # the rule's context, read afresh
        np.testing.assert_allclose(logits, full, rtol=0, atol=1e-12)


def test_context_rule():
    block, keep = 16, 8
    lengths = [context_length(i, block) for i in range(60)]
    assert lengths[:16] == list(range(1, 17))
    assert lengths[16:24] == list(range(keep + 1, block + 1))  # re-read the last 8, then grow
    assert lengths[24:32] == list(range(keep + 1, block + 1))
    for n in (1, 15, 16, 17, 24, 25, 100):
        seen = []
        for start, stop, first in context_windows(n, block):
            assert 0 <= start <= first < stop <= n and stop - start <= block
            seen += [(i, i - start + 1) for i in range(first, stop)]
        assert [i for i, _ in seen] == list(range(n))
        assert all(c == context_length(i, block) for i, c in seen)


def test_prime_and_batched_steps_equal_the_stream():
    model = small_model()
    stepper = model.stepper()
    texts = np.random.default_rng(15).integers(0, 20, (40, 3))
    state = stepper.initial_state(3)
    for t in range(40):
        logits, state = stepper.step(texts[t], state)
    for b in range(3):
        primed, _ = stepper.prime(texts[:, b])
        stream = stepper.stream()
        for c in texts[:, b]:
            fed = stream.feed(int(c))
        np.testing.assert_allclose(logits[b], primed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fed, primed, rtol=0, atol=1e-12)
    assert stepper.prime(np.array([], np.int64))[0] is None


def test_stepper_is_a_frozen_copy():
    model = small_model()
    stepper = model.stepper()
    before, _ = stepper.prime(np.arange(5))
    for p in model.params.values():
        p += 1.0
    after, _ = stepper.prime(np.arange(5))
    np.testing.assert_array_equal(before, after)


def test_float32_stream_close_to_forward():
    model = small_model(dtype="float32")
    text = np.random.default_rng(16).integers(0, 20, 16)
    stream = model.stepper().stream()
    for c in text:
        logits = stream.feed(int(c))
    full = model.forward(text[:, None], ())[0][-1, 0]
    np.testing.assert_allclose(logits, full, rtol=0, atol=1e-5 * np.abs(full).max())


def test_attention_maps_for_the_inside_view():
    model = small_model()
    ids = np.random.default_rng(17).integers(0, 20, 11)
    maps = model.attention(ids)
    assert maps.shape == (2, 4, 11, 11)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.triu(maps, k=1) == 0)  # no position attends to a later one
    _, _, cache = model.forward(ids[:, None], ())
    for i in range(2):
        np.testing.assert_allclose(maps[i], cache.layers[i].A[0], rtol=0, atol=1e-13)
    assert model.activations(ids)["residual"].shape == (2, 11, 32)
    with pytest.raises(ValueError):
        model.attention(np.zeros(17, np.int64))


def attention_by_hand(model: CharGPT, ids: np.ndarray) -> np.ndarray:
    """(L, heads, n, n) from the weights, as the module docstring writes the model: LayerNorm with
    its gain and bias, one fused projection, a masked softmax with the max subtracted, the exact
    GELU through math.erf. Nothing folded, no pool, no cache: an independent reference."""
    P, cfg = model.params, model.config
    n, C, H = len(ids), cfg.hidden, cfg.heads
    D = C // H

    def ln(X, g, b):
        mu = X.mean(axis=1, keepdims=True)
        var = ((X - mu) ** 2).mean(axis=1, keepdims=True)
        return (X - mu) / np.sqrt(var + 1e-5) * g + b

    erf = np.vectorize(math.erf)
    X = P["wte"][ids] + P["wpe"][:n]  # (n, C)
    maps = []
    for i in range(cfg.layers):
        qkv = ln(X, P[f"ln1_g{i}"], P[f"ln1_b{i}"]) @ P[f"Wqkv{i}"] + P[f"bqkv{i}"]  # (n, 3C)
        A = np.zeros((H, n, n))
        Y = np.zeros((n, C))
        for h in range(H):
            q, k, v = (qkv[:, part * C + h * D : part * C + (h + 1) * D] for part in range(3))
            s = q @ k.T / math.sqrt(D)
            s[np.triu_indices(n, 1)] = -np.inf
            e = np.exp(s - s.max(axis=1, keepdims=True))
            A[h] = e / e.sum(axis=1, keepdims=True)
            Y[:, h * D : (h + 1) * D] = A[h] @ v
        maps.append(A)
        X = X + Y @ P[f"Wo{i}"] + P[f"bo{i}"]
        u = ln(X, P[f"ln2_g{i}"], P[f"ln2_b{i}"]) @ P[f"Wfc{i}"] + P[f"bfc{i}"]
        X = X + (u * 0.5 * (1 + erf(u / math.sqrt(2)))) @ P[f"Wproj{i}"] + P[f"bproj{i}"]
    return np.stack(maps)


def test_attention_is_what_the_weights_say_causal_and_sums_to_one():
    model = small_model()  # float64, with biases, moved away from the start
    ids = np.random.default_rng(23).integers(0, 20, 16)  # a whole block
    maps = model.attention(ids)
    assert maps.shape == (2, 4, 16, 16)
    np.testing.assert_allclose(maps.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.triu(maps, k=1) == 0)  # no position attends to a later one
    assert np.all(maps[..., np.tril_indices(16)[0], np.tril_indices(16)[1]] > 0)  # nor ignores an earlier one
    np.testing.assert_allclose(maps, attention_by_hand(model, ids), rtol=0, atol=1e-12)
    assert not np.allclose(maps[0], maps[1]) and not np.allclose(maps[0, 0], maps[0, 1])  # the heads differ


# ------------------------------------------------------------------------------ details
def test_softmax_without_max_is_exact_and_falls_back_when_it_must():
    rng = np.random.default_rng(18)
    mask = np.triu(np.full((6, 6), -np.inf), k=1)

    def reference(q, k):
        s = q @ k.swapaxes(-1, -2) + mask
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    k = rng.normal(size=(2, 6, 3))
    ordinary = rng.normal(size=(2, 6, 3))
    overflowing = ordinary * 300.0  # scores in the hundreds: exp overflows without the shift
    k_far = 1.0 + 0.1 * rng.normal(size=(2, 6, 3))
    underflowing = -100.0 * np.ones((2, 6, 3))  # every score near -300: every row's sum underflows
    for q, kk in ((ordinary, k), (overflowing, k), (underflowing, k_far)):
        for dtype in (np.float64, np.float32):
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = _attention_probs(
                    q.astype(dtype), kk.astype(dtype), mask.astype(dtype), np.empty((2, 6, 6), dtype)
                )
            np.testing.assert_allclose(got, reference(q, kk), rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)


def test_parameters_and_initialisation_follow_nanogpt():
    config = gpt_config(vocab_size=65, hidden=128, layers=4, heads=4, block=64)
    params = CharGPT.init_params(config, np.random.default_rng(19))
    assert set(params) == set(CharGPT.param_shapes(config))
    assert CharGPT.num_params(config) == 65 * 128 + 64 * 128 + 4 * (12 * 128 * 128 + 2 * 128) + 128
    assert not any(name.startswith(("b", "ln1_b", "ln2_b", "lnf_b")) for name in params)  # bias=False
    assert np.std(params["Wqkv0"]) == pytest.approx(0.02, rel=0.02)
    assert np.std(params["Wproj3"]) == pytest.approx(0.02 / math.sqrt(8), rel=0.02)
    assert np.std(params["Wo1"]) == pytest.approx(0.02 / math.sqrt(8), rel=0.05)
    assert np.all(params["ln1_g0"] == 1) and np.all(params["lnf_g"] == 1)
    assert set(CharGPT.decayed(config)) == {n for n, p in params.items() if p.ndim == 2}
    assert "wte" in CharGPT.decayed(config) and "lnf_g" not in CharGPT.decayed(config)
    with_bias = CharGPT.init_params(gpt_config(vocab_size=5, hidden=8, heads=2, bias=True), np.random.default_rng(0))
    assert np.all(with_bias["bqkv0"] == 0) and np.all(with_bias["lnf_b"] == 0)


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="heads"):
        CharGPT.check_config(gpt_config(vocab_size=5, hidden=10, heads=3))
    model = small_model()
    with pytest.raises(ValueError, match="block"):
        model.forward(np.zeros((17, 1), np.int64), ())
    with pytest.raises(IndexError):
        model.forward(np.full((3, 1), 20), ())
    logits, _, cache = model.forward(np.zeros((3, 1), np.int64), ())
    model.backward(np.ones_like(logits), cache)
    with pytest.raises(ValueError, match="already"):
        model.backward(np.ones_like(logits), cache)


def test_dropout_masks():
    config = gpt_config(vocab_size=5, hidden=8, layers=3, heads=2, block=6, dropout=0.25)
    masks = CharGPT.create(config, np.random.default_rng(0)).dropout_masks(6, 4, np.random.default_rng(1))
    assert masks.embedding.shape == (24, 8) and len(masks.attention) == 3
    assert masks.attention[0].shape == (4, 2, 6, 6) and masks.mlp_out[2].shape == (24, 8)
    assert set(np.unique(masks.attn_out[0])) <= {0.0, np.float32(1 / 0.75)}
    assert (
        CharGPT.create(gpt_config(vocab_size=5, hidden=8, heads=2), np.random.default_rng(0)).dropout_masks(6, 4, None)
        is None
    )


def test_steps_reuse_buffers_without_touching_returned_arrays():
    model = perturbed(gpt_config(vocab_size=9, hidden=16, layers=2, heads=2, block=8), 20)
    rng = np.random.default_rng(21)
    x, y = rng.integers(0, 9, (8, 3)), rng.integers(0, 9, (8, 3))
    loss1, grads1, _ = model.loss_and_grads(x, y, ())
    kept = {k: v.copy() for k, v in grads1.items()}
    x2, y2 = rng.integers(0, 9, (8, 3)), rng.integers(0, 9, (8, 3))
    model.loss_and_grads(x2, y2, ())
    loss3, grads3, _ = model.loss_and_grads(x, y, ())
    assert loss3 == loss1
    for name in grads1:
        np.testing.assert_array_equal(grads1[name], kept[name])  # what the caller holds is never recycled
        np.testing.assert_array_equal(grads3[name], kept[name])


def test_shorter_windows_and_resets_read_fresh_contexts():
    model = small_model()
    rng = np.random.default_rng(22)
    x = rng.integers(0, 20, (10, 2))
    logits, _, _ = model.forward(x, (), {4: np.array([1])})
    alone = model.forward(x[4:, 1:2], ())[0]  # stream 1 restarted at step 4: as if read from there
    np.testing.assert_allclose(logits[4:, 1], alone[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(logits[:, 0], model.forward(x[:, :1], ())[0][:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_attention_scores_stay_exact_in_every_path(dtype):
    model = small_model(dtype=dtype)
    C = model.config.hidden
    for i in range(model.config.layers):  # scores in the thousands: every exp overflows unshifted
        model.params[f"Wqkv{i}"][:, :C] *= 300.0
    text = np.random.default_rng(23).integers(0, 20, 12)
    stream = model.stepper().stream()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in text:
            logits = stream.feed(int(c))
        full = model.forward(text[:, None], ())[0][-1, 0]
    assert np.all(np.isfinite(full))
    np.testing.assert_allclose(logits, full, rtol=0, atol=(1e-3 if dtype == "float32" else 1e-9) * np.abs(full).max())


# -------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize(("n", "block"), [(5, 16), (16, 16), (17, 16), (100, 16), (61, 7), (30, 1)])
def test_evaluation_scores_each_position_as_generation_predicts_it(n, block):
    """The one-pass score reads the text in context_windows, batched: every position's loss is the
    one the key/value cache (generation) gives it, a character at a time from a fresh start."""
    from core import corpus
    from core.evaluate import Evaluator
    from core.models import log_softmax

    model = small_model(block=block)
    ids = np.random.default_rng(24).integers(0, 20, n + 1)
    vocab = corpus.from_text("".join(chr(97 + i) for i in range(20))).vocab
    evaluator = Evaluator(model, ids, vocab, chunk=2)  # a few windows per step: several steps
    steps = 0
    while not evaluator.advance():
        steps += 1
    ev = evaluator.result()
    stream = model.stepper().stream()
    losses, right = [], 0
    for i in range(n):
        logp = log_softmax(stream.feed(int(ids[i])).astype(np.float64))
        losses.append(-logp[ids[i + 1]])
        right += int(np.argmax(logp) == ids[i + 1])
    assert ev.n == n and ev.loss == pytest.approx(np.mean(losses), rel=1e-12)
    assert ev.accuracy == right / n
    np.testing.assert_allclose(ev.p_true, np.exp(-np.array(losses)), rtol=1e-10)


def test_activations_read_each_character_in_generations_context():
    model = small_model(block=8)
    ids = np.random.default_rng(25).integers(0, 20, 30)
    residual = model.activations(ids)["residual"]  # (L, n, C)
    assert residual.shape == (2, 30, 32)
    for i in (0, 7, 8, 12, 29):
        c = context_length(i, 8)
        alone = model.activations(ids[i - c + 1 : i + 1])["residual"][:, -1]  # its context, read afresh
        np.testing.assert_allclose(residual[:, i], alone, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------- training
def test_the_fitted_gpt_learns_the_soliloquy(soliloquy):
    """`--cell gpt`'s defaults on the soliloquy: 99% greedy accuracy on the whole text, read as
    generation reads it, within 800 steps (340-510 with seeds 0-2 when the recipe was fitted), and
    a greedy continuation that recites the text: its 8-character pieces are the soliloquy's."""
    from threadpoolctl import threadpool_limits

    from core import TrainConfig, Trainer, recipe
    from core.sampling import generate

    settings = recipe.choose(len(soliloquy.train_ids), soliloquy.vocab.size, {"cell": "gpt"}, flops=60e9).settings
    trainer = Trainer(soliloquy, TrainConfig(**settings, eval_every=0))
    ev = trainer.evaluate()
    assert ev.accuracy < 0.2
    with threadpool_limits(limits=1, user_api="blas"):
        for step in range(1, 801):
            trainer.train_step()
            if step % 50 == 0 and (ev := trainer.evaluate()).accuracy >= 0.99:
                break
    assert ev.accuracy >= 0.99, f"accuracy {ev.accuracy:.3f} after {trainer.step_count} steps"
    text = soliloquy.text()
    prime = text[:80]  # longer than the block: the cache's rule for a full block is in play
    ids = list(generate(trainer.model, soliloquy.vocab.encode(prime), 120, np.random.default_rng(0), temperature=0))
    recited = prime[-7:] + soliloquy.vocab.decode(ids)
    grams = [recited[i : i + 8] for i in range(len(recited) - 7)]
    assert sum(g in text for g in grams) >= 0.8 * len(grams), recited  # it recites (a slip may jump elsewhere in it)
