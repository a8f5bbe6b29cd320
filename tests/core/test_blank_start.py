"""Starting from a blank state: the ways training reads the text (random windows, random resets),
the cold-start score, and generation begun from nothing."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import CELLS, run_steps, tiny_config

from core import Trainer, corpus
from core.batches import Batches
from core.config import TrainConfig
from core.evaluate import COLD_BLOCK, cold_windows, evaluate
from core.models import create_model, log_softmax
from core.sampling import generate, prime_for
from core.trainer import EvalReport, StepReport


def small_model(cell: str, vocab: int, block: int = 64, seed: int = 0):
    cfg = TrainConfig(cell=cell, hidden=16, layers=2, heads=2, block=block, seq_len=min(16, block), dtype="float64")
    return create_model(cfg.model_config(vocab), np.random.default_rng(seed))


def blank_block_losses(model, ids: np.ndarray, block: int = COLD_BLOCK) -> np.ndarray:
    """The loss of every position of `ids`, each block of `block` read on its own from a blank
    state, one block and one character at a time through the model's own stepper: the cold-start
    score computed directly, without the evaluator's batching of blocks side by side."""
    n = len(ids) - 1
    losses = np.empty(n)
    for a in range(0, n, block):
        stepper = model.stepper()
        logits, state = stepper.prime(ids[a : a + 1].astype(np.int64))
        stream = stepper.stream(state)
        for i in range(a, min(a + block, n)):
            if i > a:
                logits = stream.feed(int(ids[i]))
            losses[i] = -log_softmax(np.asarray(logits, np.float64)[None])[0, ids[i + 1]]
    return losses


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_cold_start_score_is_every_block_read_from_a_blank_state(soliloquy, cell, threads):
    model = small_model(cell, soliloquy.vocab.size, seed=3)
    ids = soliloquy.ids[:300]  # 4 whole blocks and a short one
    direct = blank_block_losses(model, ids)
    ev = evaluate(model, ids, soliloquy.vocab, cold=True, threads=threads)
    assert ev.cold is not None and ev.cold.n == len(ids) - 1
    assert ev.cold.loss == pytest.approx(direct.mean(), rel=1e-9)
    positions = np.arange(len(direct)) % COLD_BLOCK
    expected = [direct[positions == k].mean() for k in range(COLD_BLOCK)]
    np.testing.assert_allclose(ev.cold.by_position, expected, rtol=1e-9)
    # and it differs from the one-pass score, which reads on across the blocks
    assert ev.loss != pytest.approx(ev.cold.loss, rel=1e-6)


def test_a_gpt_whose_block_is_shorter_than_a_cold_block_reads_each_block_as_a_text(soliloquy):
    model = small_model("gpt", soliloquy.vocab.size, block=16, seed=1)
    ids = soliloquy.ids[:200]
    ev = evaluate(model, ids, soliloquy.vocab, cold=True)
    assert ev.cold is not None
    per_block = [evaluate(model, ids[a : min(a + COLD_BLOCK, 199) + 1], soliloquy.vocab) for a in range(0, 199, 64)]
    total = sum(e.loss * e.n for e in per_block) / sum(e.n for e in per_block)
    assert ev.cold.loss == pytest.approx(total, rel=1e-9)


def test_cold_windows_cover_every_position_once_in_blocks():
    windows = cold_windows(150)
    assert windows == [(0, 64, 0), (64, 128, 64), (128, 150, 128)]
    inner = cold_windows(130, read_as=lambda m: [(0, min(m, 32), 0)] + ([(16, m, 32)] if m > 32 else []))
    scored = sorted(p for _, stop, first in inner for p in range(first, stop))
    assert scored == list(range(130))


def test_random_windows_start_anywhere_from_a_blank_state():
    ids = np.arange(1000) % 7
    rng = np.random.default_rng(0)
    b = Batches(ids, 8, 16, windows="random", rng=rng)
    for _ in range(50):
        w = b.next()
        assert list(w.resets) == [0] and list(w.resets[0]) == list(range(8))  # every stream starts blank
        assert np.array_equal(w.y[:-1], w.x[1:])  # each window is one contiguous piece of the text
    assert b.chars_seen == 50 * 8 * 16
    first = Batches(ids, 8, 16, windows="random", rng=np.random.default_rng(0)).next()
    again = Batches(ids, 8, 16, windows="random", rng=np.random.default_rng(0)).next()
    assert np.array_equal(first.x, again.x)  # drawn from the generator: repeatable
    # the offsets spread over the whole text, not a few fixed phases
    offsets = Batches(np.arange(1000), 8, 16, windows="random", rng=np.random.default_rng(1))
    seen = np.concatenate([offsets.next().x[0] for _ in range(40)])
    assert len(np.unique(seen)) > 250 and seen.min() < 100 and seen.max() > 880


def test_carried_streams_start_blank_with_the_chance_given():
    ids = np.arange(100_000) % 11
    b = Batches(ids, 32, 10, reset_prob=0.25, rng=np.random.default_rng(0))
    fresh = [len(b.next().resets.get(0, ())) for _ in range(400)]
    assert np.mean(fresh) / 32 == pytest.approx(0.25, abs=0.02)
    never = Batches(ids, 32, 10, reset_prob=0.0, rng=np.random.default_rng(0))
    assert list(never.next().resets) == [0]  # the first window: stream 0 starts at the text's start
    assert all(0 not in never.next().resets for _ in range(100))  # (no stream wraps this early)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("reading", [{"windows": "random"}, {"windows": "carried", "reset_prob": 0.5}])
def test_every_model_learns_and_resumes_exactly_with_each_way_of_reading(tmp_path, soliloquy, cell, reading):
    cfg = tiny_config(cell=cell, seed=4, **reading, **({"heads": 2, "block": 16} if cell == "gpt" else {}))
    straight = Trainer(soliloquy, cfg)
    losses_straight = [r.loss for r in run_steps(straight, 40) if isinstance(r, StepReport)]
    assert np.mean(losses_straight[-5:]) < np.mean(losses_straight[:5]) - 0.3  # it learns
    first = Trainer(soliloquy, cfg, checkpoint=tmp_path / "r.npz")
    losses = [r.loss for r in run_steps(first, 25) if isinstance(r, StepReport)]
    first.save()
    resumed = Trainer.resume(tmp_path / "r.npz", soliloquy)
    assert resumed.batches.windows == cfg.windows and resumed.batches.reset_prob == cfg.reset_prob
    losses += [r.loss for r in run_steps(resumed, 15) if isinstance(r, StepReport)]
    assert losses == losses_straight


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_window_that_starts_blank_does_not_see_the_carried_state(soliloquy, cell):
    """A stream reset at the start of a window scores its window exactly as a stream that begins
    from a blank state: the state it carried is not read (forward) nor trained through (backward)."""
    model = small_model(cell, soliloquy.vocab.size)
    x = soliloquy.ids[:17].astype(np.int64).reshape(-1, 1)[:16]
    y = soliloquy.ids[1:17].astype(np.int64).reshape(-1, 1)
    rng = np.random.default_rng(0)
    carried = tuple(tuple(rng.normal(size=a.shape) for a in layer) for layer in model.initial_state(1))
    fresh = model.loss_and_grads(x, y, model.initial_state(1))
    reset = model.loss_and_grads(x, y, carried, {0: np.array([0])})
    kept = model.loss_and_grads(x, y, carried)
    assert reset[0] == pytest.approx(fresh[0], rel=1e-12) and kept[0] != pytest.approx(fresh[0], rel=1e-6)
    for k in fresh[1]:
        np.testing.assert_allclose(reset[1][k], fresh[1][k], rtol=1e-10, atol=1e-12)


def test_a_run_reports_both_scores(soliloquy):
    t = Trainer(soliloquy, tiny_config(eval_every=5, steps=10))
    evals = [r for r in t.run() if isinstance(r, EvalReport)]
    assert evals and all(r.cold_loss is not None for r in evals)
    last = evals[-1]
    direct = evaluate(t.run_model(), t.eval_ids, soliloquy.vocab, cold=True)
    assert last.step == t.step_count
    assert last.val_loss == pytest.approx(direct.loss) and last.cold_loss == pytest.approx(direct.cold.loss)
    assert last.evaluation.cold is not None and len(last.evaluation.cold.by_position) == COLD_BLOCK


def test_a_text_begun_from_nothing_is_read_as_if_it_followed_a_newline():
    vocab = corpus.from_text("ROMEO:\nWhat light through yonder window breaks?\nJULIET:\nAy me.\n").vocab
    assert list(prime_for(vocab, np.zeros(0, np.int64))) == list(vocab.encode("\n"))
    seed = vocab.encode("To be")
    assert list(prime_for(vocab, seed)) == list(seed)
    no_newline = corpus.from_text("abc abc abcab").vocab
    assert list(prime_for(no_newline, np.zeros(0, np.int64))) == list(no_newline.encode(" "))
    model = small_model("lstm", vocab.size)
    start = prime_for(vocab, np.zeros(0, np.int64))
    from_nothing = list(generate(model, start, 30, np.random.default_rng(5)))
    after_newline = list(generate(model, vocab.encode("\n"), 30, np.random.default_rng(5)))
    assert from_nothing == after_newline  # the newline is read, not written
    assert len(from_nothing) == 30
