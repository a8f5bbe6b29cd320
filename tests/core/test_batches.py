"""Streams and windows over a text: shapes that fit it, coverage, resets where a stream wraps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import (
    DoneReport,
    StepReport,
    TrainConfig,
    Trainer,
    corpus,
)
from core.batches import Batches, fit_shape


def test_batches_shrink_to_fit_a_short_text():
    assert fit_shape(2, 16, 64) == (1, 1)
    assert fit_shape(11, 4, 100) == (1, 10)
    assert fit_shape(101, 32, 10) == (10, 10)
    assert fit_shape(1000, 16, 48) == (16, 48)
    assert fit_shape(866, 16, 64) == (13, 64)  # B windows of T must fit in the text


def test_batches_cover_the_text_and_reset_on_wrap():
    ids = np.arange(21, dtype=np.int64)  # 20 (input, target) pairs
    b = Batches(ids, batch=2, seq_len=5)
    seen = []
    for _ in range(4):
        w = b.next()
        assert np.array_equal(w.y, w.x + 1)  # targets are the next character
        seen.append(w)
    # Stream 0 starts at 0, stream 1 at 10, both blank; after 2 windows stream 1 wraps to 0 and resets.
    assert seen[0].x[0].tolist() == [0, 10]
    assert 0 in seen[0].resets and seen[0].resets[0].tolist() == [0, 1]
    assert seen[1].resets == {}
    assert seen[2].x[0].tolist() == [10, 0]
    assert seen[2].resets[0].tolist() == [1]
    assert b.epoch == pytest.approx(40 / 20)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_two_character_corpus_trains(cell):
    c = corpus.from_text("ab")
    trainer = Trainer(c, TrainConfig(hidden=8, eval_every=1, steps=3, cell=cell))
    reports = list(trainer.run())
    assert (trainer.batch, trainer.seq_len) == (1, 1) and trainer.shrunk
    steps = [r for r in reports if isinstance(r, StepReport)]
    assert len(steps) == 3 and all(math.isfinite(r.loss) for r in steps)
    assert isinstance(reports[-1], DoneReport) and reports[-1].reason == "budget"
