"""Every screen pinned at 80x24 (pytest-textual-snapshot; the SVGs are in __snapshots__/ beside this
file; after a deliberate change of a screen: pytest tests/tui/apps/test_snapshots.py --snapshot-update,
then look at the new pictures before committing them).

What makes each picture the same on every run:
- fixed seeds and a step budget: each picture is taken once training has finished and the last
  numbers are on screen (waited for by condition, never by sleeping);
- a clock that ticks by a fixed amount each time the training loop reads it (`ticking_clock`), so
  that the speed, the training time and the race's fair turns come out the same however busy the
  machine is; the watcher's wall clock is frozen at 12 s after the save it shows;
- one BLAS thread (the apps' own rule), so that sums come out in the same order;
- no blinking cursor, and no notices (they come and go on timers).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import TEXT, tiny_trainer, wait_for
from textual.widgets import Input

import core.race
import core.trainer
from core import TrainConfig, Trainer, checkpoint, corpus
from core.race import Race
from tui.apps.play import make_app as play
from tui.apps.race import RaceApp
from tui.apps.train import make_app
from tui.apps.watch import WatchApp
from tui.plain import follow
from tui.widgets.comparison import ComparisonView
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.help_screen import HelpScreen
from tui.widgets.next_chars import NextCharView
from tui.widgets.race_comparison import RaceComparison

SIZE = (80, 24)
TICK_S = 0.004  # what the ticking clock advances by each time it is read


@pytest.fixture
def ticking_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training loop's clock (core.trainer's and core.race's time.perf_counter) advances by
    TICK_S each time it is read. Only the training thread reads it once training starts, in the
    same order every run, so every time it measures is the same every run."""
    now = [0.0]

    def perf_counter() -> float:
        now[0] += TICK_S
        return now[0]

    clock = SimpleNamespace(perf_counter=perf_counter)
    monkeypatch.setattr(core.trainer, "time", clock)
    monkeypatch.setattr(core.race, "time", clock)


async def steady(pilot) -> None:
    """No blinking cursor and no notices: the picture is the screen and nothing that comes and goes."""
    for box in pilot.app.query(Input):
        box.cursor_blink = False
    pilot.app.clear_notifications()
    await pilot.pause()


STEPS = 100  # long enough for predictions worth looking at, short enough to take a second
SETTINGS = dict(text=TEXT * 4, hidden=32, lr=2e-2, eval_every=25)


def training_app():
    return make_app(tiny_trainer(steps=STEPS, **SETTINGS), corpus_label="tiny.txt")


async def trained(pilot) -> None:
    """The budget reached, and the final weights' numbers, predictions and next characters shown."""
    app = pilot.app
    await wait_for(pilot, lambda: app.state == "done", "the step budget")
    view = app.query_one(NextCharView)
    await wait_for(pilot, lambda: app.query_one(ComparisonView).step == STEPS, "the final predictions")
    await wait_for(pilot, lambda: view.source is app.trainer.snapshot, "the final next characters")


@pytest.mark.parametrize("view", ["screen", "help", "inside"])
def test_the_training_app(snap_compare, ticking_clock, view):
    """The training screen when its budget is spent; its help (f1); its inside view (f4)."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await trained(pilot)
        if view == "help":
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        if view == "inside":
            await pilot.press("f4")
            await wait_for(pilot, lambda: getattr(app.screen, "shown_step", None) == STEPS, "the activations")
            await pilot.press("right", "q")  # unit 2, the next quantity
        await steady(pilot)

    assert snap_compare(training_app(), terminal_size=SIZE, run_before=run_before)


def test_the_inside_view_of_a_gpt(snap_compare, ticking_clock):
    """A GPT's inside view (f4) when its budget is spent: layer 2, head 2, three characters back
    from the end of the evaluation text."""
    trainer = tiny_trainer(steps=STEPS, cell="gpt", **SETTINGS, heads=4, layers=2, block=32, seq_len=32)
    app = make_app(trainer, corpus_label="tiny.txt")

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        await pilot.press("f4")
        await wait_for(pilot, lambda: getattr(app.screen, "shown_step", None) == STEPS, "the attention weights")
        await pilot.press("down", "right_square_bracket", "left", "left", "left")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


RACERS = ("lstm", "gru", "rnn", "gpt")  # four racers at 80x24


def test_the_race(snap_compare, ticking_clock, tmp_path):
    trainers = [tiny_trainer(STEPS, tmp_path / f"tiny.{cell}.npz", cell, **SETTINGS) for cell in RACERS]
    app = RaceApp(Race(list(RACERS), trainers), corpus_label="tiny.txt")

    async def run_before(pilot) -> None:
        await wait_for(pilot, lambda: app.state == "done", "every model's budget")
        view = app.query_one(RaceComparison)
        await wait_for(pilot, lambda: set(view.steps.values()) == {STEPS}, "every model's final predictions")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def watched_run(folder: Path) -> Path:
    """A run on the text beside it, evaluated and saved twice, as `train --save-every` does."""
    (folder / "tiny.txt").write_text(TEXT * 6, encoding="utf-8")
    text = corpus.load(folder / "tiny.txt", val_fraction=0.3)
    config = TrainConfig(hidden=32, batch=4, seq_len=16, lr=2e-2, eval_every=0)
    trainer = Trainer(text, config, checkpoint=folder / "tiny.lstm.npz")
    for _ in range(2):
        for _ in range(STEPS // 2):
            trainer.train_step()
        trainer.evaluate()
        trainer.save()
    return folder / "tiny.lstm.npz"


def test_watch(snap_compare, ticking_clock, tmp_path):
    path = watched_run(tmp_path)
    first = follow.load(path)
    text, note = follow.find_corpus(first, path)
    app = WatchApp(path, first, text, note, None)
    app.clock = lambda: first.saved_at + 12.0  # "saved 12s ago", whenever the picture is taken

    async def run_before(pilot) -> None:
        view = app.query_one(NextCharView)
        await wait_for(pilot, lambda: app.query_one(ComparisonView).step == STEPS, "the save's predictions")
        await wait_for(pilot, lambda: view.source is app.loaded.model and view.candidates, "the next characters")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_play(snap_compare, tmp_path):
    """The play screen on the watched run's last save, with top-k at 5 (f5 three times) and a
    generation drawn from a seeded generator."""
    path = watched_run(tmp_path)
    ck = checkpoint.load(path)
    text, _ = follow.find_corpus(ck, path)
    app = play(path, ck, text, "tiny.txt")  # (the note names the text without the test's folder)
    app.generate_chars = 120

    async def run_before(pilot) -> None:
        view, panel = app.query_one(NextCharView), app.query_one(GeneratePanel)
        await pilot.press("f5", "f5", "f5")
        await wait_for(pilot, lambda: view.sampling.top_k == 5 and view.candidates, "the table at top-k 5")
        app.generation_rng = np.random.default_rng(0)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app.generated and not panel.running, "the generation")
        await steady(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
