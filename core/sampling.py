"""Turning logits into characters: temperature, top-k, top-p, and streaming generation."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from .errors import ConfigError
from .models import CharModel, StepperLike
from .vocab import Vocab

# The temperature `lstm-tui sample` and the interface start at: 1 draws from the model's own
# distribution, the one its loss is measured on, so the text and the next-character table show
# what the model learned; lower is safer, higher wilder, and the user chooses.
TEMPERATURE = 1.0
# A text begun from nothing is read as if it followed one of these (the first the vocabulary has):
# a newline, as nanoGPT starts unprimed generation, so that it begins as a line of the text does.
STARTS = ("\n", " ")


def prime_for(vocab: Vocab, ids: NDArray) -> NDArray:
    """What generation reads before it draws: the seed's ids, or for an empty seed the id of a
    newline (STARTS), read but not part of the text. (A vocabulary with neither: nothing, and the
    first character is drawn uniformly.)"""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids):
        return ids
    start = next((ch for ch in STARTS if ch in vocab), None)
    return vocab.encode(start).astype(np.int64) if start is not None else ids


def check_settings(temperature: float, top_k: int | None = None, top_p: float | None = None) -> None:
    """Raise ConfigError for a temperature that is negative or not finite, or a bad top-k/top-p."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top-k must be at least 1, got {top_k}")
    if top_p is not None and not (0.0 < top_p <= 1.0):
        raise ConfigError(f"top-p must be in (0, 1], got {top_p}")


def probabilities(
    logits: NDArray, temperature: float = TEMPERATURE, top_k: int | None = None, top_p: float | None = None
) -> NDArray[np.float64]:
    """The distribution (V,) that sampling draws from. Temperature 0 puts all mass on the argmax."""
    check_settings(temperature, top_k, top_p)
    z = np.asarray(logits, dtype=np.float64)  # (V,)
    if temperature == 0:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    raw = z
    z = z - np.max(z)  # the largest becomes 0, so huge logits cannot overflow below
    z = z / temperature  # sharpen (T < 1) or flatten (T > 1)
    if top_k is not None and top_k < len(z):
        # ranked on the logits as given: the shift and the division can round neighbours together
        kth = np.partition(raw, -top_k)[-top_k]
        z = np.where(raw >= kth, z, -np.inf)  # keep the k largest (ties at the k-th kept too)
        if np.count_nonzero(np.isfinite(z)) > top_k:  # break ties by index, so exactly k remain
            keep = np.argsort(-np.where(np.isfinite(z), raw, -np.inf), kind="stable")[:top_k]
            mask = np.full(len(z), -np.inf)
            mask[keep] = 0.0
            z = z + mask
    p = np.exp(z - np.max(z))  # stable: the largest is exp(0) = 1
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cum = np.cumsum(p[order])
        n_keep = int(np.searchsorted(cum, top_p - 1e-12)) + 1  # smallest set with mass >= top_p
        kept = np.zeros_like(p)
        kept[order[:n_keep]] = p[order[:n_keep]]
        p = kept / kept.sum()
    return p


def sample(
    logits: NDArray,
    rng: np.random.Generator,
    temperature: float = TEMPERATURE,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """One index drawn from `probabilities(logits, ...)`; greedy argmax at temperature 0."""
    if temperature == 0:
        check_settings(temperature, top_k, top_p)
        return int(np.argmax(logits))
    if top_k is None and top_p is None:
        # The common case, once per generated character: the same distribution as
        # probabilities() in a few cheap NumPy calls (no normalising: the draw is scaled to the
        # unnormalised total instead; the ufunc methods below cost a fraction of their wrappers).
        check_settings(temperature)
        z = np.asarray(logits).astype(np.float64)  # (V,) a copy we may overwrite
        z -= np.maximum.reduce(z)  # max first, so huge logits cannot overflow
        if temperature != 1.0:
            z /= temperature
        cdf = np.add.accumulate(np.exp(z, out=z), out=z)  # (V,) unnormalised cumulative weights
    else:
        cdf = np.cumsum(probabilities(logits, temperature, top_k, top_p))
    i = int(cdf.searchsorted(rng.random() * cdf[-1], side="right"))
    return i if i < len(cdf) else len(cdf) - 1


def generate(
    model: CharModel | StepperLike,
    prime_ids: NDArray,
    length: int,
    rng: np.random.Generator,
    temperature: float = TEMPERATURE,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Iterator[int]:
    """Yield `length` character ids, one at a time, continuing the text `prime_ids`.

    The state is primed by reading `prime_ids` from a fresh state (`prime_for` gives the prime of a
    text begun from nothing: a newline). With an empty prime the first character is drawn
    uniformly from the vocabulary and yielded as part of the text.
    """
    check_settings(temperature, top_k, top_p)
    if length < 0:
        raise ConfigError(f"length must be >= 0, got {length}")
    stepper = model.stepper() if isinstance(model, CharModel) else model
    V = stepper.config.vocab_size
    logits, state = stepper.prime(np.asarray(prime_ids, dtype=np.int64))
    stream = stepper.stream(state)
    emitted = 0
    if logits is None:
        if length == 0:
            return
        first = int(rng.integers(V))
        yield first
        emitted = 1
        logits = stream.feed(first)
    while emitted < length:
        nxt = sample(logits, rng, temperature, top_k, top_p)
        yield nxt
        emitted += 1
        if emitted < length:
            logits = stream.feed(nxt)
