"""`lstm-tui play CHECKPOINT`, and `lstm-tui CHECKPOINT` when the one argument is a saved model: bad
input is one line and exit 2 before any screen; a model is told from a text by the file's first
bytes, not its name; in a terminal the screen opens and ctrl+q closes it."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import LSTM_TUI, TIMEOUT, assert_usage_error
from helpers import run_cli as run

import tui.commands.play as play_command
from core import checkpoint
from tui.cli import main
from tui.commands import opens_a_model

TEXT = "To be, or not to be, that is the question.\n" * 20


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, saved_model) -> Path:
    """A folder with a good model (also under a text's name), and files that are not one."""
    folder = tmp_path_factory.mktemp("play")
    good = saved_model(hidden=16)
    shutil.copy(good, folder / "good.npz")
    shutil.copy(good, folder / "weights.txt")  # a model, whatever its name says
    (folder / "story.npz").write_text(TEXT, encoding="utf-8")  # a text, whatever its name says
    (folder / "notes.txt").write_text(TEXT, encoding="utf-8")
    data = good.read_bytes()
    (folder / "truncated.npz").write_bytes(data[: len(data) // 2])
    (folder / "garbage.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    np.savez(folder / "arrays.npz", x=np.arange(3))
    (folder / "folder").mkdir()
    return folder


BAD = [
    (["play"], "CHECKPOINT"),
    (["play", "missing.npz"], "no such checkpoint"),
    (["play", "folder"], "directory"),
    (["play", "truncated.npz"], "truncated"),
    (["play", "garbage.npz"], "not an lstm-tui checkpoint"),
    (["play", "arrays.npz"], "not an lstm-tui checkpoint"),
    (["play", "notes.txt"], "is a text, not a saved model: 'lstm-tui notes.txt' trains"),
    (["play", "story.npz"], "is a text, not a saved model"),
    (["play", "good.npz", "--temperature", "3"], "0 to 2"),
    (["play", "good.npz", "--temperature", "-1"], "--temperature"),
    (["play", "good.npz", "--top-k", "0"], "--top-k"),
    (["play", "good.npz", "--top-p", "1.5"], "--top-p"),
    (["play", "good.npz", "--corpus", "missing.txt"], "missing.txt"),
    (["play", "good.npz", "--hidden", "64"], "--hidden"),
    # the default command: a saved model given where a text goes
    (["weights.txt", "--hidden", "64"], "--hidden"),  # opened as a model: play takes no training options
    (["--steps", "3", "good.npz"], "good.npz is a saved model, not a text: 'lstm-tui play good.npz' opens it"),
    (["train", "good.npz"], "is a saved model, not a text"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2_before_any_screen(args, needle, files):
    assert_usage_error(run(*args, cwd=files), needle)


@pytest.mark.parametrize("args", [["play", "good.npz"], ["good.npz"], ["weights.txt"]])
def test_a_good_model_without_a_terminal_says_what_works_instead(args, files):
    """Checked, then refused for want of a terminal: so `lstm-tui weights.txt` went to play (the
    default command would have trained on it, or refused it as binary)."""
    assert_usage_error(run(*args, cwd=files), "'lstm-tui play' needs a terminal", f"lstm-tui sample {args[-1]}")


def test_a_text_named_like_a_model_is_trained_on_not_played(files):
    res = run("story.npz", "--steps", "1", cwd=files)
    assert_usage_error(res, "the interface needs a terminal")  # the training screen's check: it was read as a text


def test_a_model_is_told_by_its_first_bytes(files):
    assert opens_a_model(str(files / "good.npz")) and opens_a_model(str(files / "weights.txt"))
    assert opens_a_model(str(files / "arrays.npz"))  # an archive: play then says it is not a checkpoint
    for name in ("story.npz", "notes.txt", "missing.npz", "folder"):
        assert not opens_a_model(str(files / name))


def test_the_screen_gets_the_model_its_text_and_the_settings(files, monkeypatch, capsys):
    """What `run` hands the screen, with a terminal faked and the screen not run."""
    made = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(play_command, "run_interface", lambda app, saves: made.append((app, saves)) or 0)
    monkeypatch.chdir(files)
    args = ["weights.txt", "--prime", "to be", "--temperature", "0.5", "--top-k", "4", "--top-p", "0.9"]
    assert main([*args, "--length", "50"]) == 0
    ((app, saves),) = made
    assert saves is False  # nothing to save on quit
    assert app.path == Path("weights.txt") and app.prime == "to be" and app.generate_chars == 50
    assert (app.sampling.temperature, app.sampling.top_k, app.sampling.top_p) == (0.5, 4, 0.9)
    expected = checkpoint.load(files / "good.npz")
    for name, value in expected.model.params.items():
        np.testing.assert_array_equal(app.play_model().params[name], value)
    assert app.has_text and app.source.corpus.vocab == expected.vocab  # the bundled soliloquy, found


def test_help_and_the_command_list(files):
    res = run("play", "--help", cwd=files)
    assert res.returncode == 0 and res.stdout.startswith("usage: lstm-tui play CHECKPOINT")
    for word in "--prime --temperature --top-k --top-p --length --corpus".split():
        assert word in res.stdout
    assert "lstm-tui play CHECKPOINT" in run("--help", cwd=files).stdout


def test_opens_in_a_terminal_and_ctrl_q_closes_it(files):
    """End to end through a pseudo-terminal: `lstm-tui good.npz` opens the screen; ctrl+q closes it,
    the terminal is restored, exit code 0, and the file is as it was."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    before = (files / "good.npz").read_bytes()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    proc = subprocess.Popen([*LSTM_TUI, "good.npz"], cwd=files, stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                            env=env)  # fmt: skip
    os.close(slave)
    screen = b""

    def read_until(done, what: str) -> None:
        nonlocal screen
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:
                    return
                if not chunk:
                    return
                screen += chunk

    try:
        read_until(lambda: b"SAVED MODEL" in screen.partition(b"\x1b[?1049h")[2], "the screen to open")
        os.write(master, b"\x11")  # ctrl+q
        read_until(lambda: proc.poll() is not None, "the screen to close")
        read_until(lambda: False, "the terminal to close")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == 0, text[-2000:]
    assert "\x1b[?1049l" in text and "Traceback" not in text
    assert (files / "good.npz").read_bytes() == before
