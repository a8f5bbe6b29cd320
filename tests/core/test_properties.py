"""Property-based tests of the text layer and the sampler (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from core import Vocab, corpus, probabilities, sample

finite = st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False)
logit_vectors = st.one_of(
    st.lists(finite, min_size=1, max_size=40),
    st.lists(st.floats(-1e-300, 1e-300), min_size=1, max_size=40),  # tiny
    st.integers(1, 40).map(lambda n: [3.0] * n),  # all equal
)
temperatures = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=100.0))


@given(st.text(min_size=1))
def test_encode_decode_round_trips_any_unicode(text):
    v = Vocab.from_text(text)
    assert v.decode(v.encode(text)) == text


@given(st.text(min_size=1))
def test_the_vocabulary_never_maps_two_characters_to_one_index(text):
    v = Vocab.from_text(text)
    ids = [int(v.encode(ch)[0]) for ch in v.chars]
    assert len(set(ids)) == len(v.chars) == len(set(text))
    assert sorted(ids) == list(range(v.size))


@given(st.text(min_size=1), st.text())
def test_unknown_characters_are_skipped_and_reported(known, prime):
    v = Vocab.from_text(known)
    ids, skipped = v.encode_known(prime)
    assert v.decode(ids) == "".join(ch for ch in prime if ch in v)
    assert set(skipped) == {ch for ch in prime if ch not in v}


@given(st.text(min_size=2).filter(lambda s: len(set(s)) >= 2 and s.strip() and "\x00" not in s))
@settings(max_examples=50)
def test_any_text_with_two_symbols_loads(text):
    c = corpus.from_text(text)
    assert c.size >= 1 and c.vocab.size >= 2


@given(logit_vectors, temperatures, st.integers(0, 2**32 - 1))
def test_sampling_returns_a_valid_index(logits, temperature, seed):
    logits = np.array(logits)
    i = sample(logits, np.random.default_rng(seed), temperature)
    assert 0 <= i < len(logits)
    p = probabilities(logits, temperature)
    assert np.all(np.isfinite(p)) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-9


@given(logit_vectors, temperatures, st.integers(1, 10), st.integers(0, 2**32 - 1))
def test_top_k_is_respected(logits, temperature, k, seed):
    logits = np.array(logits)
    p = probabilities(logits, temperature, top_k=k)
    assert np.count_nonzero(p) <= k
    i = sample(logits, np.random.default_rng(seed), temperature, top_k=k)
    assert p[i] > 0 or temperature == 0
    assert logits[i] >= np.sort(logits)[-min(k, len(logits))]  # one of the k largest


@given(logit_vectors, st.floats(min_value=1e-3, max_value=100.0), st.floats(0.01, 1.0), st.integers(0, 2**32 - 1))
def test_top_p_is_respected(logits, temperature, top_p, seed):
    logits = np.array(logits)
    full = probabilities(logits, temperature)
    p = probabilities(logits, temperature, top_p=top_p)
    kept = p > 0
    # The kept set holds at least top_p of the mass, and dropping its least likely member would not.
    assert full[kept].sum() >= top_p - 1e-9
    if kept.sum() > 1:
        assert full[kept].sum() - full[kept].min() < top_p + 1e-9
    i = sample(logits, np.random.default_rng(seed), temperature, top_p=top_p)
    assert kept[i]
