"""When a run scores its weights: early evaluations come soon and score growing samples, every
score names the step whose weights it scored, and a run ends with a score of its final weights."""

from __future__ import annotations

import math

from core import EvalReport, SaveReport, StepReport, TrainConfig, Trainer, corpus
from core.config import EVAL_INTERVAL, EVAL_MIN_CHARS

# 40,000 characters, half of them held out: a validation text of 20,000 characters, so the usual
# interval (EVAL_INTERVAL x 20,000 = 80,000 characters) is four times the first, short gap.
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(700))[:40_000]


def test_early_evaluations_come_soon_score_growing_samples_and_grow_to_the_usual_interval(tmp_path):
    c = corpus.from_text(TEXT, name="fox.txt", val_fraction=0.5)
    full = len(c.val_ids) - 1
    cfg = TrainConfig(hidden=8, batch=32, seq_len=64, steps=125)  # 2,048 characters a step
    t = Trainer(c, cfg, checkpoint=tmp_path / "fox.npz")
    assert t.eval_interval_chars == EVAL_INTERVAL * full > 2 * EVAL_MIN_CHARS
    reports = list(t.run())
    evals = [r for r in reports if isinstance(r, EvalReport)]
    # the gaps double from EVAL_MIN_CHARS (20,000 characters: 10 steps of 2,048) to the interval
    gaps = [EVAL_MIN_CHARS, 2 * EVAL_MIN_CHARS, t.eval_interval_chars, t.eval_interval_chars]
    steps, at = [0], 0
    for gap in gaps:
        at += math.ceil(gap / 2048)
        steps.append(at)
    assert [r.step for r in evals if not r.final] == steps == [0, 10, 30, 70, 110]
    # each scores gap / EVAL_INTERVAL characters until that is all of the text
    assert [r.chars for r in evals if not r.final] == [5_000, 5_000, 10_000, full, full]
    assert [r.sample for r in evals] == [True, True, True, False, False, False]
    # samples set no record, cut no rate and pick no best file: only full scores of trained weights do
    assert [r.best for r in evals if r.sample] == [False, False, False] and evals[3].best
    assert all(r.lr == cfg.lr for r in reports if isinstance(r, StepReport) and r.step <= evals[3].step)
    kept = [r.step for r in reports if isinstance(r, SaveReport) and r.kind == "best"]
    assert kept and set(kept) <= {r.step for r in evals if not r.sample}
    assert evals[-1].final and evals[-1].step == 125 and evals[-1].chars == full


def test_the_step_budget_ends_with_a_score_of_the_final_weights():
    c = corpus.from_text(TEXT[:3000])
    t = Trainer(c, TrainConfig(hidden=8, batch=4, seq_len=16, eval_every=10, steps=23))
    evals = [r for r in t.run() if isinstance(r, EvalReport)]
    assert [(r.step, r.final) for r in evals] == [(0, False), (10, False), (20, False), (23, True)]
    assert t.last_eval is evals[-1] and t.val_history[-1] == (23, evals[-1].val_loss)


def test_a_run_that_ends_on_a_scheduled_evaluation_is_not_scored_twice():
    c = corpus.from_text(TEXT[:3000])
    t = Trainer(c, TrainConfig(hidden=8, batch=4, seq_len=16, eval_every=10, steps=20))
    evals = [r for r in t.run() if isinstance(r, EvalReport)]
    assert [(r.step, r.final) for r in evals] == [(0, False), (10, False), (20, True)]


def test_with_evaluations_off_no_score_is_made():
    c = corpus.from_text(TEXT[:3000])
    t = Trainer(c, TrainConfig(hidden=8, batch=4, seq_len=16, eval_every=0, steps=7))
    assert not [r for r in t.run() if isinstance(r, EvalReport)]
