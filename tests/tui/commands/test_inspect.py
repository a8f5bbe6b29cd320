"""`lstm-tui inspect` through a subprocess: colour, shades, plain values, ranking, bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import assert_usage_error, run_cli


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


def test_unknown_characters_are_skipped_with_a_warning(model, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("To Be")  # capitals are not in the lowercased soliloquy
    res = run(model, "--text", str(text), "--plain")
    assert res.returncode == 0
    assert "skipped 2 character(s)" in res.stderr
    assert len(res.stdout.splitlines()) == 3  # "o", " ", "e"


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
