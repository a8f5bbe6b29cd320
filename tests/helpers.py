"""Shared by the tests: running the command line, waiting on the interface, finite differences."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from core import TrainConfig, Trainer, corpus
from core.models import MODELS
from core.race import Race

ROOT = Path(__file__).resolve().parent.parent  # the source tree the tests run from
SCRIPT = Path(sys.executable).with_name("lstm-tui")
# The console script when installed (as users run it); `python -m tui` otherwise.
LSTM_TUI = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "tui"]
TIMEOUT = 120  # generous ceiling so a hung process fails instead of blocking CI; never a speed check


def run_cli(*args: str, cwd: Path, stdin: str | None = "", timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """`lstm-tui ARGS` in `cwd`, capturing text output; stdin is not a terminal."""
    return subprocess.run(
        [*LSTM_TUI, *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
    )


def assert_usage_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    """Exit code 2, one line `lstm-tui: error: ...` on stderr mentioning `needles`, no traceback."""
    err = res.stderr
    assert res.returncode == 2, f"exit {res.returncode}\nstdout: {res.stdout}\nstderr: {err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("lstm-tui: error: "), lines[0]
    assert len(lines[0]) > len("lstm-tui: error: ") + 10, "the message should say what is wrong"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert res.stdout == ""


def numeric_grad(f, arr: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of `arr` (changed in place)."""
    grad = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = f()
        arr[idx] = old - eps
        down = f()
        arr[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


POLLS = 3000  # generous: each poll lets the app process its messages and waits 10 ms


async def wait_for(pilot, condition, what: str, polls: int = POLLS) -> None:
    """Let the app run until `condition()` holds; fail naming `what` if it never does."""
    for _ in range(polls):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def record_notices(app) -> list[tuple[str, str]]:
    """Capture (title, message) of every notice the app shows (it still shows them)."""
    notes: list[tuple[str, str]] = []
    show = app.notify

    def notify(message: str, **kwargs) -> None:
        notes.append((kwargs.get("title", ""), message))
        show(message, **kwargs)

    app.notify = notify  # type: ignore[method-assign]
    return notes


# ------------------------------------------------------------------ tiny runs
def tiny_config(**kw) -> TrainConfig:
    """Settings small enough for a test: 16 units, 4 streams of 16 steps, no evaluations."""
    base = dict(hidden=16, batch=4, seq_len=16, eval_every=0, lr=1e-2)
    base.update(kw)
    return TrainConfig(**base)


def run_steps(trainer: Trainer, n: int) -> list:
    """Reports up to and including the n-th step from now."""
    target = trainer.step_count + n
    cfg = trainer.config
    trainer.config = TrainConfig.from_dict({**cfg.to_dict(), "steps": target})
    reports = list(trainer.run())
    trainer.config = cfg
    return reports


# The start of the soliloquy: a text small enough for the interface's tests to train on at once.
TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    "and by opposing end them.\n"
)
CELLS = tuple(MODELS)  # every registered model: tests of what every model must do run on each


def tiny_trainer(steps: int = 0, checkpoint: Path | None = None, cell: str = "lstm", text: str = TEXT, **kw) -> Trainer:
    """A trainer of a 16-unit model on `text`, evaluating every 5 steps."""
    settings = dict(hidden=16, batch=4, seq_len=16, eval_every=5, steps=steps, cell=cell)
    settings.update(kw)
    return Trainer(corpus.from_text(text, name="tiny.txt"), TrainConfig(**settings), checkpoint=checkpoint)


def tiny_race(steps: int = 0, tmp: Path | None = None, cells=CELLS) -> Race:
    """A race of tiny trainers, one per cell, each saving to tmp/tiny.<cell>.npz when `tmp` is given."""
    trainers = [tiny_trainer(steps, tmp / f"tiny.{cell}.npz" if tmp else None, cell) for cell in cells]
    return Race(list(cells), trainers)
