"""Evaluation: mean loss on a text read as one sequence, and the teacher-forced comparison of
ground truth against the model's predictions that the original notebook printed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .model import CharModel, log_softmax
from .vocab import Vocab

LN2 = math.log(2.0)


def bits_per_char(nats: float) -> float:
    """Loss in bits per character from nats per character."""
    return nats / LN2


def perplexity(nats: float) -> float:
    """exp(loss): the effective number of equally likely next characters."""
    return math.exp(min(nats, 700.0))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The model read a text from a fresh state, predicting each next character."""

    loss: float  # mean nats per character
    accuracy: float  # fraction of positions where the argmax is the true next character
    context: str  # the first character, which has no prediction
    truth: str  # the true next characters, one per position (n,)
    predicted: str  # the model's most likely next characters (n,)
    p_true: NDArray  # (n,) probability the model gave the true character
    sampled: str | None  # one draw from the model's distribution per position, when asked

    @property
    def n(self) -> int:
        return len(self.truth)

    @property
    def bits_per_char(self) -> float:
        return bits_per_char(self.loss)

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    @property
    def correct(self) -> NDArray[np.bool_]:
        """(n,) True where the prediction is right."""
        return np.frombuffer(self.truth.encode("utf-32-le"), np.uint32) == np.frombuffer(
            self.predicted.encode("utf-32-le"), np.uint32
        )


def evaluate(
    model: CharModel,
    ids: NDArray,
    vocab: Vocab,
    rng: np.random.Generator | None = None,
    chunk: int = 1024,
) -> Evaluation:
    """Teacher-forced evaluation of `ids` (n+1,) read as one sequence from a fresh state.

    Input ids[t] predicts ids[t+1]; the state is carried across chunks of `chunk` characters so
    memory stays bounded. With `rng`, one character is also sampled per position.
    """
    n = len(ids) - 1
    if n < 1:
        raise ValueError("evaluation needs at least 2 characters")
    state = model.initial_state(1)
    total = 0.0
    pred = np.empty(n, dtype=np.int64)  # (n,)
    p_true = np.empty(n, dtype=np.float64)  # (n,)
    sampled = np.empty(n, dtype=np.int64) if rng is not None else None
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        x = np.asarray(ids[start:stop], dtype=np.int64)[:, None]  # (T, 1)
        y = np.asarray(ids[start + 1 : stop + 1], dtype=np.int64)  # (T,)
        logits, state, _ = model.forward(x, state)
        logp = log_softmax(logits[:, 0, :].astype(np.float64))  # (T, V)
        lp_true = logp[np.arange(len(y)), y]  # (T,)
        total -= float(lp_true.sum())
        p_true[start:stop] = np.exp(lp_true)
        pred[start:stop] = logp.argmax(axis=1)
        if sampled is not None and rng is not None:
            cdf = np.cumsum(np.exp(logp), axis=1)  # (T, V)
            u = rng.random((len(y), 1)) * cdf[:, -1:]
            sampled[start:stop] = np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)
    truth_ids = np.asarray(ids[1:], dtype=np.int64)
    return Evaluation(
        loss=total / n,
        accuracy=float(np.mean(pred == truth_ids)),
        context=vocab.decode(ids[:1]),
        truth=vocab.decode(truth_ids),
        predicted=vocab.decode(pred),
        p_true=p_true,
        sampled=vocab.decode(sampled) if sampled is not None else None,
    )
