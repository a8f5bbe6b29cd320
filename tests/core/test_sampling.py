"""Turning logits into characters: temperature, top-k, top-p, and streaming generation."""

from __future__ import annotations

import numpy as np
import pytest

from core import (
    CharLSTM,
    ConfigError,
    ModelConfig,
    corpus,
    generate,
    probabilities,
    sample,
)


def test_temperature_zero_is_argmax():
    logits = np.array([0.1, 2.0, -1.0, 1.99])
    rng = np.random.default_rng(0)
    assert all(sample(logits, rng, temperature=0) == 1 for _ in range(20))
    assert probabilities(logits, 0).tolist() == [0, 1, 0, 0]


def test_temperature_one_matches_softmax_statistically():
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    rng = np.random.default_rng(12345)
    n = 20_000
    counts = np.bincount([sample(logits, rng, 1.0) for _ in range(n)], minlength=5)
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert chi2 < 18.47  # the 99.9% point of chi-square with 4 degrees of freedom


def test_top_k_never_leaves_the_top_k():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=40)
    top3 = set(np.argsort(logits)[-3:].tolist())
    draws = {sample(logits, rng, temperature=2.0, top_k=3) for _ in range(2000)}
    assert draws <= top3 and len(draws) == 3


def test_top_k_ranks_the_logits_as_given_even_when_temperature_rounds_them_together():
    # 5e-324 / 2 rounds to 0: after the division both logits look equal, but only index 1 is the top 1
    logits = np.array([0.0, 5e-324])
    assert probabilities(logits, 2.0, top_k=1).tolist() == [0.0, 1.0]
    assert sample(logits, np.random.default_rng(0), 2.0, top_k=1) == 1


@pytest.mark.parametrize("temperature", [0.5, 1.7])
def test_sampling_at_a_temperature_draws_from_probabilities(temperature):
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5], dtype=np.float32)
    p = probabilities(logits, temperature)
    rng = np.random.default_rng(7)
    n = 20_000
    counts = np.bincount([sample(logits, rng, temperature) for _ in range(n)], minlength=5)
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert chi2 < 18.47  # the 99.9% point of chi-square with 4 degrees of freedom


def test_top_p_keeps_the_smallest_set_with_that_mass():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = probabilities(logits, 1.0, top_p=0.75)
    assert p[2] == 0 and p[3] == 0
    assert p[0] == pytest.approx(0.5 / 0.8)


def test_low_temperature_is_stable():
    logits = np.array([1000.0, 999.0, -1000.0])
    p = probabilities(logits, 0.01)
    assert np.all(np.isfinite(p)) and p[0] == pytest.approx(1.0)


@pytest.mark.parametrize("t", [-0.5, float("nan"), float("inf")])
def test_bad_temperatures_are_refused(t):
    with pytest.raises(ConfigError):
        probabilities(np.zeros(3), t)


def test_generation_same_seed_same_text_and_streams():
    c = corpus.load(corpus.bundled_path())
    model = CharLSTM.create(ModelConfig(c.vocab.size, 16), np.random.default_rng(0))
    prime, skipped = c.vocab.encode_known("To be")  # 'T' is not in the lowercased soliloquy
    assert skipped == ["T"]
    a = list(generate(model, prime, 50, np.random.default_rng(7)))
    b = list(generate(model, prime, 50, np.random.default_rng(7)))
    other = list(generate(model, prime, 50, np.random.default_rng(8)))
    assert a == b and a != other and len(a) == 50
    greedy = [list(generate(model, prime, 30, np.random.default_rng(s), temperature=0)) for s in (1, 2)]
    assert greedy[0] == greedy[1]
    stream = generate(model, prime, 5, np.random.default_rng(0))
    assert isinstance(next(stream), int)  # one character at a time
    assert len(list(generate(model, np.zeros(0, np.int64), 5, np.random.default_rng(0)))) == 5
