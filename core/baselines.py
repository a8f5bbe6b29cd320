"""The levels a model must beat to know more than character frequencies and pairs.

Three cross-entropies on the evaluation text, in nats per character, from models with no learning
to speak of:

    uniform   ln V: every character equally likely (a model that knows only the alphabet)
    unigram   each character at its frequency in the training part
    bigram    each character at its frequency after the one before it (makemore's first model)

The unigram and bigram tables are counted on the training part and scored on the evaluation part,
with one added to every count (Laplace smoothing, as makemore does), so that a character or a pair
the training part never shows costs a finite amount instead of infinity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .corpus import Corpus


@dataclass(frozen=True)
class Baselines:
    """Cross-entropies of the evaluation text under the three simple models, nats per character."""

    uniform: float
    unigram: float
    bigram: float


def unigram_bigram(train: NDArray, evaluate: NDArray, vocab_size: int) -> tuple[float, float]:
    """The unigram and bigram cross-entropies of `evaluate` (ids) under tables counted on `train`.

    Positions scored are those a model predicts: every character of `evaluate` but the first, the
    bigram reading the character before it, so both numbers compare with a model's loss.
    """
    V = vocab_size
    train = np.asarray(train, dtype=np.int64)
    ev = np.asarray(evaluate, dtype=np.int64)
    if len(ev) < 2:
        raise ValueError("scoring needs at least 2 characters")
    counts = np.bincount(train, minlength=V).astype(np.float64) + 1.0  # (V,) Laplace
    logp1 = np.log(counts / counts.sum())  # (V,)
    pairs = np.zeros((V, V), dtype=np.float64)  # (V, V) row: previous character, column: next
    np.add.at(pairs, (train[:-1], train[1:]), 1.0)
    pairs += 1.0
    logp2 = np.log(pairs / pairs.sum(axis=1, keepdims=True))  # (V, V)
    unigram = -float(logp1[ev[1:]].mean())
    bigram = -float(logp2[ev[:-1], ev[1:]].mean())
    return unigram, bigram


def baselines(corpus: Corpus) -> Baselines:
    """The three levels for `corpus`: counted on its training part, scored on its evaluation text
    (the validation part, or the whole text when it has none)."""
    unigram, bigram = unigram_bigram(corpus.train_ids, corpus.val_ids, corpus.vocab.size)
    return Baselines(uniform=math.log(corpus.vocab.size), unigram=unigram, bigram=bigram)
