"""Shared by the tests: running the command line, waiting on the interface, finite differences."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

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
