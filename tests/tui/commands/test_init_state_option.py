"""--init-state on the command line: a recurrent model that learns its blank state, kept by its
checkpoint, refused where it cannot go (a GPT, a PyTorch export, a resume that would change it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import assert_usage_error
from helpers import run_cli as run

from core import checkpoint as ckpt_io


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRU trained 20 steps on the bundled text with a learned initial state."""
    where = tmp_path_factory.mktemp("learned")
    res = run("train", "--cell", "gru", "--init-state", "learned", "--steps", "20", "-q", cwd=where)
    assert res.returncode == 0, res.stderr
    return where / "hamlet.gru.npz"


def test_train_learns_the_initial_state_and_the_checkpoint_keeps_it(trained: Path):
    ck = ckpt_io.load(trained)
    assert ck.model.config.init_state == "learned"
    assert np.abs(ck.model.params["h00"]).max() > 0  # trained away from its zero start
    more = run("train", "--resume", trained.name, "--steps", "2", "-q", cwd=trained.parent)
    assert more.returncode == 0, more.stderr
    assert ckpt_io.load(trained).model.config.init_state == "learned"
    out = run("sample", trained.name, "--length", "20", "--temperature", "0", cwd=trained.parent)
    assert out.returncode == 0 and len(out.stdout) == 20, out.stderr


def test_a_resume_cannot_change_it(trained: Path):
    assert_usage_error(
        run("train", "--resume", trained.name, "--init-state", "zeros", "--steps", "1", cwd=trained.parent),
        "--init-state zeros does not match the checkpoint's init-state learned",
    )


def test_export_refuses_a_learned_initial_state(trained: Path):
    res = run("export", trained.name, "out.safetensors", cwd=trained.parent)
    assert_usage_error(res, "nn.GRU has no parameter for", "--init-state zeros")
    assert not (trained.parent / "out.safetensors").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--cell", "gpt", "--init-state", "learned"), "the GPT carries no state"),
        (("--init-state", "random"), "--init-state"),
    ],
)
def test_bad_init_state_is_a_one_line_error(tmp_path: Path, args: tuple[str, ...], needle: str):
    assert_usage_error(run("train", *args, "--steps", "1", cwd=tmp_path), needle)
    assert_usage_error(run(*args, cwd=tmp_path), needle)  # the interface's command line too
    assert not list(tmp_path.iterdir())


def test_a_race_gives_it_to_the_recurrent_cells_only(tmp_path: Path):
    res = run("race", "--cells", "rnn,gpt", "--init-state", "learned", "--steps", "3", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load(tmp_path / "hamlet.rnn.npz").model.config.init_state == "learned"
    assert ckpt_io.load(tmp_path / "hamlet.gpt.npz").model.config.init_state == "zeros"
