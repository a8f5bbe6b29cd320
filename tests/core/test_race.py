"""core.race: fair turns in wall time, every model to its budget, a save of every model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import CELLS, TEXT, tiny_race

import core
from core import checkpoint as ckpt_io
from core import race as race_mod
from core.race import Race, race_checkpoint


def test_race_gives_each_model_an_equal_share_of_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a clock where an LSTM step costs 4, a GRU step 2 and an RNN step 1, the race's turns go
    to whoever has had least time: after the same time the RNN has taken 4x the LSTM's steps."""
    race = tiny_race(cells=("lstm", "gru", "rnn"))
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
    done = [rr.name for rr in race.run() if isinstance(rr.report, core.DoneReport)]
    assert sorted(done) == sorted(CELLS)
    assert all(t.step_count == 12 for t in race.trainers.values())
    assert race.finished == dict.fromkeys(CELLS, "budget")


def test_race_saves_every_model_on_request_and_while_paused(tmp_path: Path) -> None:
    race = tiny_race(tmp=tmp_path)
    saves: list[tuple[str, core.SaveReport]] = []
    for rr in race.run():
        if isinstance(rr.report, core.SaveReport):
            saves.append((rr.name, rr.report))
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
    assert any(isinstance(rr.report, core.DivergedReport) and rr.name == "gru" for rr in reports)
    assert race.trainers["lstm"].step_count == race.trainers["rnn"].step_count == 20
    assert all(np.isfinite(v).all() for v in gru.model.params.values())  # rolled back


def test_a_race_needs_its_own_controls_per_model() -> None:
    text = core.corpus.from_text(TEXT)
    shared = core.Controls()
    trainers = [core.Trainer(text, core.TrainConfig(hidden=8, cell=c), controls=shared) for c in ("lstm", "rnn")]
    with pytest.raises(ValueError, match="own Controls"):
        Race(["lstm", "rnn"], trainers)
