"""--threads and --wavefront on the command line: the startup line, the checkpoint's record, a
resume on another arrangement, race per cell, eval's threads. No test here asserts a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_usage_error, run_cli, tiny_config

from core import Trainer, corpus
from core import checkpoint as ckpt_io

SMALL = ["--hidden", "16", "--batch", "4", "--seq-len", "16", "--seed", "3"]


def test_train_says_the_threads_it_was_given_and_the_checkpoint_keeps_them(tmp_path: Path):
    res = run_cli("train", "--steps", "3", "--threads", "2", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "lstm-tui: threads: 2 (--threads 2)" in res.stderr
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta["threads"] == 2


def test_train_measures_when_not_told(tmp_path: Path):
    res = run_cli("train", "--steps", "3", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("lstm-tui: threads: ")]
    chosen = int(line.split()[2])
    assert "one thread on this model" in line or "one on this model" in line or "core" in line, line
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta["threads"] == chosen


def test_a_resume_on_another_count_says_how_to_repeat_it_exactly(tmp_path: Path):
    assert run_cli("train", "--steps", "2", "--threads", "2", *SMALL, cwd=tmp_path).returncode == 0
    res = run_cli("train", "--resume", "hamlet.lstm.npz", "--steps", "2", "--threads", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "threads: 1 (--threads 1); the checkpoint trained on 2: --threads 2 would continue it" in res.stderr


def test_wavefront_on_the_command_line(tmp_path: Path):
    res = run_cli("train", "--steps", "2", "--threads", "2", "--wavefront", "--layers", "2", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "threads: 2, the layers as a wavefront (--threads 2 --wavefront" in res.stderr
    meta = ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta
    assert (meta["threads"], meta["wavefront"]) == (2, True)
    res = run_cli("train", "--resume", "hamlet.lstm.npz", "--steps", "1", "--threads", "2", cwd=tmp_path)
    assert "the checkpoint trained on 2 as a wavefront: --threads 2 --wavefront would continue it" in res.stderr
    one = run_cli("train", "--steps", "1", "--threads", "2", "--wavefront", *SMALL, cwd=tmp_path)
    assert "threads: 2 (--threads 2; no wavefront: it needs two layers or more" in one.stderr


def test_race_measures_each_cell(tmp_path: Path):
    res = run_cli("race", "--headless", "--steps", "2", "--threads", "2", "--cells", "lstm,rnn", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "lstm-tui: lstm threads: 2 (--threads 2)" in res.stderr
    assert "lstm-tui: rnn threads: 2 (--threads 2)" in res.stderr


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_threads_exit_2(bad: str, tmp_path: Path):
    assert_usage_error(run_cli("train", "--steps", "1", "--threads", bad, *SMALL, cwd=tmp_path), "--threads")


def test_eval_splits_a_long_text_over_threads_with_the_same_scores(tmp_path: Path):
    """`eval --threads 2` reads a text of several streams on two threads: the scores of one thread."""
    text = "".join(f"{i} green bottles hanging on the wall, and if one should fall...\n" for i in range(400))
    (tmp_path / "bottles.txt").write_text(text)
    c = corpus.load(tmp_path / "bottles.txt", val_fraction=0.0)
    Trainer(c, tiny_config(steps=5), checkpoint=tmp_path / "b.npz").save()
    out = {}
    for n in ("1", "2"):
        res = run_cli("eval", "b.npz", "bottles.txt", "--json", "--threads", n, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out[n] = json.loads(res.stdout)
    assert out["1"]["chars"] == out["2"]["chars"] == len(text) - 1
    assert out["2"]["loss"] == pytest.approx(out["1"]["loss"], rel=1e-5)
    assert out["2"]["accuracy"] == pytest.approx(out["1"]["accuracy"], abs=2 / len(text))


def test_evaluate_on_threads_equals_one_thread():
    from core.evaluate import evaluate, stream_count

    text = corpus.from_text("to be, or not to be, that is the question. " * 500, val_fraction=0.0)
    trainer = Trainer(text, tiny_config(layers=2))
    assert stream_count(len(text.ids) - 1) >= 4
    one = evaluate(trainer.model, text.ids, text.vocab)
    three = evaluate(trainer.model, text.ids, text.vocab, threads=3)
    assert three.loss == pytest.approx(one.loss, rel=1e-5) and three.n == one.n
