"""`train --engine torch`: the same run as the NumPy engine's, with PyTorch doing the arithmetic.

Skipped where torch is not installed (tests/test_torch_missing.py covers that case).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, SCRIPT, TIMEOUT, assert_usage_error, run_cli

from core import StepReport, corpus
from core import checkpoint as ckpt_io
from core.trainer import TrainConfig, Trainer


def soliloquy():
    return corpus.load(corpus.bundled_path())


torch = pytest.importorskip("torch")
from tui.pytorch.engine import TorchEngine, torch_engine  # noqa: E402

TORCH = torch_engine("cpu")  # the factory of a Trainer whose arithmetic runs in PyTorch


def config(**kw) -> TrainConfig:
    base = {"hidden": 10, "layers": 2, "batch": 5, "seq_len": 40, "dtype": "float64", "eval_every": 0}
    return TrainConfig(**{**base, **kw})


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_step_gives_the_same_gradients_in_both_engines(cell: str):
    """Same weights, same window (with streams restarting mid-window) and same dropout masks."""
    text = soliloquy()
    cfg = config(dropout=0.3, clip=0.1, cell=cell)
    ours, theirs = Trainer(text, cfg), Trainer(text, cfg, engine=TORCH)
    for name, v in ours.model.params.items():
        assert np.array_equal(v, theirs.model.params[name])
    for _ in range(50):  # the first window in which a stream wraps around the text mid-window
        window = ours.batches.next()
        theirs.batches.next()
        if any(0 < t < ours.seq_len for t in window.resets):
            break
    assert any(0 < t < ours.seq_len for t in window.resets), window.resets
    state = ours.model.initial_state(ours.batch)
    rng = np.random.default_rng(1)
    state = tuple(tuple(rng.standard_normal(a.shape) * 0.5 for a in layer) for layer in state)  # a carried state
    ours.state = theirs.state = state
    theirs.engine.reload()  # (the carried state into PyTorch)
    masks = ours.model.dropout_masks(ours.seq_len, ours.batch, rng)
    loss_a, norm_a = ours.engine.learn(window, masks)
    loss_b, norm_b = theirs.engine.learn(window, masks)
    grads_a, grads_b = ours.engine._learned[0], theirs.engine.grads()
    assert abs(loss_a - loss_b) < 1e-12 and abs(norm_a - norm_b) < 1e-10
    assert set(grads_a) == set(grads_b)
    for name, g in grads_a.items():
        np.testing.assert_allclose(grads_b[name], g, rtol=1e-9, atol=1e-12, err_msg=name)
    assert norm_a > ours.config.clip  # so clipping ran, and by the same rule
    ours.engine.apply()
    theirs.engine.apply()
    for layer_a, layer_b in zip(ours.state, theirs.engine._tstate, strict=True):  # (h, c) or (h,) per layer
        assert len(layer_a) == len(layer_b) == (2 if cell == "lstm" else 1)
        for a, b in zip(layer_a, layer_b, strict=True):
            np.testing.assert_allclose(b.numpy(), a, atol=1e-12)


@pytest.mark.parametrize(
    ("optimizer", "cell", "average"),
    [
        ("adam", "lstm", 0.0),
        ("sgd", "lstm", 0.0),
        ("adagrad", "lstm", 0.0),
        ("adam", "gru", 0.0),
        ("adagrad", "rnn", 0.0),
        ("adam", "lstm", 0.9),  # the saved model is a moving average of the weights trained
        ("adam", "gru", 0.9),
    ],
)
def test_a_run_is_the_same_run_in_either_engine(optimizer: str, cell: str, average: float):
    """Steps, evaluations and the weights and moments saved after them agree to rounding."""
    text = soliloquy()
    cfg = config(optimizer=optimizer, steps=12, eval_every=6, dropout=0.1, cell=cell, average=average)
    ours, theirs = Trainer(text, cfg), Trainer(text, cfg, engine=TORCH)
    a, b = list(ours.run()), list(theirs.run())
    assert [type(r) for r in a] == [type(r) for r in b]
    for ra, rb in zip(a, b, strict=True):
        if isinstance(ra, StepReport):
            assert abs(ra.loss - rb.loss) < 1e-10 and abs(ra.grad_norm - rb.grad_norm) < 1e-9
    assert abs(ours.evaluate().val_loss - theirs.evaluate().val_loss) < 1e-10
    ca, cb = ours.to_checkpoint(), theirs.to_checkpoint()
    theirs._take_rollback()  # a save mid-run leaves the optimizer's state as it was (it can be kept again)
    assert set(theirs.engine._opt.state) == set(theirs.engine._trainable) or optimizer == "sgd"
    for name, v in ca.model.params.items():
        np.testing.assert_allclose(cb.model.params[name], v, atol=1e-10, err_msg=name)
    assert set(ca.arrays) == set(cb.arrays)
    for name, v in ca.arrays.items():
        np.testing.assert_allclose(cb.arrays[name], v, atol=1e-10, err_msg=name)
    assert ca.meta["optimizer_t"] == cb.meta["optimizer_t"] == 12
    assert any(name.startswith("train/") for name in ca.arrays) == (average > 0)  # so both were compared


def test_adamw_and_the_schedule_are_the_same_run_in_either_engine():
    """Decoupled decay of the matrices, beta2, a warm-up and a cosine: torch.optim.AdamW's steps are core's."""
    text = soliloquy()
    cfg = config(steps=10, eval_every=0, weight_decay=0.2, beta2=0.99, warmup=3, schedule="cosine", min_lr=0.2)
    ours, theirs = Trainer(text, cfg), Trainer(text, cfg, engine=TORCH)
    a = [(r.loss, r.lr) for r in ours.run() if isinstance(r, StepReport)]
    b = [(r.loss, r.lr) for r in theirs.run() if isinstance(r, StepReport)]
    assert [lr for _, lr in a] == [lr for _, lr in b]
    np.testing.assert_allclose([loss for loss, _ in b], [loss for loss, _ in a], atol=1e-10)
    theirs.engine.sync()
    for name, v in ours.model.params.items():
        np.testing.assert_allclose(theirs.model.params[name], v, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(("first", "average"), [("numpy", 0.0), ("torch", 0.0), ("torch", 0.9)])
def test_a_checkpoint_resumes_with_the_other_engine(tmp_path: Path, first: str, average: float):
    """10 steps in one engine, saved, 10 more in the other = 20 straight in the NumPy engine."""
    text = soliloquy()
    straight = Trainer(text, config(steps=20, average=average))
    for _ in straight.run():
        pass
    engines = {"numpy": None, "torch": TORCH}
    second = "torch" if first == "numpy" else "numpy"
    one = Trainer(text, config(steps=10, average=average), engine=engines[first])
    for _ in one.run():
        pass
    one.save(tmp_path / "half.npz")
    two = Trainer.resume(tmp_path / "half.npz", text, engine=engines[second], steps=10)  # 10 more
    assert isinstance(two.engine, TorchEngine) == (second == "torch") and two.step_count == 10
    for _ in two.run():
        pass
    assert two.step_count == 20
    done, want = two.to_checkpoint(), straight.to_checkpoint()
    for name, v in want.model.params.items():  # the run's model (the average, when averaging)
        np.testing.assert_allclose(done.model.params[name], v, atol=1e-10, err_msg=name)
    for name, v in want.arrays.items():  # moments, carried state, the weights trained, history
        np.testing.assert_allclose(done.arrays[name], v, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(two.loss_history, straight.loss_history, atol=1e-10)


def test_train_engine_torch_from_the_command_line_then_sample(tmp_path: Path):
    small = ["--hidden", "16", "--steps", "12", "--eval-every", "6", "--seed", "2", "--json"]
    res = run_cli("train", "--engine", "torch", "--device", "cpu", *small, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "engine: PyTorch" in res.stderr
    ref = run_cli("train", *small, "--checkpoint", "numpy.npz", cwd=tmp_path)  # the NumPy engine, same run
    records, expected = ([json.loads(line) for line in r.stdout.splitlines()] for r in (res, ref))
    assert [r["step"] for r in records] == [r["step"] for r in expected] and len(records) >= 2
    for got, want in zip(records, expected, strict=True):  # float32: the same to rounding
        assert abs(got["val_loss"] - want["val_loss"]) < 1e-4 and abs(got["train_loss"] - want["train_loss"]) < 1e-4
    res = run_cli("train", "--engine", "torch", "--resume", "hamlet.lstm.npz", "--steps", "3", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load(tmp_path / "hamlet.lstm.npz")
    assert ck.meta["step"] == 15 and len(ck.arrays["history/loss"]) == 15
    res = run_cli("sample", "hamlet.lstm.npz", "--length", "30", "--seed", "1", cwd=tmp_path)
    assert res.returncode == 0 and len(res.stdout) == 30, res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--engine", "torch", "--device", "tpu"), "--device"),
        (("--device", "cpu"), "--engine torch"),
        (("--engine", "jax"), "--engine"),
        (("--engine", "torch", "--device", "cuda"), "no CUDA device"),
        (("--engine", "torch", "--cell", "gpt"), "trains the recurrent models"),
        (("--engine", "torch", "--init-state", "learned"), "initial state is an input, not a weight"),
    ],
)
def test_bad_engine_or_device_is_a_one_line_error(tmp_path: Path, args: tuple[str, ...], needle: str):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert_usage_error(run_cli("train", *args, "--steps", "1", cwd=tmp_path), needle)


@pytest.mark.slow
def test_torchrun_two_processes_train_the_same_run_and_save_a_checkpoint_that_samples(tmp_path: Path):
    """2 gloo processes, each with half of the 5 streams (3 and 2), against one process with all 5."""
    common = ["train", "--engine", "torch", "--steps", "20", "--hidden", "12", "--batch", "5", "--dtype", "float64"]
    common += ["--eval-every", "10", "--seed", "4"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    if SCRIPT.exists():
        launcher += ["--no-python", str(SCRIPT)]  # as the README shows it
    else:
        launcher += ["-m", "tui"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run(
        [*launcher, *common, "--checkpoint", "two.npz", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    records = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert [r["step"] for r in records] == [0, 10, 20]  # rank 0 alone prints
    assert res.stderr.count("model saved to") == 1  # and saves
    res1 = run_cli(*common, "--checkpoint", "one.npz", "-q", cwd=tmp_path)
    assert res1.returncode == 0, res1.stderr
    two, one = ckpt_io.load(tmp_path / "two.npz"), ckpt_io.load(tmp_path / "one.npz")
    assert two.meta["step"] == one.meta["step"] == 20
    for name, v in one.model.params.items():
        np.testing.assert_allclose(two.model.params[name], v, atol=1e-10, err_msg=name)
    for name in ("state/h0", "state/c0", "data/positions"):
        np.testing.assert_allclose(two.arrays[name], one.arrays[name], atol=1e-10, err_msg=name)
    res = run_cli("sample", "two.npz", "--length", "40", "--seed", "1", cwd=tmp_path)
    assert res.returncode == 0 and len(res.stdout) == 40, res.stderr


async def test_the_interface_trains_with_the_torch_engine_and_resets_with_it(tmp_path: Path):
    """The same screen, the torch engine in the worker thread; ctrl+q saves what it trained."""
    from helpers import wait_for

    from tui.apps.train import make_app
    from tui.widgets.stats import StatsPanel

    text = corpus.from_text(soliloquy().text()[:300], name="tiny.txt")
    cfg = TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5)
    trainer = Trainer(text, cfg, checkpoint=tmp_path / "tiny.npz", engine=TORCH)
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: stats.step is not None and stats.step.step >= 8, "torch steps on screen")
        assert app.trainer.snapshot is not None and app.trainer.last_eval is not None
        app.action_reset_model()
        await wait_for(pilot, lambda: app.trainer is not trainer and app.trainer.step_count >= 2, "steps after reset")
        assert isinstance(app.trainer.engine, TorchEngine)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the save on quit")
    ck = ckpt_io.load(tmp_path / "tiny.npz")
    assert ck.meta["step"] >= 2 and ck.model.config.hidden == 16


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_after_the_same_step_and_rank_0_saves(tmp_path: Path):
    """torchrun passes SIGTERM on to its processes; they agree on a step to stop after, and rank 0 saves.
    (torchrun itself then exits 1 with its own report: that part is PyTorch's.)"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "tui"]
    args = ["train", "--engine", "torch", "--hidden", "12", "--eval-every", "5", "--json", "--checkpoint", "run.npz"]
    proc = subprocess.Popen(
        [*launcher, *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        records = [json.loads(proc.stdout.readline()) for _ in range(2)]  # two evaluations: it is training
        assert records[0]["step"] == 0 < records[1]["step"]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)  # a rank left waiting for another would hang here
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SIGTERM: stopping and saving" in err and err.count("model saved to run.npz") == 1, err[-2000:]
    ck = ckpt_io.load(tmp_path / "run.npz")
    assert ck.meta["step"] >= records[1]["step"] and len(ck.arrays["history/loss"]) == ck.meta["step"]


def test_divergence_rolls_back_to_the_last_finite_weights_and_pauses():
    from core import DivergedReport

    trainer = Trainer(soliloquy(), config(), engine=TORCH)
    for _ in range(3):
        trainer.train_step()
    trainer._take_rollback()
    kept = {k: v.copy() for k, v in trainer.to_checkpoint().model.params.items()}
    t = trainer.optimizer.t
    with torch.no_grad():
        trainer.engine._net.readout.bias[0] = float("inf")  # the next loss is not finite
    report = trainer.train_step()
    assert isinstance(report, DivergedReport) and trainer.controls.paused
    ck = trainer.to_checkpoint()
    for name, v in kept.items():
        np.testing.assert_array_equal(ck.model.params[name], v, err_msg=name)
    assert trainer.optimizer.t == t and not any(a.any() for layer in trainer.engine._tstate for a in layer)
    assert np.isfinite(trainer.snapshot.params["by"]).all()  # what other threads read is the restored model
    trainer.controls.resume()
    assert not isinstance(trainer.train_step(), DivergedReport)  # and training goes on from there
