"""`lstm-tui race` on the command line: one model per cell, the same settings, a checkpoint each."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import CELLS, LSTM_TUI, TIMEOUT, assert_usage_error
from helpers import run_cli as run

from core import checkpoint as ckpt_io


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A race of the three cells on small models: 100 steps of each with --json."""
    where = tmp_path_factory.mktemp("race")
    res = run(
        "race", "--cells", "lstm,gru,rnn", "--steps", "100", "--json", "--hidden", "32", "--eval-every", "50", cwd=where
    )
    assert res.returncode == 0, res.stderr
    return where, res


def test_race_json_has_every_cells_records_with_train_s_fields(
    raced: tuple[Path, subprocess.CompletedProcess], tmp_path: Path
) -> None:
    where, res = raced
    records = [json.loads(line) for line in res.stdout.splitlines()]
    by_cell = {c: [r for r in records if r["cell"] == c] for c in CELLS}
    for cell, rs in by_cell.items():
        assert [r["step"] for r in rs] == [0, 50, 100], cell
        assert rs[-1]["val_loss"] < rs[0]["val_loss"], cell  # each model learned
        assert rs[-1]["race_s"] > 0
    # the same fields as `train --json`, plus the cell and its share of time
    train = run("train", "--steps", "1", "--json", "--hidden", "8", "--eval-every", "1", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    train_keys = set(json.loads(train.stdout.splitlines()[0]))
    assert set(records[0]) == train_keys | {"cell", "race_s"}
    # the same start for every model: the untrained losses agree with a uniform guess
    assert {round(r["val_loss"], 1) for r in records if r["step"] == 0} == {round(np.log(32), 1)}


def test_race_saves_one_checkpoint_per_cell_that_sample_reads(raced: tuple[Path, subprocess.CompletedProcess]) -> None:
    where, res = raced
    for cell in CELLS:
        path = where / f"hamlet.{cell}.npz"
        ck = ckpt_io.load(path)
        assert ck.model.config.cell == cell
        assert ck.model.config.hidden == 32 and ck.meta["step"] == 100
        assert ck.meta["train"]["seed"] == 0 and ck.meta["train"]["lr"] == 0.01  # the same settings
        out = run("sample", path.name, "--length", "40", "--seed", "1", cwd=where)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout) >= 40
    assert "the same for every cell" in res.stderr


def test_race_headless_prints_a_table_of_the_models(tmp_path: Path) -> None:
    res = run("race", "--cells", "rnn,gru", "--steps", "20", "--headless", "--hidden", "8", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines() if line.split()[:1] in (["rnn"], ["gru"])]
    assert [r[0] for r in rows] == ["rnn", "gru"]
    assert all(r[1] == "20" for r in rows)  # steps
    assert {r[-1] for r in rows} == {"hamlet.rnn.npz", "hamlet.gru.npz"}
    assert not (tmp_path / "hamlet.lstm.npz").exists()


def test_race_checkpoint_option_names_each_file_after_its_cell(tmp_path: Path) -> None:
    res = run(
        "race",
        "--cells",
        "lstm,rnn",
        "--steps",
        "3",
        "--json",
        "--hidden",
        "8",
        "--checkpoint",
        "m/run.npz",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["run.lstm.npz", "run.rnn.npz"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cells", "lstm,gru,foo"], "unknown cell 'foo'"),
        (["--cells", "lstm,lstm"], "once"),
        (["--cells", ","], "--cells"),
        (["--cell", "gru"], "--cells"),
        (["--resume", "x.npz"], "--resume"),
        (["--hidden", "0"], "--hidden"),
        (["no-such-file.txt"], "no such file"),
        (["--checkpoint", "."], "is a directory"),
        (["--hidden", "100000"], "hidden"),
        (["--engine", "torch"], "numpy engine"),
    ],
)
def test_race_bad_input_is_one_line_and_exit_2(args: list[str], needle: str, tmp_path: Path) -> None:
    assert_usage_error(run("race", *args, "--json", cwd=tmp_path), needle)
    assert not list(tmp_path.iterdir())


def test_race_is_listed_with_its_help(tmp_path: Path) -> None:
    res = run("race", "--help", cwd=tmp_path)
    assert res.returncode == 0 and "--cells" in res.stdout and "--json" in res.stdout
    assert "lstm-tui race " in run("--help", cwd=tmp_path).stdout


def test_sigterm_stops_the_race_and_saves_every_model(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*LSTM_TUI, "race", "--json", "--hidden", "8", "--eval-every", "5"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())  # racing (no budget: until stopped)
        assert first["cell"] in CELLS
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    for cell in CELLS:
        assert ckpt_io.load(tmp_path / f"hamlet.{cell}.npz").model.config.cell == cell
