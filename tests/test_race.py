"""`lstm-tui race` and core.race: one model per cell, the same settings, fair turns, a checkpoint each."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import LSTM_TUI, TIMEOUT, assert_usage_error
from helpers import run_cli as run

import core
from core import checkpoint as ckpt_io
from core import race as race_mod
from core.race import Race, race_checkpoint

TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    "and by opposing end them.\n"
)
CELLS = ("lstm", "gru", "rnn")


def tiny_race(steps: int = 0, tmp: Path | None = None, cells=CELLS) -> Race:
    text = core.corpus.from_text(TEXT, name="tiny.txt")
    trainers = [
        core.Trainer(
            text,
            core.TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5, steps=steps, cell=cell),
            checkpoint=tmp / f"tiny.{cell}.npz" if tmp else None,
        )
        for cell in cells
    ]
    return Race(list(cells), trainers)


# ------------------------------------------------------------------ command line
@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """The issue's command, on small models: 100 steps of each cell with --json."""
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


# ------------------------------------------------------------------------ core
def test_race_gives_each_model_an_equal_share_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock where an LSTM step costs 4, a GRU step 2 and an RNN step 1, the race's turns go
    to whoever has had least time: after the same time the RNN has taken 4x the LSTM's steps."""
    race = tiny_race()
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(race_mod, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    for cost, trainer in zip((4.0, 2.0, 1.0), race.trainers.values(), strict=True):
        step = trainer.train_step

        def timed(step=step, cost=cost):
            clock.now += cost
            return step()

        trainer.train_step = timed  # type: ignore[method-assign]
    for _ in race.run():
        if sum(race.seconds.values()) >= 240:
            race.controls.stop()
    steps = {name: t.step_count for name, t in race.trainers.items()}
    assert steps["lstm"] == pytest.approx(20, abs=1)
    assert steps["gru"] == pytest.approx(40, abs=2)
    assert steps["rnn"] == pytest.approx(80, abs=4)
    assert max(race.seconds.values()) - min(race.seconds.values()) <= 4.0


def test_race_stops_each_model_at_its_budget_and_reports_done() -> None:
    race = tiny_race(steps=12)
    done = [rr.cell for rr in race.run() if isinstance(rr.report, core.DoneReport)]
    assert sorted(done) == sorted(CELLS)
    assert all(t.step_count == 12 for t in race.trainers.values())
    assert race.finished == dict.fromkeys(CELLS, "budget")


def test_race_saves_every_model_on_request_and_while_paused(tmp_path: Path) -> None:
    race = tiny_race(tmp=tmp_path)
    saves: list[tuple[str, core.SaveReport]] = []
    for rr in race.run():
        if isinstance(rr.report, core.SaveReport):
            saves.append((rr.cell, rr.report))
            if len(saves) == 3:
                race.controls.pause()
                race.controls.request_save(str(tmp_path / "copy.npz"))  # answered while paused
            if len(saves) == 6:
                race.controls.stop()
        elif race.step_count == 9 and not saves:
            race.controls.request_save()
    assert [c for c, _ in saves] == [*CELLS, *CELLS]
    assert all(r.error is None for _, r in saves)
    for cell in CELLS:
        assert ckpt_io.load(tmp_path / f"tiny.{cell}.npz").model.config.cell == cell
        assert ckpt_io.load(tmp_path / f"copy.{cell}.npz").model.config.cell == cell
    assert race_checkpoint("a/b.npz", "gru") == str(Path("a/b.gru.npz"))


def test_a_diverging_model_leaves_the_race_and_the_others_go_on() -> None:
    race = tiny_race(steps=20)
    gru = race.trainers["gru"]
    step = gru.train_step

    def poisoned():
        if gru.step_count == 5:
            gru.model.params["Wy"][0, 0] = np.nan
        return step()

    gru.train_step = poisoned  # type: ignore[method-assign]
    reports = list(race.run())
    assert race.finished["gru"] == "diverged"
    assert any(isinstance(rr.report, core.DivergedReport) and rr.cell == "gru" for rr in reports)
    assert race.trainers["lstm"].step_count == race.trainers["rnn"].step_count == 20
    assert all(np.isfinite(v).all() for v in gru.model.params.values())  # rolled back


def test_a_race_needs_its_own_controls_per_model() -> None:
    text = core.corpus.from_text(TEXT)
    shared = core.Controls()
    trainers = [core.Trainer(text, core.TrainConfig(hidden=8, cell=c), controls=shared) for c in ("lstm", "rnn")]
    with pytest.raises(ValueError, match="own Controls"):
        Race(["lstm", "rnn"], trainers)
