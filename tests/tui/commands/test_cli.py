"""The `lstm-tui` command line, run as a user runs it: in subprocesses, from a scratch directory.

Every bad input must end with exit code 2 and one line `lstm-tui: error: ...` (no traceback);
headless training must save a checkpoint that `sample` reads; signals must save before exiting.
Tests wait on conditions (a line of output, a process ending), never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import select
import selectors
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import LSTM_TUI, TIMEOUT, assert_usage_error
from helpers import run_cli as run

import core
from core import checkpoint as ckpt_io

SMALL = ["--hidden", "32", "--seed", "3"]  # a model that trains a step in a few milliseconds


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def trained(workdir: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """A short headless run on the bundled corpus with --json, saved to the default checkpoint path."""
    res = run("train", "--steps", "40", "--eval-every", "10", "--json", *SMALL, cwd=workdir)
    assert res.returncode == 0, res.stderr
    return workdir / "hamlet.lstm.npz", res


# ------------------------------------------------------------------------ help
@pytest.mark.parametrize(
    ("command", "must_mention"),
    [
        (
            [],
            "--cell --hidden --layers --seq-len --batch --lr --optimizer --clip --dropout --steps --seed "
            "--val-fraction --lowercase --encoding --checkpoint --save-every --eval-every --resume "
            "train sample .lstm.npz",
        ),
        (["train"], "--cell --hidden --steps --json --log --checkpoint --resume --save-every --eval-every 130"),
        (["sample"], "CHECKPOINT --prime --length --temperature --top-k --top-p --seed"),
    ],
)
def test_help_on_every_command(command: list[str], must_mention: str, tmp_path: Path) -> None:
    res = run(*command, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: lstm-tui")
    for word in must_mention.split():
        assert word in res.stdout, f"{word} missing from `lstm-tui {' '.join(command)} --help`"
    assert res.stderr == ""


@pytest.mark.parametrize(("command", "module"), [("bench", "bench/measure.py"), ("inspect", "commands/inspect.py")])
def test_delegated_command_help_when_installed(command: str, module: str, tmp_path: Path) -> None:
    if not (Path(core.__file__).parent.parent / "tui" / module).exists():
        pytest.skip(f"tui/{module} is not part of this tree")
    res = run(command, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"usage: lstm-tui {command}")
    assert f"lstm-tui {command} " in run("--help", cwd=tmp_path).stdout  # listed among the commands


def test_version(tmp_path: Path) -> None:
    res = run("--version", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stdout.startswith(f"lstm-tui {core.__version__} ")


# --------------------------------------------------------------- train + sample
def test_train_writes_a_checkpoint_that_loads(trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    path, res = trained
    ck = ckpt_io.load(path)
    assert ck.meta["step"] == 40
    assert ck.model.config.hidden == 32
    assert "".join(ck.vocab.chars) == "".join(sorted(set(core.corpus.bundled_path().read_text("utf-8"))))
    assert f"model saved to {path.name}" in res.stderr
    # the start-of-run report: corpus, split note, the B x T actually used
    assert "866 characters, 32 distinct" in res.stderr
    assert "training and evaluating on the whole text" in res.stderr
    assert "windows: batch" in res.stderr


def test_train_json_lines_have_the_fields(trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    _, res = trained
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["step"] for r in records] == [0, 10, 20, 30, 40]
    for r in records:
        for key in ("step", "epoch", "elapsed_s", "train_loss", "val_loss", "accuracy", "chars_per_s"):
            assert isinstance(r[key], (int, float)), (key, r)
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["val_loss"] > 0 and r["train_loss"] > 0
    assert records[0]["val_loss"] == pytest.approx(np.log(32), rel=0.05)  # untrained: about uniform
    assert records[-1]["val_loss"] < records[0]["val_loss"]
    assert records[-1]["chars_per_s"] > 0 and records[-1]["elapsed_s"] > 0
    # the cold-start score beside the one-pass one, and the summary's line for it
    assert all(isinstance(r["val_cold_loss"], float) and r["val_cold_loss"] > 0 for r in records)
    assert records[-1]["val_cold_loss"] < records[0]["val_cold_loss"]
    assert "Cold start (each 64-character block read from a blank state): loss " in res.stderr
    assert "windows: batch 8 x seq-len 32, state carried; each starts blank with chance 0.1" in res.stderr


def test_train_summary_compares_truth_and_predictions(tmp_path: Path) -> None:
    res = run("train", "--steps", "5", "--checkpoint", "sub/dir/m.npz", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    truth = [line[len("  truth  ") :] for line in out.splitlines() if line.startswith("  truth  ")]
    model = [line[len("  model  ") :] for line in out.splitlines() if line.startswith("  model  ")]
    soliloquy = core.corpus.bundled_path().read_text("utf-8")
    assert "".join(truth) == soliloquy[1:].replace("\n", "↵")  # every next character, in order
    assert len("".join(model)) == len("".join(truth))
    assert "Accuracy: " in out
    assert (tmp_path / "sub" / "dir" / "m.npz").is_file()
    assert "model saved to sub/dir/m.npz" in res.stderr


def test_train_reports_windows_shrunk_for_a_short_text(tmp_path: Path) -> None:
    (tmp_path / "short.txt").write_text("the cat sat on the mat. " * 8, encoding="utf-8")  # 192 chars
    res = run("train", "short.txt", "--steps", "2", "--batch", "16", "--seq-len", "48", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "windows: batch 3 x seq-len 48 (asked for batch 16 x seq-len 48" in res.stderr
    assert "text too short to hold out 10%" in res.stderr
    assert "model saved to short.lstm.npz" in res.stderr


def test_resume_continues_the_step_count(workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    path, _ = trained
    res = run("train", "--resume", path.name, "--steps", "5", "--checkpoint", "resumed.npz", "-q", cwd=workdir)
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load(workdir / "resumed.npz").meta["step"] == 45
    assert ckpt_io.load(path).meta["step"] == 40  # the original is left alone


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_other_cells_train_sample_inspect_and_resume_from_the_command_line(cell: str, tmp_path: Path) -> None:
    res = run("train", "--cell", cell, "--steps", "20", "--eval-every", "10", "--json", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    path = tmp_path / f"hamlet.{cell}.npz"  # checkpoints are named by their model
    ck = ckpt_io.load(path)
    assert ck.model.config.cell == cell and ck.meta["train"]["cell"] == cell
    assert f"model: {cell.upper()}, 1 layer x 32 hidden" in res.stderr
    assert [json.loads(line)["step"] for line in res.stdout.splitlines()] == [0, 10, 20]

    out = run("sample", path.name, "--prime", "to be", "--length", "60", "--temperature", "0", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("to be") and len(out.stdout) == len("to be") + 60

    shown = run("inspect", path.name, "--chars", "40", "--plain", cwd=tmp_path)  # default: the hidden state
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout.splitlines()) == 40
    assert all(-1 < float(line.split("\t")[2]) < 1 for line in shown.stdout.splitlines())
    if cell == "gru":
        gate = run("inspect", path.name, "--chars", "40", "--plain", "--quantity", "update", cwd=tmp_path)
        assert gate.returncode == 0 and all(0 < float(line.split("\t")[2]) < 1 for line in gate.stdout.splitlines())
    assert_usage_error(run("inspect", path.name, "--quantity", "forget", cwd=tmp_path), "forget", cell.upper())

    more = run("train", "--resume", path.name, "--steps", "3", "-q", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert ckpt_io.load(path).meta["step"] == 23 and ckpt_io.load(path).model.config.cell == cell
    assert_usage_error(run("train", "--resume", path.name, "--cell", "lstm", cwd=tmp_path), "--cell lstm", cell)


def test_sample_streams_from_the_trained_model(
    workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]
) -> None:
    path, _ = trained
    a = run("sample", path.name, "--prime", "to be", "--length", "120", "--seed", "7", cwd=workdir)
    b = run("sample", path.name, "--prime", "to be", "--length", "120", "--seed", "7", cwd=workdir)
    c = run("sample", path.name, "--prime", "to be", "--length", "120", "--seed", "8", cwd=workdir)
    assert a.returncode == b.returncode == c.returncode == 0, a.stderr
    assert a.stdout.startswith("to be") and len(a.stdout) == len("to be") + 120
    assert a.stdout == b.stdout, "the same seed must give the same text"
    assert a.stdout != c.stdout, "another seed should give another text"
    assert a.stderr == ""


def test_sample_temperature_zero_ignores_the_seed(
    workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]
) -> None:
    path, _ = trained
    texts = {
        run(
            "sample", path.name, "--prime", "to", "--temperature", "0", "--length", "80", "--seed", s, cwd=workdir
        ).stdout
        for s in ("1", "2", "3")
    }
    assert len(texts) == 1 and len(texts.pop()) == 82


def test_sample_warns_about_unknown_prime_characters(
    workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]
) -> None:
    path, _ = trained
    res = run("sample", path.name, "--prime", "TO BE", "--length", "10", "--seed", "1", cwd=workdir)
    assert res.returncode == 0
    assert res.stdout.startswith(" ") and len(res.stdout) == 11  # only the space was known
    assert res.stderr.startswith("lstm-tui: warning: skipped 4 prime characters")
    assert "'T'" in res.stderr and "'O'" in res.stderr


def test_sample_into_a_closed_pipe_is_quiet(workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    path, _ = trained
    proc = subprocess.Popen(
        [*LSTM_TUI, "sample", path.name, "--length", "1000000"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()  # like `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=TIMEOUT) == 0
    assert "Traceback" not in err and "Error" not in err


# ------------------------------------------------------------------ bad input
def _write(folder: Path, name: str, data: bytes) -> str:
    (folder / name).write_bytes(data)
    return name


@pytest.fixture(scope="module")
def bad_files(workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]) -> Path:
    """A folder of unusable corpora and checkpoints."""
    folder = workdir / "bad"
    folder.mkdir()
    _write(folder, "empty.txt", b"")
    _write(folder, "spaces.txt", b"  \n\t \n")
    _write(folder, "one.txt", b"aaaaaaaa")
    _write(folder, "binary.txt", bytes(range(256)) * 4)
    _write(folder, "latin1.txt", "café au lait, s'il vous plaît. ".encode("latin-1") * 10)
    _write(folder, "other.txt", b"0123456789 +-*/ " * 10)
    (folder / "folder").mkdir()
    good = trained[0].read_bytes()
    _write(folder, "truncated.npz", good[: len(good) // 2])
    _write(folder, "garbage.npz", np.random.default_rng(0).bytes(4096))
    _write(folder, "text.npz", b"this is not a checkpoint\n")
    _write(folder, "pickle.npz", b"\x80\x04\x95" + b"\x00" * 32)
    np.savez(folder / "arrays.npz", x=np.arange(3))
    shutil.copy(trained[0], folder / "good.npz")
    return folder


BAD_INPUTS = [
    # corpora
    (["train", "missing.txt"], "no such file"),
    (["train", "empty.txt"], "empty"),
    (["train", "spaces.txt"], "whitespace"),
    (["train", "one.txt"], "distinct"),
    (["train", "binary.txt"], "binary"),
    (["train", "latin1.txt"], "--encoding"),
    (["train", "folder"], "directory"),
    (["train", "latin1.txt", "--encoding", "klingon"], "encoding"),
    (["trian"], "did you mean"),
    (["missing.txt"], "no such file"),  # the interface's command validates before any screen
    # settings
    (["train", "--hidden", "0"], "--hidden"),
    (["train", "--layers", "-1"], "--layers"),
    (["train", "--seq-len", "0"], "--seq-len"),
    (["train", "--batch", "abc"], "--batch"),
    (["train", "--hidden", "2.5"], "--hidden"),
    (["train", "--hidden", "100000"], "hidden"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--clip", "-1"], "--clip"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--val-fraction", "1.5"], "--val-fraction"),
    (["train", "--steps", "-5"], "--steps"),
    (["train", "--eval-every", "x"], "--eval-every"),
    (["train", "--save-every", "-1"], "--save-every"),
    (["train", "--optimizer", "rmsprop"], "--optimizer"),
    (["train", "--cell", "transformer"], "--cell"),
    (["bench", "--cell", "lstmx"], "--cell"),
    (["train", "--frobnicate"], "--frobnicate"),
    (["--hidden", "-3"], "--hidden"),
    # checkpoints to write or resume
    (["train", "--checkpoint", "folder"], "directory"),
    (["train", "--resume", "missing.npz"], "missing.npz"),
    (["train", "--resume", "truncated.npz"], "corrupt"),
    (["train", "other.txt", "--resume", "good.npz"], "characters the model never saw"),
    (["train", "--resume", "good.npz", "--hidden", "64"], "hidden"),
    # sample
    (["sample"], "CHECKPOINT"),
    (["sample", "missing.npz"], "no such checkpoint"),
    (["sample", "folder"], "directory"),
    (["sample", "truncated.npz"], "truncated"),
    (["sample", "garbage.npz"], "not an lstm-tui checkpoint"),
    (["sample", "text.npz"], "not an lstm-tui checkpoint"),
    (["sample", "pickle.npz"], "pickle"),
    (["sample", "arrays.npz"], "not an lstm-tui checkpoint"),
    (["sample", "good.npz", "--temperature", "-1"], "--temperature"),
    (["sample", "good.npz", "--temperature", "inf"], "--temperature"),
    (["sample", "good.npz", "--length", "0"], "--length"),
    (["sample", "good.npz", "--length", "ten"], "--length"),
    (["sample", "good.npz", "--top-k", "0"], "--top-k"),
    (["sample", "good.npz", "--top-p", "0"], "--top-p"),
    (["sample", "good.npz", "--top-p", "1.5"], "--top-p"),
    (["sample", "good.npz", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize(("args", "needle"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str, bad_files: Path) -> None:
    res = run(*args, *(SMALL[2:] if args[:1] == ["train"] else []), cwd=bad_files)
    assert_usage_error(res, needle)


def test_interface_needs_a_terminal(tmp_path: Path) -> None:
    """Good input but no terminal: a clear message instead of a garbled screen."""
    assert_usage_error(run("--steps", "1", cwd=tmp_path), "terminal", "lstm-tui train")


def test_train_log_appends_the_json_records_across_runs(tmp_path: Path) -> None:
    """--log FILE gets the records --json prints, one JSON object a line, appended run after run."""
    first = run("train", "--steps", "20", "--eval-every", "10", "--json", "--log", "run.jsonl", "--checkpoint", "m.npz",
                *SMALL, cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    lines = (tmp_path / "run.jsonl").read_text("utf-8").splitlines()
    assert lines == first.stdout.splitlines()  # the same records, byte for byte
    second = run("train", "--resume", "m.npz", "--steps", "10", "--eval-every", "5", "--log", "run.jsonl", "-q",
                 cwd=tmp_path)  # fmt: skip
    assert second.returncode == 0, second.stderr
    records = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text("utf-8").splitlines()]
    assert [r["step"] for r in records] == [0, 10, 20, 25, 30]  # the first run's, then the resumed run's
    assert all(r["val_loss"] > 0 and r["chars_per_s"] >= 0 for r in records)
    assert "{" not in second.stdout  # without --json no records on stdout, only the summary


def test_train_log_that_cannot_be_written_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    assert_usage_error(run("train", "--steps", "1", "--log", "adir", *SMALL, cwd=tmp_path), "cannot write the log adir")
    assert not list(tmp_path.glob("*.npz"))  # nothing trained, nothing saved


# ------------------------------------------------- headless commands stay headless
NO_TEXTUAL = """
import sys
from tui.cli import main
code = main(sys.argv[1:])
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print("UI MODULES:", ui, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--steps", "2", "-q", *SMALL],
        ["--help"],
        ["train", "--help"],
        ["missing.txt"],
        ["watch", "missing.npz"],
    ],
    ids=["train", "help", "train-help", "app-bad-input", "watch-bad-input"],
)
def test_headless_commands_do_not_import_textual(args: list[str], tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-c", NO_TEXTUAL, *args], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert res.returncode in (0, 2), res.stderr
    assert "UI MODULES: []" in res.stderr, res.stderr


def test_sample_does_not_import_textual(workdir: Path, trained: tuple[Path, subprocess.CompletedProcess]) -> None:
    args = ["sample", trained[0].name, "--length", "5"]
    res = subprocess.run(
        [sys.executable, "-c", NO_TEXTUAL, *args], cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert res.returncode == 0, res.stderr
    assert "UI MODULES: []" in res.stderr, res.stderr


# ------------------------------------------------------------ the command registry
REGISTRY = """
import importlib, sys
from tui.commands import COMMANDS, DEFAULT
for name, command in [(None, DEFAULT), *COMMANDS.items()]:
    module = importlib.import_module(command.module)
    parser = module.build_parser()
    assert callable(module.run), name
    assert parser.prog == ("lstm-tui " + name if name else "lstm-tui"), parser.prog
import tui.apps.palette
ui = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print("APP IMPORTED:", "tui.app" in sys.modules, "UI:", bool(ui))
"""


def test_every_registered_command_has_a_parser_and_a_runner_and_the_palette_needs_no_app(tmp_path: Path) -> None:
    """Each command module gives its parser and runner without importing the interface; the
    palette provider imports Textual but not the app (the app imports it, not the other way)."""
    res = subprocess.run(
        [sys.executable, "-c", REGISTRY], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert res.returncode == 0, res.stderr
    assert "APP IMPORTED: False UI: True" in res.stdout, res.stdout


def test_help_lists_every_registered_command(tmp_path: Path) -> None:
    from tui.commands import COMMANDS

    res = run("--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    for name, command in COMMANDS.items():
        assert f"lstm-tui {name} {command.usage}" in res.stdout
        assert command.summary in res.stdout


# -------------------------------------------------------------------- signals
def _wait_for_json_line(proc: subprocess.Popen, min_step: int) -> dict:
    """Read stdout until a JSON record with step >= min_step arrives (or the process ends)."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if not sel.select(timeout=1.0):
            assert proc.poll() is None, "lstm-tui train ended before training"
            continue
        line = proc.stdout.readline()
        assert line, "lstm-tui train closed stdout before training"
        record = json.loads(line)
        if record["step"] >= min_step:
            return record
    raise AssertionError("no progress from lstm-tui train")


@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP)],
    ids=["SIGINT", "SIGTERM", "SIGHUP"],
)
def test_signal_saves_then_exits(sig: signal.Signals, code: int, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*LSTM_TUI, "train", "--steps", "0", "--json", "--eval-every", "5", "--checkpoint", "run.npz", *SMALL],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        reached = _wait_for_json_line(proc, min_step=5)["step"]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "model saved to run.npz" in err
    ck = ckpt_io.load(tmp_path / "run.npz")
    assert ck.meta["step"] >= reached
    assert not list(tmp_path.glob(".run.npz.*")), "no temporary file left behind"


def test_train_survives_a_closed_stdout(tmp_path: Path) -> None:
    """`lstm-tui train --json | head -1`: the reader leaves, training finishes and saves anyway."""
    proc = subprocess.Popen(
        # 300 records of ~250 bytes overflow the pipe's buffer, so writes must fail after the close
        [*LSTM_TUI, "train", "--steps", "300", "--json", "--eval-every", "1", "--checkpoint", "p.npz", "--hidden", "8"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    json.loads(proc.stdout.readline())
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=TIMEOUT) == 0, err
    assert "Traceback" not in err
    assert ckpt_io.load(tmp_path / "p.npz").meta["step"] == 300


DIVERGE = """
import math, sys
import core.models
calls = 0
real = core.CharLSTM.loss_and_grads
def flaky(self, *a, **k):
    global calls
    calls += 1
    loss, grads, state = real(self, *a, **k)
    return (math.nan if calls == 8 else loss), grads, state
core.CharLSTM.loss_and_grads = flaky
from tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_divergence_saves_the_restored_weights_and_fails(tmp_path: Path) -> None:
    res = subprocess.run(
        # --threads 1: no measurement at the start, whose passes would count among the calls
        [sys.executable, "-c", DIVERGE, "train", "--steps", "50", "--checkpoint", "d.npz", "--threads", "1", *SMALL],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "lstm-tui: error: training diverged at step 7" in res.stderr
    ck = ckpt_io.load(tmp_path / "d.npz")
    assert ck.meta["step"] == 7
    assert all(np.isfinite(v).all() for v in ck.model.params.values())


# ------------------------------------------------------------------ the interface
@pytest.mark.parametrize(("how", "code"), [("ctrl+q", 0), ("SIGTERM", 128 + signal.SIGTERM)])
def test_interface_opens_in_a_terminal_and_quitting_saves(how: str, code: int, tmp_path: Path) -> None:
    """End to end through a pseudo-terminal: `lstm-tui` opens the app on the bundled corpus; ctrl+q
    (or SIGTERM) saves, and the command reports where the model went once the screen is restored."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    proc = subprocess.Popen(
        [*LSTM_TUI, *SMALL], cwd=tmp_path, stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env
    )
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
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                screen += chunk

    try:
        # Textual switches to the alternate screen, then puts the terminal in raw mode, then hides
        # the cursor. Keys sent before raw mode are eaten by the line discipline (ctrl+q is XON).
        read_until(lambda: b"\x1b[?25l" in screen.partition(b"\x1b[?1049h")[2], "the interface to open")
        if how == "ctrl+q":
            os.write(master, b"\x11")
        else:
            proc.send_signal(signal.SIGTERM)
        read_until(lambda: proc.poll() is not None, "the interface to quit")
        read_until(lambda: False, "the terminal to close")  # drain what is left, up to EOF
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = screen.decode("utf-8", "replace")
    assert proc.returncode == code, text[-2000:]
    assert "\x1b[?1049l" in text, "the terminal's normal screen was not restored"
    assert "Traceback" not in text
    assert "model saved to hamlet.lstm.npz" in text
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").model.config.hidden == 32


def test_interface_hang_up_saves_and_exits(tmp_path: Path) -> None:
    """The SSH connection drops: the terminal hangs up (SIGHUP to its session); the model is saved
    and the process ends instead of blocking on a terminal that is gone."""
    pty = pytest.importorskip("pty")

    master, slave = pty.openpty()
    # A new session whose controlling terminal is the pty, as for a login shell over SSH.
    take_terminal = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execv(sys.argv[1], sys.argv[1:])"
    )
    command = [sys.executable, "-c", take_terminal, *LSTM_TUI]  # LSTM_TUI[0] is an executable's path
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [*command, *SMALL],
        cwd=tmp_path,
        stdin=slave,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        while b"\x1b[?1049h" not in screen:  # wait for the interface to open
            assert time.monotonic() < deadline and proc.poll() is None, screen[-2000:]
            if select.select([master], [], [], 0.5)[0]:
                screen += os.read(master, 1 << 16)
    finally:
        os.close(master)  # hang up
    try:
        assert proc.wait(timeout=TIMEOUT) == 128 + signal.SIGHUP
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").model.config.hidden == 32
