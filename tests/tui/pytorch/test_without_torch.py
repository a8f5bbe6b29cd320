"""Without PyTorch installed, `--engine torch` says how to install it, and nothing else breaks.

Runs whether or not torch is installed: a `torch` module that cannot be imported is put first on
the path, as on a machine without it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from helpers import LSTM_TUI, ROOT, TIMEOUT, assert_usage_error


def without_torch(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "no_torch"
    fake.mkdir(exist_ok=True)
    (fake / "torch.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), str(ROOT), os.environ.get("PYTHONPATH", "")]))


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*LSTM_TUI, *args], cwd=tmp_path, env=without_torch(tmp_path), capture_output=True, text=True, timeout=TIMEOUT
    )


@pytest.mark.parametrize("command", [["train"], []])
def test_engine_torch_without_torch_says_how_to_install_it(tmp_path: Path, command: list[str]):
    res = run(tmp_path, *command, "--engine", "torch", "--steps", "1")
    assert_usage_error(res, "pip install 'lstm-tui[torch]'")
    assert not list(tmp_path.glob("*.npz"))  # nothing trained


def test_export_import_and_the_numpy_engine_need_no_torch(tmp_path: Path):
    res = run(tmp_path, "train", "--hidden", "8", "--steps", "2", "-q", "--checkpoint", "m.npz")
    assert res.returncode == 0, res.stderr
    assert run(tmp_path, "export", "m.npz", "m.safetensors").returncode == 0
    res = run(tmp_path, "import", "m.safetensors", "back.npz")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "back.npz").exists()
