"""The learning rate's schedule (core/schedule.py: warm-up, cosine, a step or time budget) and
AdamW's decoupled weight decay, in the trainer: the rates each step takes, and exact resumes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_steps, tiny_config

from core import DoneReport, StepReport, TrainConfig, Trainer, corpus
from core.errors import ConfigError
from core.schedule import lr_factor


def nanogpt_get_lr(it: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> float:
    """nanoGPT's train.py get_lr, transcribed."""
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def test_the_cosine_is_nanogpts_get_lr():
    cfg = TrainConfig(lr=1e-3, warmup=100, schedule="cosine", min_lr=0.1, steps=2000)
    for it in [0, 1, 50, 99, 100, 101, 500, 1000, 1999, 2000]:
        assert cfg.lr * lr_factor(cfg, it) == pytest.approx(nanogpt_get_lr(it, 1e-3, 100, 2000, 1e-4), rel=1e-12)


def test_a_time_budget_sets_the_cosines_length_and_an_open_run_holds_the_rate():
    timed = TrainConfig(schedule="cosine", warmup=10, min_lr=0.1, seconds=100.0)
    assert lr_factor(timed, 0, 0.0) == pytest.approx(1 / 11)  # warming up
    assert lr_factor(timed, 50, 50.0) == pytest.approx(0.55)  # half way: the cosine's middle
    assert lr_factor(timed, 90, 100.0) == pytest.approx(0.1)  # the end: its floor
    assert lr_factor(timed, 95, 150.0) == pytest.approx(0.1)  # and after it
    both = TrainConfig(schedule="cosine", steps=100, seconds=1000.0, min_lr=0.0)
    assert lr_factor(both, 50, 900.0) == pytest.approx(0.5 * (1 + math.cos(0.9 * math.pi)))  # the nearer end
    open_ended = TrainConfig(schedule="cosine", warmup=10)
    assert lr_factor(open_ended, 4) == pytest.approx(5 / 11)
    assert [lr_factor(open_ended, it, 1e6) for it in (10, 1000, 10**6)] == [1.0, 1.0, 1.0]  # no end: no decay
    constant = TrainConfig(steps=100, warmup=3)
    assert [lr_factor(constant, it) for it in (0, 3, 99)] == [0.25, 1.0, 1.0]


def test_the_trainer_steps_at_the_scheduled_rate_and_a_stall_cut_scales_it():
    c = corpus.load(corpus.bundled_path())
    cfg = tiny_config(lr=4e-3, warmup=4, schedule="cosine", min_lr=0.25, steps=20)
    t = Trainer(c, cfg)
    rates = [r.lr for r in t.run() if isinstance(r, StepReport)]
    assert rates == pytest.approx([4e-3 * lr_factor(cfg, it) for it in range(20)], rel=1e-12)
    assert rates[0] == pytest.approx(4e-3 / 5) and rates[4] == pytest.approx(4e-3) and rates[-1] > 1e-3
    t.optimizer.lr = 2e-3  # the run's rate, as a cut on a stalled validation leaves it
    assert t.base_lr == 2e-3
    assert t.train_step().lr == pytest.approx(2e-3 * lr_factor(cfg, 20))  # the cosine's floor, of the cut rate
    assert t.optimizer.lr == 2e-3  # and between steps the run's rate again


def test_a_seconds_budget_ends_the_run():
    c = corpus.load(corpus.bundled_path())
    t = Trainer(c, tiny_config(seconds=0.05))
    reports = list(t.run())
    assert isinstance(reports[-1], DoneReport) and reports[-1].reason == "budget"
    assert t.elapsed_s >= 0.05 and t.step_count >= 1


@pytest.mark.parametrize("cell", ["gpt", "lstm"])
def test_resume_is_exact_through_the_warm_up_the_cosine_and_the_decay(tmp_path, cell):
    c = corpus.load(corpus.bundled_path())
    cfg = tiny_config(
        cell=cell, layers=2, dropout=0.2, seed=3, eval_every=4, steps=12,
        warmup=3, schedule="cosine", weight_decay=0.1, beta2=0.99, lr=3e-3,
    )  # fmt: skip
    straight = Trainer(c, cfg)
    expected = [(r.loss, r.lr) for r in straight.run() if isinstance(r, StepReport)]

    first = Trainer(c, cfg, checkpoint=tmp_path / "r.npz")
    got = []
    for r in first.run():
        if isinstance(r, StepReport):
            got.append((r.loss, r.lr))
            if r.step == 7:
                first.controls.stop()
    first.save()
    resumed = Trainer.resume(tmp_path / "r.npz", c, steps=5)  # the 5 steps left of the 12: the same cosine
    got += [(r.loss, r.lr) for r in resumed.run() if isinstance(r, StepReport)]
    assert got == expected
    for k, v in straight.model.params.items():
        assert np.array_equal(resumed.model.params[k], v), k


def test_weight_decay_shrinks_only_the_decayed_parameters():
    c = corpus.load(corpus.bundled_path())
    t = Trainer(c, tiny_config(cell="gpt", layers=1, weight_decay=0.5, lr=1e-2))
    assert set(t.optimizer.decayed) == {"wte", "wpe", "Wqkv0", "Wo0", "Wfc0", "Wproj0"}  # not LayerNorm's gains
    zero = {k: np.zeros_like(v) for k, v in t.model.params.items()}
    before = {k: v.copy() for k, v in t.model.params.items()}
    t.optimizer.step(t.model.params, zero)  # no gradient: only the decay moves anything
    for k, v in t.model.params.items():
        shrink = 1 - 1e-2 * 0.5 if k in t.optimizer.decayed else 1.0
        np.testing.assert_allclose(v, before[k] * shrink, rtol=1e-6, err_msg=k)


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        (dict(weight_decay=0.1, optimizer="sgd"), "--optimizer adam"),
        (dict(schedule="linear"), "unknown schedule"),
        (dict(min_lr=2.0), "min-lr"),
        (dict(beta2=1.0), "beta2"),
        (dict(seconds=-1.0), "seconds"),
        (dict(cell="gpt", block=32, seq_len=48), "longer than the block"),
        (dict(cell="gpt", hidden=30, heads=4), "--heads 4 must divide"),
    ],
)
def test_bad_settings_are_refused_in_one_line(settings, needle):
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**settings)


def test_a_cosine_with_an_end_takes_no_cut_on_a_stall_and_an_open_run_does():
    c = corpus.load(corpus.bundled_path())
    for settings, cut in ((dict(schedule="cosine", steps=100), False), (dict(schedule="cosine"), True)):
        t = Trainer(c, tiny_config(lr=0.01, lr_decay=0.5, lr_patience=1, **settings))
        t.train_step()  # (the untrained weights set no record)
        t.evaluate()
        second = t.evaluate()  # the same weights: no new best
        assert (second.lr_cut is not None) == cut and (t.base_lr < 0.01) == cut


def test_a_checkpoint_from_before_these_settings_loads_and_resumes(tmp_path):
    """A file written before ModelConfig had heads, block and bias, and TrainConfig the optimizer's
    and schedule's settings (and base_lr), loads and resumes with the defaults that keep its run."""
    import json

    from core import checkpoint as ckpt_io

    c = corpus.from_text("abcabcabc abcab")
    trainer = Trainer(c, tiny_config(layers=2), checkpoint=tmp_path / "new.npz")
    run_steps(trainer, 3)
    with np.load(trainer.save()) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    for key in ("heads", "block", "bias"):
        del meta["model"][key]
    for key in ("heads", "block", "bias", "beta2", "weight_decay", "warmup", "schedule", "min_lr", "seconds"):
        del meta["train"][key]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    ck = ckpt_io.load(tmp_path / "old.npz")
    assert ck.model.config == trainer.model.config
    resumed = Trainer.resume(tmp_path / "old.npz", c)
    assert resumed.base_lr == resumed.optimizer.lr == 1e-2 and resumed.config.schedule == "constant"
    assert [r.loss for r in run_steps(resumed, 2) if isinstance(r, StepReport)] == [
        r.loss for r in run_steps(trainer, 2) if isinstance(r, StepReport)
    ]
