"""Evaluation: mean loss on a text read from a fresh state, and the teacher-forced comparison of
ground truth against the model's predictions that the original notebook printed.

Two scores of the same text:

- one pass: the text read as one sequence from a fresh state at its beginning (a model with a
  bounded context, the GPT, slides its context over it), each character predicted with all the
  context before it. The loss of generating a long text.
- cold start: the text cut into consecutive blocks of COLD_BLOCK (64) characters, each read from a
  blank state (nanoGPT's estimate_loss, over every block instead of a random sample). The loss of
  a model asked to go on from a few typed characters, which a one-pass score hides: a model that
  never learned to start in the middle of a text scores well in one pass and badly here.
  `Evaluation.by_position` is its loss at each position of a block, the warm-up from blank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .models import State, log_softmax
from .parallel import SplitScorer, Workers
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

    loss: float  # mean nats per character, over all n positions
    accuracy: float  # fraction of the n positions where the argmax is the true next character
    context: str  # the first character, which has no prediction
    truth: str  # the true next characters, one per position, for the first min(n, DETAIL_CHARS)
    predicted: str  # the model's most likely next characters (same positions as truth)
    p_true: NDArray  # (len(truth),) probability the model gave the true character
    sampled: str | None  # one draw from the model's distribution per position, when asked
    chars: int = -1  # n: positions scored (-1: as many as truth holds)
    # A cold-start score (read in blocks from a blank state): the mean loss at each position of a
    # block, (block,); None for a one-pass score
    by_position: NDArray | None = None
    cold: Evaluation | None = None  # the cold-start score of the same text, when it was asked for

    @property
    def n(self) -> int:
        """Positions scored (the per-character detail covers the first len(truth) of them)."""
        return self.chars if self.chars >= 0 else len(self.truth)

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


# Long texts are scored as up to MAX_STREAMS segments side by side, each at least SEGMENT_MIN
# positions long and each (but the first) preceded by WARMUP unscored characters of context.
MAX_STREAMS = 32
SEGMENT_MIN = 4096
WARMUP = 256
# Per-character detail (truth, prediction, probability) is kept for at most this many positions
# from the start: what a screen or a summary shows, without a long text's worth of arrays.
DETAIL_CHARS = 20_000
# The cold-start score reads the text in consecutive blocks of this many characters, each from a
# blank state: nanoGPT's shakespeare_char block.
COLD_BLOCK = 64


def cold_windows(n: int, block: int = COLD_BLOCK, read_as: Any = None) -> list[tuple[int, int, int]]:
    """The windows (start, stop, first) of a cold-start reading of n positions: consecutive blocks
    of `block` (the last may be shorter), each a fresh context. A model whose context is shorter
    than a block (`read_as`, its score_windows) reads each block as it reads a text that long."""
    windows = []
    for a in range(0, n, block):
        m = min(block, n - a)
        inner = read_as(m) if read_as is not None else None
        windows += [(a + s, a + e, a + f) for s, e, f in inner] if inner else [(a, a + m, a)]
    return windows


def stream_count(n: int, warmup: int = WARMUP) -> int:
    """How many parallel streams score a text of `n` positions: one for a short text (read exactly
    as one sequence), more for a long one so that each product works on a batch. Each stream
    scores at least SEGMENT_MIN positions, so the unscored warm-up adds at most warmup/SEGMENT_MIN."""
    return max(1, min(MAX_STREAMS, n // max(SEGMENT_MIN, 1)))


class Scorer(Protocol):
    """What evaluation reads: a model (CharModel), or one split over threads (core.parallel)."""

    def initial_state(self, batch: int = 1) -> State: ...

    def forward(self, x: NDArray, state: State) -> tuple[NDArray, State, Any]: ...


class Evaluator:
    """Teacher-forced evaluation of `ids` (n+1,) done a piece at a time: `advance()` reads one
    chunk and returns True once the whole text is scored; `result()` is then the Evaluation.

    A model whose context is bounded (the GPT: `score_windows`) reads the text in windows instead,
    each a fresh context, side by side in batches; see `_plan_windows`.

    The text is read from a fresh state. A short text is read as one sequence. A long one is cut
    into S contiguous segments read side by side as the S streams of one batch, which is what
    makes scoring a long validation text affordable: each stream s > 0 first reads the `warmup`
    characters before its segment without scoring them, so it reaches its segment with the state
    that reading the text from its start would have built, as far as an LSTM remembers (measured
    on tinyshakespeare: the same loss as one sequential read to within 1e-4 nats). Stream 0 starts
    at the beginning with the fresh state. Every position is scored exactly once.
    """

    def __init__(
        self,
        model: Scorer,
        ids: NDArray,
        vocab: Vocab,
        rng: np.random.Generator | None = None,
        chunk: int = 128,
        streams: int | None = None,
        warmup: int = WARMUP,
        cold: int = 0,
    ):
        """`cold` > 0: the cold-start score instead, in blocks of that many characters."""
        n = len(ids) - 1
        if n < 1:
            raise ValueError("evaluation needs at least 2 characters")
        self.model, self.ids, self.vocab, self.rng = model, np.asarray(ids), vocab, rng
        self.n, self.chunk, self.cold = n, chunk, cold
        self._t = 0  # steps taken so far (windowed: batches of windows read)
        self._batches: list[list[tuple[int, int, int]]] | None = None  # windowed: the windows of each step
        read_as = getattr(model, "score_windows", None)  # (an engine's scorer may have no windows)
        if cold:
            windows = cold_windows(n, cold, read_as)
            self._at = np.zeros(cold)  # (block,) sum of the loss at each position of a block
        else:
            windows = read_as(n) if read_as is not None else None
        if windows is not None:
            self._plan_windows(windows)
        else:
            S = stream_count(n, warmup) if streams is None else max(1, min(streams, n))
            starts = (np.arange(S + 1, dtype=np.int64) * n) // S  # (S+1,) segment boundaries
            begin = np.maximum(starts[:-1] - warmup, 0)  # (S,) where each stream starts reading
            begin[0] = 0
            self._steps = int((starts[1:] - begin).max())  # steps every stream takes (the longest)
            self._begin, self._start, self._stop = begin, starts[:-1], starts[1:]
            self._state = model.initial_state(S)
        self._total = 0.0  # sum of -log p(true) over the positions scored so far
        self._right = 0  # positions where the argmax was the true character
        d = self._detail = min(n, DETAIL_CHARS)
        self._pred = np.empty(d, dtype=np.int64)  # (d,)
        self._p_true = np.empty(d, dtype=np.float64)  # (d,)
        self._sampled = np.empty(d, dtype=np.int64) if rng is not None else None
        self._result: Evaluation | None = None

    def _plan_windows(self, windows: list[tuple[int, int, int]]) -> None:
        """A model whose context is bounded (the GPT) reads `windows` (start, stop, first), each as
        a fresh context keeping the predictions at positions first..stop-1: as many side by side in
        one step as make about chunk x MAX_STREAMS positions."""
        width = max(stop - start for start, stop, _ in windows)
        per = max(1, (self.chunk * MAX_STREAMS) // width)  # windows per step
        self._batches = [windows[i : i + per] for i in range(0, len(windows), per)]
        self._steps = len(self._batches)
        self._begin = np.zeros(per, np.int64)  # (for `streams`)

    @property
    def streams(self) -> int:
        return len(self._begin)

    @property
    def done(self) -> bool:
        return self._t >= self._steps

    @property
    def progress(self) -> float:
        """Fraction of the reading done, 0..1."""
        return min(1.0, self._t / self._steps)

    def advance(self) -> bool:
        """Read the next chunk of steps in every stream; True when the whole text is scored."""
        if self.done:
            return True
        if self._batches is not None:
            self._read_windows(self._batches[self._t])
            self._t += 1
            return self.done
        t0, t1 = self._t, min(self._steps, self._t + self.chunk)
        pos = self._begin[None, :] + np.arange(t0, t1, dtype=np.int64)[:, None]  # (k, S) input positions
        scored = (pos >= self._start[None, :]) & (pos < self._stop[None, :])  # (k, S)
        x = self.ids[np.minimum(pos, self.n - 1)].astype(np.int64)  # (k, S) (past the end: unscored)
        logits, self._state, _ = self.model.forward(x, self._state)  # (k, S, V)
        self._tally(pos[scored], logits[scored])
        self._t = t1
        return self.done

    def _read_windows(self, windows: list[tuple[int, int, int]]) -> None:
        """Read `windows` side by side (those of one length in one forward pass) and score them."""
        by_length: dict[int, list[tuple[int, int, int]]] = {}
        for w in windows:
            by_length.setdefault(w[1] - w[0], []).append(w)
        for T, group in by_length.items():
            starts = np.array([start for start, _, _ in group], np.int64)  # (W,)
            skip = np.array([first - start for start, _, first in group], np.int64)  # (W,) unscored context
            pos = starts[None, :] + np.arange(T)[:, None]  # (T, W) input positions
            x = self.ids[pos].astype(np.int64)  # (T, W)
            logits, _, _ = self.model.forward(x, self.model.initial_state(len(group)))  # (T, W, V)
            scored = np.arange(T)[:, None] >= skip[None, :]  # (T, W)
            self._tally(pos[scored], logits[scored])

    def _tally(self, p: NDArray, logits: NDArray) -> None:
        """Count the predictions `logits` (m, V) of the characters after positions `p` (m,)."""
        logp = log_softmax(logits.astype(np.float64))  # (m, V)
        y = np.asarray(self.ids[p + 1], dtype=np.int64)  # (m,)
        lp_true = logp[np.arange(len(p)), y]  # (m,)
        pred = logp.argmax(axis=1)  # (m,)
        self._total -= float(lp_true.sum())
        if self.cold:
            self._at -= np.bincount(p % self.cold, weights=lp_true, minlength=self.cold)
        self._right += int(np.count_nonzero(pred == y))
        keep = p < self._detail  # (m,) positions whose detail is kept
        if keep.any():
            pk = p[keep]
            self._p_true[pk] = np.exp(lp_true[keep])
            self._pred[pk] = pred[keep]
            if self._sampled is not None and self.rng is not None:
                cdf = np.cumsum(np.exp(logp[keep]), axis=1)  # (k, V)
                u = self.rng.random((len(pk), 1)) * cdf[:, -1:]
                self._sampled[pk] = np.minimum((cdf < u).sum(axis=1), cdf.shape[1] - 1)

    def result(self) -> Evaluation:
        """The finished evaluation (reads whatever is left first)."""
        while not self.advance():
            pass
        if self._result is None:
            ids, n = self.ids, self.n
            self._result = Evaluation(
                loss=self._total / n,
                accuracy=self._right / n,
                context=self.vocab.decode(ids[:1]),
                truth=self.vocab.decode(np.asarray(ids[1 : self._detail + 1], dtype=np.int64)),
                predicted=self.vocab.decode(self._pred),
                p_true=self._p_true,
                sampled=self.vocab.decode(self._sampled) if self._sampled is not None else None,
                chars=n,
                by_position=self._at / np.bincount(np.arange(n) % self.cold, minlength=self.cold).clip(1)
                if self.cold
                else None,
            )
        return self._result


class Scoring:
    """The one-pass score of a text and then (with `cold`) its cold-start score, read a piece at a
    time like an Evaluator: `result()` is the one-pass Evaluation with the cold one as its `cold`."""

    def __init__(
        self, model: Scorer, ids: NDArray, vocab: Vocab, rng: np.random.Generator | None = None, cold: bool = True
    ):
        self.parts = [Evaluator(model, ids, vocab, rng=rng)]
        if cold:
            self.parts.append(Evaluator(model, ids, vocab, cold=COLD_BLOCK))
        self.n = self.parts[0].n
        self._result: Evaluation | None = None

    @property
    def _current(self) -> Evaluator:
        return next((p for p in self.parts if not p.done), self.parts[-1])

    @property
    def chunk(self) -> int:
        return self._current.chunk

    @property
    def streams(self) -> int:
        return self._current.streams

    @property
    def done(self) -> bool:
        return all(p.done for p in self.parts)

    @property
    def progress(self) -> float:
        return sum(p.progress for p in self.parts) / len(self.parts)

    def advance(self) -> bool:
        """Read the next chunk of whichever score is under way; True once both are done."""
        if not self.done:
            self._current.advance()
        return self.done

    def result(self) -> Evaluation:
        if self._result is None:
            one = self.parts[0].result()
            self._result = replace(one, cold=self.parts[1].result()) if len(self.parts) > 1 else one
        return self._result


def evaluate(
    model: Scorer,
    ids: NDArray,
    vocab: Vocab,
    rng: np.random.Generator | None = None,
    chunk: int = 128,
    streams: int | None = None,
    threads: int = 1,
    cold: bool = False,
) -> Evaluation:
    """Teacher-forced evaluation of `ids` (n+1,) from a fresh state, all at once (see Evaluator).

    Input ids[t] predicts ids[t+1]. With `rng`, one character is also sampled per position.
    `streams=1` reads the text strictly as one sequence, however long. `threads` > 1 splits the
    streams over that many threads (core.parallel; run NumPy's BLAS on one thread per call then):
    the same scores, to rounding. With `cold`, the result's `cold` is the cold-start score too.
    """
    scorer: Scorer = model
    workers = None
    if threads > 1 and hasattr(model, "replica"):
        workers = Workers(threads)
        scorer = SplitScorer(model, workers)  # type: ignore[arg-type]
    try:
        one = Evaluator(scorer, ids, vocab, rng=rng, chunk=chunk, streams=streams).result()
        return replace(one, cold=Evaluator(scorer, ids, vocab, cold=COLD_BLOCK).result()) if cold else one
    finally:
        if workers is not None:
            workers.close()
