"""`lstm-tui inspect` through a subprocess: colour, shades, plain values, ranking, bad input."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest
from helpers import assert_usage_error, run_cli

from core import TrainConfig, Trainer, corpus
from core.models.gpt import context_length
from tui.plain.render import UNREAD


def run(*args: str) -> subprocess.CompletedProcess:
    return run_cli("inspect", *args, cwd=Path.cwd())


@pytest.fixture(scope="module")
def model(saved_model) -> str:
    return str(saved_model(hidden=8, layers=2, steps=5))


def test_plain_values_one_line_per_character(model, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be, or")
    res = run(model, "--text", str(text), "--layer", "2", "--unit", "3", "--quantity", "forget", "--plain")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len("to be, or")
    assert lines[0].startswith("0\t't'\t")
    values = [float(line.split("\t")[2]) for line in lines]
    assert all(0 < v < 1 for v in values)  # a gate


def test_shades_when_not_a_terminal_and_ranking(model):
    res = run(model, "--chars", "120", "--feature", "vowel", "--width", "60")
    assert res.returncode == 0, res.stderr
    assert "\x1b[" not in res.stdout  # piped: no escape codes
    assert "to be, or not to be" in res.stdout
    assert any(ch in res.stdout for ch in "░▒▓█")
    assert "tracks 'vowel'" in res.stdout and res.stdout.count("r = ") == 5


def test_unknown_characters_are_shown_in_place_not_read_with_a_warning(model, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("To Be")  # capitals are not in the lowercased soliloquy
    res = run(model, "--text", str(text), "--plain")
    assert res.returncode == 0
    assert "the model never saw 2 of the text's characters ('TB'); they are shown uncoloured" in res.stderr
    lines = [line.split("\t") for line in res.stdout.splitlines()]
    assert [ch for _, ch, _ in lines] == ["'T'", "'o'", "' '", "'B'", "'e'"]  # the text as written
    assert [v == "not read" for _, _, v in lines] == [True, False, False, True, False]


def test_a_character_the_model_never_saw_keeps_its_place_in_the_shaded_text(tmp_path):
    """A model of a text without the em dash, reading the soliloquy: 'die—to sleep', not 'dieto sleep'."""
    (tmp_path / "plain.txt").write_text(corpus.bundled_path().read_text("utf-8").replace("—", "-"))
    trainer = Trainer(corpus.load(tmp_path / "plain.txt"), TrainConfig(hidden=8, steps=3, eval_every=0))
    for _ in trainer.run():
        pass
    path = trainer.save(tmp_path / "plain.npz")
    soliloquy = tmp_path / "soliloquy.txt"
    soliloquy.write_text(corpus.bundled_path().read_text("utf-8"))
    res = run(str(path), "--text", str(soliloquy), "--chars", "400", "--width", "400")
    assert res.returncode == 0, res.stderr
    rows = res.stdout.splitlines()[1:]
    text_row = next(i for i, row in enumerate(rows) if "die—to sleep" in row)
    assert "dieto" not in res.stdout
    under = rows[text_row + 1][rows[text_row].index("—")]
    assert under == UNREAD and "('—')" in res.stderr


def test_without_text_it_reads_the_models_own_training_text_and_says_so(tmp_path):
    (tmp_path / "own.txt").write_text("abc abd abe " * 50)
    trainer = Trainer(corpus.load(tmp_path / "own.txt"), TrainConfig(hidden=8, steps=3, eval_every=0))
    for _ in trainer.run():
        pass
    trainer.save(tmp_path / "own.npz")
    res = run_cli("inspect", "own.npz", "--chars", "40", "--plain", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    read = "".join(ast.literal_eval(line.split("\t")[1]) for line in res.stdout.splitlines())
    assert read == ("abc abd abe " * 4)[:40]
    assert (
        "lstm-tui: reading the first 40 characters of" in res.stderr
        and "own.txt, the text the model was trained on" in res.stderr
    )
    (tmp_path / "own.txt").rename(tmp_path / "gone.txt")
    res = run_cli("inspect", "own.npz", "--chars", "40", "--plain", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "the bundled soliloquy (own.txt, its training text, was not found; --text FILE)" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("--layer", "3"), "out of range"),
        (("--unit", "99"), "out of range"),
        (("--unit", "0"), "expected a whole number"),
        (("--quantity", "mood"), "invalid choice"),
    ],
)
def test_bad_settings_exit_2_with_one_line(model, args, message):
    assert_usage_error(run(model, *args), message)


def test_a_missing_or_corrupt_checkpoint_exits_2(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really")
    for path in (str(tmp_path / "missing.npz"), str(bad)):
        assert_usage_error(run(path))


# ------------------------------------------------------------------ a GPT's heads
@pytest.fixture(scope="module")
def gpt_model(saved_model) -> str:
    return str(saved_model(cell="gpt", hidden=16, layers=2, heads=2, block=16, seq_len=16, steps=3))


def test_a_head_at_a_character_lists_what_it_attends_to_heaviest_first(gpt_model, tmp_path):

    text = tmp_path / "t.txt"
    text.write_text("to be, or not to be, that is the question")
    res = run(gpt_model, "--text", str(text), "--layer", "2", "--head", "2", "--at", "30", "--plain")
    assert res.returncode == 0, res.stderr
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    weights = [float(w) for w, _, _ in rows]
    c = context_length(29, 16)  # past the block, the characters the cache's rule leaves it
    assert c == 14 and len(rows) == c
    assert weights == sorted(weights, reverse=True) and sum(weights) == pytest.approx(1.0, abs=1e-3)
    assert {int(i) for _, i, _ in rows} == set(range(30 - c + 1, 31))  # counted from 1
    assert all(ast.literal_eval(ch) == text.read_text()[int(i) - 1] for _, i, ch in rows)


def test_a_head_shown_with_shades_and_its_top_list(gpt_model, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("to be, or not")
    res = run(gpt_model, "--text", str(text), "--head", "1", "--top", "3")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("layer 1, head 1 of a GPT of 2 layers x 2 heads") and "at character 13 of 13" in lines[0]
    assert lines[1] == "to be, or not" and len(lines[2]) == 13 and set(lines[2]) <= set(" ░▒▓█")
    assert "█" in lines[2]  # the heaviest is full
    top = lines[lines.index(next(x for x in lines if x.startswith("the 3 it attends to most"))) + 1 :]
    assert len(top) == 3 and all("%" in line for line in top)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--head", "3"], "--head 3 is out of range: each layer has 2 head(s)"),
        (["--layer", "3", "--head", "1"], "--layer 3 is out of range"),
        (["--head", "1", "--at", "14"], "--at 14 is past the end of the text"),
        (["--at", "2"], "give the head too"),
        (["--head", "1", "--unit", "2"], "--unit is about units"),
        (["--head", "0"], "--head"),
    ],
)
def test_bad_heads_are_one_line_errors(gpt_model, tmp_path, args, says):
    text = tmp_path / "t.txt"
    text.write_text("to be, or not")
    assert_usage_error(run(gpt_model, "--text", str(text), *args), says)


def test_a_recurrent_model_has_no_heads(model):
    assert_usage_error(run(model, "--head", "1"), "--head: an LSTM has no attention heads")
    assert_usage_error(run(model, "--at", "3"), "--at: an LSTM has no attention heads")
