"""Resuming a run: what it carries over and what starts afresh, how a model without its optimizer's
state is eased back in, another text (fine-tuning), a text using only some of the model's
characters, the steps a resumed run takes, and the speed it reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core import CheckpointError, StepReport, TrainConfig, Trainer, corpus
from core import checkpoint as ckpt_io
from core.config import LR_WARMUP_STEPS

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(100))


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"hidden": 16, "batch": 4, "seq_len": 16, "eval_every": 0, **kw})


def trained(tmp_path: Path, steps: int = 12, text: str = TEXT, name: str = "fox.txt", **kw) -> tuple[Trainer, Path]:
    t = Trainer(corpus.from_text(text, name=name), config(steps=steps, **kw), checkpoint=tmp_path / "run.npz")
    for _ in t.run():
        pass
    return t, t.save()


def without_optimizer(path: Path) -> Path:
    """The checkpoint as an import writes one: the weights, no optimizer state, no place in a text."""
    ck = ckpt_io.load(path)
    ck.arrays = {k: v for k, v in ck.arrays.items() if not k.startswith(("opt/", "history/"))}
    ck.meta.update(optimizer_t=0, step=0, corpus={"name": None, "size": 0, "split": False}, best_val=None)
    ck.meta["imported_from"] = "model.safetensors"
    return ckpt_io.save(path.with_name("imported.npz"), ck)


def test_steps_count_the_resumed_runs_own_steps(tmp_path):
    first, path = trained(tmp_path, steps=12)
    resumed = Trainer.resume(path, first.corpus, steps=5)
    steps = [r.step for r in resumed.run() if isinstance(r, StepReport)]
    assert steps == [13, 14, 15, 16, 17] and resumed.session_steps == 5
    forever = Trainer.resume(path, first.corpus)  # no steps: until stopped
    assert forever.config.steps == 0


def test_a_resumed_run_says_what_it_carried_over(tmp_path):
    first, path = trained(tmp_path)
    r = Trainer.resume(path, first.corpus).resumed
    assert r is not None and r.step == 12 and r.trained_on is None and r.warmup_steps == 0
    assert r.carried == ("weights", "optimizer state", "stream positions", "history") and r.fresh == ()
    other_shape = Trainer.resume(path, first.corpus, batch=2).resumed
    assert other_shape is not None and other_shape.fresh == ("stream positions",)


def test_a_model_without_optimizer_state_warms_its_learning_rate_up(tmp_path):
    first, path = trained(tmp_path, steps=30, lr=0.01)
    imported = without_optimizer(path)
    t = Trainer.resume(imported, first.corpus, steps=1)
    r = t.resumed
    assert r is not None and r.imported_from == "model.safetensors"
    assert "optimizer state" in r.fresh and "weights" in r.carried and r.warmup_steps == LR_WARMUP_STEPS
    before = {k: v.copy() for k, v in t.model.params.items()}
    reports = [x for x in t.run() if isinstance(x, StepReport)]
    # Adam's first step from fresh moments moves every weight by its rate (m/sqrt(v) = +-1): a rate of
    # 0.01 would move each of them by 0.01 at once; the warm-up's first step moves them by 1/100 of that
    moved = max(float(np.abs(t.model.params[k] - before[k]).max()) for k in before)
    assert reports[0].lr == pytest.approx(0.01 / LR_WARMUP_STEPS)
    assert 0.5 * 0.01 / LR_WARMUP_STEPS < moved < 1.01 * 0.01 / LR_WARMUP_STEPS  # (float32 weights)
    assert t.optimizer.lr == 0.01  # the rate itself is unchanged; saved mid-warm-up, the warm-up goes on
    again = Trainer.resume(t.save(tmp_path / "mid.npz"), first.corpus, steps=3)
    assert again.resumed is not None and again.resumed.warmup_steps == LR_WARMUP_STEPS - 1
    steps = [x.lr for x in again.run() if isinstance(x, StepReport)]
    assert steps == pytest.approx([0.01 * k / LR_WARMUP_STEPS for k in (2, 3, 4)])


def test_a_model_with_its_optimizer_state_takes_full_steps_at_once(tmp_path):
    first, path = trained(tmp_path, steps=30, lr=0.01)
    t = Trainer.resume(path, first.corpus, steps=2)
    assert [x.lr for x in t.run() if isinstance(x, StepReport)] == [0.01, 0.01]


def test_another_text_of_the_same_characters_is_fine_tuning_with_fresh_streams_and_scores(tmp_path):
    first, path = trained(tmp_path, steps=12, eval_every=5)
    assert first.val_history and np.isfinite(first.best_val)
    other = corpus.from_text(TEXT[::-1], name="xof.txt")
    t = Trainer.resume(path, other, steps=3)
    r = t.resumed
    assert r is not None and r.trained_on == "fox.txt"
    assert r.fresh == ("stream positions", "validation scores") and "optimizer state" in r.carried
    assert t.val_history == [] and t.best_val == np.inf and t.run_id != first.run_id
    assert t.batches.chars_seen == 0 and np.array_equal(t.batches.positions, t.restart().batches.positions)
    assert t.step_count == 12 and t.loss_history == first.loss_history  # the model's own record goes on


def test_a_text_using_only_some_of_the_models_characters_is_read_with_its_vocabulary(tmp_path):
    first, path = trained(tmp_path)
    subset = "the quick brown fox jumps over the lazy dog.\n" * 40  # no digits, no ':'
    text = corpus.from_text(subset, name="dog.txt")
    assert set(text.vocab.chars) < set(first.corpus.vocab.chars)
    t = Trainer.resume(path, text, steps=2)
    assert t.corpus.vocab == first.corpus.vocab and t.corpus.text() == subset
    assert t.resumed is not None and (t.resumed.text_chars, t.resumed.model_chars) == (
        text.vocab.size,
        first.corpus.vocab.size,
    )
    for _ in t.run():
        pass
    with pytest.raises(CheckpointError, match=r"2 characters the model never saw \('QZ'\)"):
        Trainer.resume(path, corpus.from_text(TEXT + "QZ", name="more.txt"))


def test_speed_is_measured_over_this_runs_steps_only(tmp_path):
    first, path = trained(tmp_path, steps=40)
    t = Trainer.resume(path, first.corpus, steps=3)
    reports = [r for r in t.run() if isinstance(r, StepReport)]
    assert t.session_steps == 3 and t.session_s == pytest.approx(t.elapsed_s - first.elapsed_s, rel=1e-9)
    assert t.session_chars_per_s == pytest.approx(3 * t.batch * t.seq_len / t.session_s)
    # the first step's speed is that step's alone, not a tenth of it blended with nothing
    dt = reports[0].elapsed_s - first.elapsed_s
    assert reports[0].chars_per_s == pytest.approx(t.batch * t.seq_len / dt, rel=1e-6)
