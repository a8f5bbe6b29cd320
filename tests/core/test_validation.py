"""Honest validation: the whole validation part is scored, a chunk at a time, and the score the
run reports (and the best-model file is chosen on) is that model's score on the whole part."""

from __future__ import annotations

import importlib
import math
from dataclasses import replace

import numpy as np
import pytest

from core import (
    CharLSTM,
    ConfigError,
    EvalReport,
    ModelConfig,
    StepReport,
    TrainConfig,
    Trainer,
    corpus,
    evaluate,
    memory,
)
from core import checkpoint as ckpt_io
from core import config as trainer_mod
from core.best import best_path
from core.config import MIN_LR_FRACTION
from core.evaluate import Evaluator
from core.models import log_softmax

evaluate_mod = importlib.import_module("core.evaluate")  # (core.evaluate is also the function)
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(400))


def model64(vocab_size: int, seed: int = 0, layers: int = 2) -> CharLSTM:
    return CharLSTM.create(
        ModelConfig(vocab_size, hidden=12, layers=layers, dtype="float64"), np.random.default_rng(seed)
    )


def one_pass(model: CharLSTM, ids: np.ndarray) -> tuple[float, np.ndarray]:
    """The reference: the whole text as one (n, 1) window from a fresh state; loss and p(true)."""
    logits, _, _ = model.forward(np.asarray(ids[:-1], np.int64)[:, None], model.initial_state(1))
    logp = log_softmax(logits[:, 0, :])
    lp = logp[np.arange(len(ids) - 1), np.asarray(ids[1:], np.int64)]
    return float(-lp.mean()), np.exp(lp)


@pytest.mark.parametrize("chunk", [1, 7, 128, 10_000])
def test_chunked_validation_equals_one_pass(chunk):
    c = corpus.from_text(TEXT[:3000])
    model = model64(c.vocab.size)
    ids = c.ids[:1500]
    ev = Evaluator(model, ids, c.vocab, chunk=chunk, streams=1)
    pieces = 0
    while not ev.advance():
        pieces += 1
    assert pieces == math.ceil((len(ids) - 1) / chunk) - 1  # one chunk of `chunk` steps per call
    got = ev.result()
    loss, p_true = one_pass(model, ids)
    assert got.n == len(ids) - 1
    assert got.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(got.p_true, p_true, rtol=1e-12)


def test_parallel_streams_score_every_position_once():
    """With no memory at all (forget gate shut, no recurrent weights) every position's prediction
    depends on its own input only, so S side-by-side segments must give exactly the one-pass
    numbers: any position skipped, scored twice or matched to the wrong target would show."""
    c = corpus.from_text(TEXT)
    model = model64(c.vocab.size, layers=1)
    H = model.config.hidden
    model.params["Wh0"][...] = 0.0
    model.params["b0"][H : 2 * H] = -50.0  # f = 0: nothing carried in the cell
    ids = c.ids[:9001]
    loss, p_true = one_pass(model, ids)
    for streams in (2, 3, 7, 32):
        ev = Evaluator(model, ids, c.vocab, streams=streams, warmup=50, chunk=100)
        assert ev.streams == streams
        got = ev.result()
        assert got.n == 9000 and got.loss == pytest.approx(loss, rel=1e-12)
        np.testing.assert_allclose(got.p_true, p_true[: len(got.p_true)], rtol=1e-12)
        assert got.accuracy == pytest.approx(np.mean(got.correct))


def test_parallel_streams_with_warmup_match_one_sequence_on_a_trained_model():
    c = corpus.from_text(TEXT * 3)
    trainer = Trainer(c, TrainConfig(hidden=24, batch=8, seq_len=32, eval_every=0, steps=150, dtype="float64"))
    for _ in trainer.run():
        pass
    ids = c.ids[:20_001]
    exact, _ = one_pass(trainer.model, ids)
    fast = evaluate(trainer.model, ids, c.vocab, streams=8)
    assert abs(fast.loss - exact) < 1e-4
    cold = Evaluator(trainer.model, ids, c.vocab, streams=8, warmup=0).result()  # no warm-up: streams start cold
    assert abs(cold.loss - exact) > abs(fast.loss - exact)


def test_detail_is_kept_for_the_start_only_but_the_score_covers_everything(monkeypatch):
    monkeypatch.setattr(evaluate_mod, "DETAIL_CHARS", 100)
    c = corpus.from_text(TEXT)
    model = model64(c.vocab.size)
    ev = evaluate(model, c.ids[:2001], c.vocab, rng=np.random.default_rng(0))
    loss, p_true = one_pass(model, c.ids[:2001])
    assert ev.n == 2000 and len(ev.truth) == len(ev.predicted) == len(ev.p_true) == len(ev.sampled) == 100
    assert ev.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(ev.p_true, p_true[:100], rtol=1e-12)


def _train(tmp_path, steps=40, **kw) -> tuple[Trainer, list]:
    c = corpus.from_text(TEXT, name="fox.txt")
    assert c.split and len(c.val_ids) > 2000
    cfg = TrainConfig(hidden=16, batch=4, seq_len=16, steps=steps, **kw)
    trainer = Trainer(c, cfg, checkpoint=tmp_path / "fox.npz")
    return trainer, list(trainer.run())


def test_the_reported_score_is_the_whole_validation_part_and_picks_the_best_file(tmp_path):
    trainer, reports = _train(tmp_path, steps=60, eval_every=10)
    evals = [r for r in reports if isinstance(r, EvalReport)]
    assert len(evals) >= 4
    n_val = len(trainer.corpus.val_ids) - 1
    assert all(r.chars == n_val and not r.sample and r.on_validation for r in evals)
    best = min(evals, key=lambda r: r.val_loss)
    assert best.best and trainer.best_val == best.val_loss
    saved = ckpt_io.load(best_path(trainer.checkpoint))
    assert saved.meta["step"] == best.step and saved.meta["best_val"] == best.val_loss
    rescored = evaluate(saved.model, trainer.corpus.val_ids, trainer.corpus.vocab, streams=1)
    assert rescored.loss == pytest.approx(best.val_loss, abs=1e-6)  # float32 weights: same model, same text


def test_evaluation_is_read_between_training_steps(tmp_path, monkeypatch):
    """A long validation part is read a chunk per training step: steps go on while it is scored,
    and the report belongs to the step whose weights it scored."""
    monkeypatch.setattr(evaluate_mod, "SEGMENT_MIN", 10**9)  # one stream: many chunks
    trainer, reports = _train(tmp_path, steps=30, eval_every=0)
    assert not any(isinstance(r, EvalReport) for r in reports)
    c = trainer.corpus
    t2 = Trainer(c, TrainConfig(hidden=16, batch=4, seq_len=16, steps=40, eval_every=20))
    reports = list(t2.run())
    n = len(c.val_ids) - 1
    # the one-pass score's chunks, then the cold-start score's: blocks of 64, as many side by side
    # as make 128 x 32 positions
    chunks = math.ceil(n / 128) + math.ceil(math.ceil(n / 64) / (128 * 32 // 64))
    seen_steps = 0
    for r in reports:
        if isinstance(r, StepReport):
            seen_steps = r.step
        elif isinstance(r, EvalReport):
            if r.step == 0:
                assert seen_steps == chunks  # a chunk after each step: it finished while training went on
            elif r.step < 40:
                assert seen_steps > r.step
    # the one begun at the last step is finished before the run ends
    assert [r.step for r in reports if isinstance(r, EvalReport)] == [0, 20, 40]


def test_eval_chars_caps_and_says_it_is_a_sample(tmp_path):
    trainer, reports = _train(tmp_path, steps=10, eval_every=5, eval_chars=300)
    evals = [r for r in reports if isinstance(r, EvalReport)]
    assert evals and all(r.sample and r.chars == 300 for r in evals)


def test_default_schedule_evaluates_by_characters_trained():
    c = corpus.from_text(TEXT, name="fox.txt")
    t = Trainer(c, TrainConfig(hidden=16, batch=4, seq_len=16))
    interval = t.eval_interval_chars
    assert interval == max(trainer_mod.EVAL_MIN_CHARS, trainer_mod.EVAL_INTERVAL * (len(c.val_ids) - 1))
    steps_between = math.ceil(interval / (4 * 16))
    starts, final = [], []
    for r in t.run():
        if isinstance(r, EvalReport):
            (final if r.final else starts).append(r.step)
            if len(starts) == 3:
                t.controls.stop()
    assert starts == [0, steps_between, 2 * steps_between]
    assert final == [t.step_count]  # and the weights it stopped with


def test_learning_rate_is_cut_when_validation_stops_improving():
    c = corpus.from_text(TEXT)
    t = Trainer(c, TrainConfig(hidden=16, lr=0.01, lr_decay=0.5, lr_patience=2))
    assert not t.evaluate().best  # the untrained weights set no record
    t.train_step()
    first = t.evaluate()
    assert first.best and first.lr_cut is None
    assert t.evaluate().lr_cut is None and t.optimizer.lr == 0.01  # same weights: no better, patience 1 of 2
    third = t.evaluate()
    assert third.lr_cut == 0.005 and t.optimizer.lr == 0.005
    for _ in range(40):  # a run that has stopped learning: the cuts stop at a floor
        t.evaluate()
    assert t.optimizer.lr == pytest.approx(0.01 * MIN_LR_FRACTION)
    off = Trainer(c, TrainConfig(hidden=16, lr=0.01, lr_decay=1.0))
    off.train_step()
    for _ in range(4):
        off.evaluate()
    assert off.optimizer.lr == 0.01


def test_settings_are_judged_after_shrinking_to_the_text():
    small = corpus.from_text(TEXT[:11_000])
    t = Trainer(small, TrainConfig(seq_len=100_000, batch=512, hidden=16))  # shrinks to fit: fine
    assert t.seq_len <= 11_000 and t.batch * t.seq_len <= 11_000


def test_a_shape_that_cannot_fit_in_memory_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(memory, "machine_memory", lambda: 1 << 30)  # a 1 GiB machine
    big = corpus.from_text(TEXT * 40)
    with pytest.raises(ConfigError, match=r"batch 256 x seq-len 1000 x hidden 512 needs about [\d.]+ GiB") as e:
        Trainer(big, TrainConfig(seq_len=1000, batch=256, hidden=512))
    assert "\n" not in str(e.value)
    Trainer(big, TrainConfig(seq_len=100, batch=8, hidden=64))  # a sensible shape still trains


# ------------------------------------------------------------- weight averaging
def test_the_average_follows_its_definition_and_is_what_the_run_scores_and_saves(tmp_path):
    c = corpus.from_text(TEXT, name="fox.txt")
    cfg = TrainConfig(hidden=16, batch=4, seq_len=16, average=0.9, eval_every=0, dtype="float64")
    t = Trainer(c, cfg, checkpoint=tmp_path / "avg.npz")
    expected = {k: v.copy() for k, v in t.model.params.items()}
    for n in range(1, 26):
        t.train_step()
        keep = min(0.9, (1 + n) / (10 + n))
        for k, w in t.model.params.items():
            expected[k] = keep * expected[k] + (1 - keep) * w
    for k in expected:
        np.testing.assert_allclose(t.average[k], expected[k], rtol=1e-12, atol=1e-15)
        assert not np.allclose(t.average[k], t.model.params[k])  # the average lags the weights
    report = t.evaluate()
    assert report.val_loss == pytest.approx(evaluate(t.run_model(), c.val_ids, c.vocab).loss, rel=1e-12)
    t.publish()
    assert all(np.array_equal(t.snapshot.params[k], t.average[k]) for k in expected)  # generation reads it
    saved = ckpt_io.load(t.save())
    for k in expected:
        assert np.array_equal(saved.model.params[k], t.average[k])  # sample, eval, export get the average
        assert np.array_equal(saved.arrays[f"train/{k}"], t.model.params[k])  # resume gets the weights


def test_resume_with_averaging_is_exact(tmp_path):
    c = corpus.from_text(TEXT)
    cfg = TrainConfig(hidden=16, batch=4, seq_len=16, average=0.95, eval_every=0, steps=20)
    first = Trainer(c, cfg, checkpoint=tmp_path / "a.npz")
    for _ in first.run():
        pass
    first.save()
    resumed = Trainer.resume(tmp_path / "a.npz", c, steps=20)  # 20 more
    for _ in resumed.run():
        pass
    straight = Trainer(c, replace(cfg, steps=40))
    for _ in straight.run():
        pass
    for k in straight.model.params:
        assert np.array_equal(resumed.model.params[k], straight.model.params[k])
        assert np.array_equal(resumed.average[k], straight.average[k])
