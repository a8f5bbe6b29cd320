"""The README's code runs as a user would paste it."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def test_the_readme_library_example_runs(tmp_path):
    """The README's 'Using the engine from Python' block, run as a user would paste it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    marker = "<!-- library-example: tests/test_readme.py runs this block -->"
    assert marker in readme
    block = readme.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loss_line, text_line = out.stdout.strip().splitlines()
    assert float(loss_line.split()[1]) < 0.1  # 300 steps learn the soliloquy
    assert text_line.startswith("to be, or ") and len(text_line) == len("to be, or ") + 80
    assert (tmp_path / "hamlet.npz").is_file()


def test_the_readme_stays_short():
    """The README is the front page: 250 lines at most; the long explanations live in docs/."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"
