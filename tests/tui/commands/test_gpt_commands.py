"""`--cell gpt` wherever `--cell` goes: train, sample, eval, inspect, resume, the interface's
command line, and its bad input, each one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_usage_error
from helpers import run_cli as run

from core import checkpoint as ckpt_io
from core.models import log_softmax

SMALL = ["--layers", "2", "--hidden", "32", "--heads", "4", "--block", "16", "--seq-len", "16", "--batch", "4"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    where = tmp_path_factory.mktemp("gpt")
    res = run("train", "--cell", "gpt", *SMALL, "--steps", "20", "--eval-every", "10", "--json", cwd=where)
    assert res.returncode == 0, res.stderr
    return where / "hamlet.gpt.npz", res


def test_train_saves_a_gpt_with_its_shape_and_says_what_it_trains(trained):
    path, res = trained
    ck = ckpt_io.load(path)
    mc = ck.model.config
    assert (mc.cell, mc.layers, mc.hidden, mc.heads, mc.block, mc.bias) == ("gpt", 2, 32, 4, 16, False)
    assert ck.meta["train"]["heads"] == 4 and ck.meta["train"]["block"] == 16  # the checkpoint records them
    assert "model: GPT, 2 layers x width 32, 4 heads, block 16, " in res.stderr
    assert "windows: batch 4 x seq-len 16" in res.stderr
    assert [json.loads(line)["step"] for line in res.stdout.splitlines()] == [0, 10, 20]


def test_eval_scores_as_generation_predicts(trained):
    """eval's one pass slides the block over the text: the loss a character-at-a-time reading gives."""
    path, _ = trained
    where = path.parent
    text = where / "t.txt"
    text.write_text("to be, or not to be, that is the question: whether 'tis nobler in the mind to suffer")
    res = run("eval", path.name, "t.txt", "--json", cwd=where)
    assert res.returncode == 0, res.stderr
    score = json.loads(res.stdout)
    ck = ckpt_io.load(path)
    ids = ck.vocab.encode(text.read_text())
    stream = ck.model.stepper().stream()
    losses = [-log_softmax(stream.feed(int(i)).astype(np.float64))[j] for i, j in zip(ids[:-1], ids[1:], strict=True)]
    assert len(ids) - 1 > 16 and score["chars"] == len(ids) - 1  # longer than the block
    assert score["loss"] == pytest.approx(np.mean(losses), rel=1e-5)


def test_sample_inspect_and_resume(trained):
    path, _ = trained
    where = path.parent
    out = run("sample", path.name, "--prime", "to be", "--length", "60", "--temperature", "0", cwd=where)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("to be") and len(out.stdout) == len("to be") + 60
    shown = run("inspect", path.name, "--chars", "40", "--plain", "--layer", "2", "--unit", "32", cwd=where)
    assert shown.returncode == 0, shown.stderr  # the residual stream, over more than a block of text
    assert len(shown.stdout.splitlines()) == 40
    assert_usage_error(run("inspect", path.name, "--quantity", "forget", cwd=where), "forget", "GPT has residual")
    more = run("train", "--resume", path.name, "--steps", "3", "-q", cwd=where)
    assert more.returncode == 0, more.stderr
    assert ckpt_io.load(path).meta["step"] == 23
    assert_usage_error(run("train", "--resume", path.name, "--heads", "2", cwd=where), "--heads 2", "heads 4")


def test_the_fitted_gpt_and_what_it_says_it_chose(tmp_path: Path):
    res = run("train", "--cell", "gpt", "--steps", "2", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "chose a GPT of 2 layers x width 64, 4 heads, block 64, batch 8 x seq-len 64" in res.stderr
    mc = ckpt_io.load(tmp_path / "hamlet.gpt.npz").model.config
    assert (mc.layers, mc.hidden, mc.heads, mc.block) == (2, 64, 4, 64)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--heads", "3", "--hidden", "32"], "--heads 3 must divide"),
        (["--block", "16", "--seq-len", "32"], "longer than the block 16"),
        (["--engine", "torch"], "trains the recurrent models"),
        (["--weight-decay", "0.1", "--optimizer", "sgd"], "--optimizer adam"),
        (["--schedule", "linear"], "--schedule"),
        (["--min-lr", "2"], "--min-lr"),
        (["--seconds", "-1"], "--seconds"),
    ],
)
def test_bad_gpt_settings_are_one_line_errors(args: list[str], needle: str, tmp_path: Path):
    assert_usage_error(run("train", "--cell", "gpt", *args, "--steps", "1", cwd=tmp_path), needle)
    assert_usage_error(run("--cell", "gpt", *args, cwd=tmp_path), needle)  # the interface's command line too
    assert not list(tmp_path.iterdir())


def test_the_interface_command_line_builds_a_gpt_trainer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`lstm-tui --cell gpt ...` builds the same trainer as train does, before any screen is drawn."""
    from tui.commands import app
    from tui.commands.common import build_trainer

    monkeypatch.chdir(tmp_path)
    args = app.build_parser().parse_args(["--cell", "gpt", *SMALL, "--bias", "--warmup", "5", "--seconds", "30"])
    trainer, _ = build_trainer(args, lambda _note: None)
    mc, cfg = trainer.model.config, trainer.config
    assert (mc.cell, mc.heads, mc.block, mc.bias) == ("gpt", 4, 16, True)
    assert (cfg.warmup, cfg.seconds, cfg.weight_decay, cfg.schedule) == (5, 30.0, 0.0, "constant")  # a short text
    assert "bqkv0" in trainer.model.params
