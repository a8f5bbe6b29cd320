"""The race screen, driven with Pilot on tiny models. Every wait polls a condition."""

from __future__ import annotations

import math

import pytest
from helpers import CELLS, tiny_race, wait_for
from rich.cells import cell_len

from core import checkpoint
from tui.apps.race import RaceApp
from tui.widgets.generate_panel import RaceGeneratePanel
from tui.widgets.loss_chart import SERIES_MARKERS, LossChart, val_letters
from tui.widgets.race_comparison import RaceComparison
from tui.widgets.race_stats import WIDE, RaceStats


async def finish(app: RaceApp, pilot) -> None:
    """End a test without leaving a training thread behind."""
    app.race.controls.stop()
    await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "the workers to end")


def stepped(stats: RaceStats, at_least: int) -> bool:
    return all(s is not None and s.step >= at_least for s in stats.steps.values())


@pytest.mark.parametrize("size", [(80, 24), (40, 12)])
async def test_the_race_screen_shows_every_model(size, tmp_path):
    app = RaceApp(tiny_race(tmp=tmp_path), corpus_label="tiny text")
    async with app.run_test(size=size) as pilot:
        stats, chart = app.query_one(RaceStats), app.query_one(LossChart)
        await wait_for(pilot, lambda: stepped(stats, 10), "every model's steps on the scoreboard")
        await wait_for(pilot, lambda: len(stats.evaluations) == len(CELLS), "every model's evaluation")
        for cell in CELLS:
            line = stats.line(cell)
            assert line.startswith(cell) and math.isfinite(float(line.split()[2]))  # its smoothed loss
        await pilot.pause()
        screen = app.screen.region
        for selector in ("#status", "#race-stats", "#seed", "Footer"):
            region = app.query_one(selector).region
            assert region.area > 0 and screen.contains_region(region), selector
        if size == (80, 24):
            await wait_for(
                pilot,
                lambda: isinstance(chart.drawn, dict) and all(len(chart.drawn[c].steps) >= 2 for c in CELLS),
                "every model's curve on the graph",
            )
            await wait_for(pilot, lambda: all(len(chart.drawn[c].val_steps) >= 1 for c in CELLS), "validation points")
            compare = app.query_one(RaceComparison)
            await wait_for(pilot, lambda: set(compare.evaluations) == set(CELLS), "every model's prediction")
            rendered = str(compare.render()).split("\n")
            assert rendered[0].startswith("truth  ") and [r.split()[0] for r in rendered[1:]] == list(CELLS)
            assert screen.contains_region(app.query_one("#chart").region)
            assert app.query_one("#chart").region.height >= 7  # the rule and six rows of graph
            for selector in ("#race-compare", "#generate", "#gen-scroll"):
                assert screen.contains_region(app.query_one(selector).region), selector
            assert app.query_one("#gen-scroll").region.height >= len(CELLS)  # a line of text per model
        else:
            assert not app.query_one("#chart").display  # the reduced layout: the graph goes first
        # generation from every model, for one seed
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: all(len(t) >= 30 for t in app.generated.values()), "text from every model")
        panel = app.query_one(RaceGeneratePanel)
        await wait_for(pilot, lambda: not panel.running, "the generation to end")
        assert set(app.generated) == set(CELLS)
        await finish(app, pilot)


async def test_pause_holds_every_model_and_save_writes_one_checkpoint_each(tmp_path):
    race = tiny_race(tmp=tmp_path)
    app = RaceApp(race)
    async with app.run_test(size=(80, 24)) as pilot:
        stats = app.query_one(RaceStats)
        await wait_for(pilot, lambda: stepped(stats, 5), "training")
        await pilot.press("f2")
        assert app.state == "paused" and race.controls.paused
        await pilot.press("ctrl+s")  # answered while paused, between steps
        await wait_for(pilot, lambda: len(app.saved_paths) == len(CELLS), "a save of every model")
        held = {c: t.step_count for c, t in race.trainers.items()}
        for cell in CELLS:
            ck = checkpoint.load(tmp_path / f"tiny.{cell}.npz")
            assert ck.model.config.cell == cell
            assert ck.meta["step"] == held[cell]  # saved as they were held
        for _ in range(20):
            await pilot.pause(0.01)
        assert {c: t.step_count for c, t in race.trainers.items()} == held  # still paused
        await pilot.press("f2")
        assert app.state == "running"
        await wait_for(pilot, lambda: all(race.trainers[c].step_count > held[c] for c in CELLS), "the race resumed")
        await finish(app, pilot)


async def test_temperature_keys_reach_every_sampler(tmp_path):
    app = RaceApp(tiny_race(tmp=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        before = app.sampling_temperature
        await pilot.press("f8", "f8")
        assert app.sampling_temperature == pytest.approx(before + 0.1)
        await pilot.press("f7")
        assert app.sampling_temperature == pytest.approx(before + 0.05)
        await finish(app, pilot)


async def test_quit_saves_every_model(tmp_path):
    race = tiny_race(tmp=tmp_path)
    app = RaceApp(race)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: stepped(app.query_one(RaceStats), 3), "training")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the saves on quit")
    assert set(app.saved_paths) == set(CELLS)
    assert not any(w.is_running for w in app.workers)
    for cell, path in app.saved_paths.items():
        ck = checkpoint.load(path)
        assert path == str(tmp_path / f"tiny.{cell}.npz")
        assert ck.model.config.cell == cell and ck.meta["step"] == race.trainers[cell].step_count


async def test_no_color_tells_the_series_apart_by_marker(monkeypatch, tmp_path):
    monkeypatch.setenv("NO_COLOR", "1")
    app = RaceApp(tiny_race(tmp=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        chart = app.query_one(LossChart)
        legend = str(chart.border_title)
        for marker, cell in zip(SERIES_MARKERS, CELLS, strict=False):
            assert f"{marker} {cell}" in legend
        letters = "".join(val_letters(CELLS).values())
        assert f"{letters} val" in legend and len(set(letters)) == len(CELLS)  # a letter each, none shared
        await wait_for(pilot, lambda: chart.redraws >= 3 and isinstance(chart.drawn, dict), "the graph drawn")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: all(app.generated.values()), "text from every model")
        await pilot.press("f1")
        await pilot.pause()
        await pilot.press("escape")
        await finish(app, pilot)


async def test_f6_plots_the_losses_against_seconds_and_back(tmp_path):
    app = RaceApp(tiny_race(tmp=tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: isinstance(chart.drawn, dict), "the graph drawn")
        await pilot.press("f6")
        assert app.by_seconds and "x: seconds" in str(chart.border_title)

        def drawn(kind: str) -> bool:
            frames = chart.drawn
            return set(frames or {}) == set(CELLS) and all(frames[c] is getattr(app._frames[c], kind) for c in CELLS)

        await wait_for(pilot, lambda: drawn("time_curve"), "the curves against seconds on the graph")
        frames = chart.drawn
        for cell in CELLS:  # the same losses, at x = the seconds each model had had by then
            assert len(frames[cell].steps) and frames[cell].steps[-1] <= app._frames[cell].seconds + 1e-9
        await pilot.press("f6")
        assert not app.by_seconds and "x: seconds" not in str(chart.border_title)
        await wait_for(pilot, lambda: drawn("curve"), "the curves against steps again")
        await finish(app, pilot)


async def test_the_header_names_every_model_and_every_score_its_step_at_80_columns(tmp_path):
    app = RaceApp(tiny_race(steps=12, tmp=tmp_path), corpus_label="tinyshakespeare.txt")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "every model's budget")
        await pilot.pause()
        header = str(app.query_one("#status").render())
        assert cell_len(header) <= 80 and "race LSTM · GRU · RNN" in header and "tinyshakespeare.txt" in header
        stats, compare = app.query_one(RaceStats), app.query_one(RaceComparison)
        lines = str(compare.render()).split("\n")[1:]
        for cell, line in zip(CELLS, lines, strict=True):
            step = compare.steps[cell]
            assert step == 12  # the final weights' scores
            assert line.startswith(cell) and line.endswith(f"% @{step:,}") and cell_len(line) <= 79  # one cell spare
            assert f"@{stats.evaluations[cell].step:<6,}" in stats.line(cell)
            # the cold-start score beside val at 80 columns, within the line's last cell
            cold = stats.evaluations[cell].cold_loss
            assert stats.size.width >= WIDE and cold is not None and f"{cold:7.3f}" in stats.line(cell)
            assert 1 + cell_len(stats.line(cell)) <= 79
        assert str(compare.render()).split("\n")[0].rstrip().endswith("text")  # which text was scored
        await finish(app, pilot)


async def test_the_footer_and_the_header_fit_80_columns_with_four_racers(tmp_path):
    app = RaceApp(tiny_race(steps=3, tmp=tmp_path), corpus_label="tinyshakespeare.txt")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "every model's budget")
        await pilot.pause()
        footer_keys = list(app.query_one("Footer").query("FooterKey"))
        palette = next(w for w in footer_keys if w.has_class("-command-palette"))
        keys = [w for w in footer_keys if w is not palette]
        assert {w.key for w in keys} == {b.key for b in app.BINDINGS if b.show}
        assert palette.region.right <= 80
        assert all(w.region.right <= palette.region.x for w in keys), "a key's label runs under the palette's"
        header = str(app.query_one("#status").render())
        assert cell_len(header) <= 80 and "race LSTM · GRU · RNN · GPT" in header
        await finish(app, pilot)
