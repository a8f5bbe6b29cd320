"""The wheel carries what a non-editable install needs: the bundled corpus and the stylesheets.

Builds the wheel from this checkout without network access (`python -m build --no-isolation`,
hence `build` and `hatchling` in the test extra), looks inside it, then installs it into a
scratch folder and runs it from another directory, where the checkout cannot be imported.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import core

ROOT = Path(__file__).resolve().parent.parent
HAMLET_SHA256 = "d6bc132567a2fd9e83c9253a84692c166529ff7cf39d4b1c3b170be4e1573a58"
TIMEOUT = 300  # a ceiling so a hang fails; not a speed check

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not running from a source checkout")
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 0, f"building the wheel failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (built,) = out.glob("lstm_tui-*.whl")
    return built


def test_wheel_carries_the_corpus_stylesheets_and_script(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "core/assets/hamlet.txt" in names
        assert hashlib.sha256(z.read("core/assets/hamlet.txt")).hexdigest() == HAMLET_SHA256
        stylesheets = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tui").rglob("*.tcss")}
        assert "tui/apps/train.tcss" in stylesheets, (
            "the interface's stylesheet tui/apps/train.tcss is missing from the source"
        )
        assert stylesheets <= names, f"stylesheets missing from the wheel: {sorted(stylesheets - names)}"
        assert {"core/__init__.py", "tui/__init__.py", "tui/cli.py", "tui/apps/train.py"} <= names
        (entry_points,) = (n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "lstm-tui = tui.cli:main" in z.read(entry_points).decode()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        assert f"Version: {core.__version__}\n" in z.read(metadata).decode()
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]


def test_installed_wheel_finds_its_files_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    """pip installs the wheel (no dependencies: this environment has them) into a folder that is
    put first on the path; run from an empty directory, nothing can come from the checkout."""
    target, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 0, res.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = (
        "import core, tui, tui.cli; from pathlib import Path; from core.corpus import bundled_path;"
        "print(Path(core.__file__).resolve()); print(Path(tui.cli.__file__).resolve());"
        "print(bundled_path().resolve())"
    )
    res = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert res.returncode == 0, res.stderr
    core_file, cli_file, corpus = (Path(line) for line in res.stdout.splitlines())
    installed = target.resolve()
    for path in (core_file, cli_file, corpus):
        assert installed in path.parents, f"{path} does not come from the installed wheel"
    assert corpus == installed / "core" / "assets" / "hamlet.txt"
    assert (installed / "tui" / "apps" / "train.tcss").is_file()

    script = target / "bin" / "lstm-tui"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tui"]
    res = subprocess.run(
        [*command, "train", "--steps", "2", "--hidden", "8", "-q"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert res.returncode == 0, res.stderr
    assert "model saved to hamlet.lstm.npz" in res.stderr
    assert (elsewhere / "hamlet.lstm.npz").is_file()
