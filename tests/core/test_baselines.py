"""The uniform, unigram and bigram levels: counted on the training part, scored on validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import corpus
from core.baselines import baselines, unigram_bigram


def direct(train: str, evaluate: str, chars: str) -> tuple[float, float]:
    """The same two numbers the slow way, from Python counts with +1 smoothing."""
    V = len(chars)
    uni = {c: train.count(c) + 1 for c in chars}
    total = sum(uni.values())
    pair = {(a, b): 1 for a in chars for b in chars}
    for a, b in zip(train, train[1:], strict=False):
        pair[(a, b)] += 1
    rows = {a: sum(pair[(a, b)] for b in chars) for a in chars}
    u = -sum(math.log(uni[c] / total) for c in evaluate[1:]) / (len(evaluate) - 1)
    b = -sum(math.log(pair[(a, c)] / rows[a]) for a, c in zip(evaluate, evaluate[1:], strict=False))
    assert V == len(rows)
    return u, b / (len(evaluate) - 1)


def test_the_tables_match_a_direct_count():
    chars = "abc "
    train, ev = "abba cab abc aab", "cab ba"
    ids = {c: i for i, c in enumerate(chars)}
    got = unigram_bigram(np.array([ids[c] for c in train]), np.array([ids[c] for c in ev]), len(chars))
    want = direct(train, ev, chars)
    assert got == pytest.approx(want, rel=1e-12)


def test_on_a_text_the_levels_are_ordered_and_a_pair_never_seen_costs_a_finite_amount():
    text = "".join(f"line {i % 7}: to be or not to be\n" for i in range(400)) + "zq"  # 'zq' only in validation
    c = corpus.from_text(text)
    assert c.split
    levels = baselines(c)
    assert levels.uniform == pytest.approx(math.log(c.vocab.size))
    assert levels.bigram < levels.unigram < levels.uniform  # pairs tell more than frequencies
    assert math.isfinite(levels.bigram)
