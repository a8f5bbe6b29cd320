"""The loss graph's levels: ln V, and the text's unigram and bigram levels (core.baselines, counted on
the training part, scored on the validation part), in the training app, the race and the watcher,
drawn as lines that differ without colour and named in the graph's title."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_race, wait_for
from rich.text import Text
from textual_hires_canvas import Canvas

from core import TrainConfig, Trainer, corpus
from core.baselines import Baselines, baselines
from tui.apps.race import RaceApp
from tui.apps.train import make_app
from tui.apps.watch import WatchApp
from tui.plain import follow
from tui.widgets.loss_chart import BIGRAM, LN_V, UNIGRAM, LossChart

TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.\n"
) * 4


def rows_with(chart: LossChart) -> dict[str, list[int]]:
    """For each level's glyph, the rows of the graph's drawing area that show it."""
    canvas = chart.query_one("#plot", Canvas)
    lines = [canvas.render_line(y).text for y in range(canvas.size.height)]
    return {glyph: [y for y, line in enumerate(lines) if glyph in line] for glyph, *_ in (LN_V, UNIGRAM, BIGRAM)}


def title(chart: LossChart) -> str:
    return Text.from_markup(str(chart.border_title)).plain


@pytest.mark.parametrize("size", [(80, 24), (100, 34)])
async def test_the_training_graph_draws_the_texts_levels_apart_without_colour(monkeypatch, size):
    monkeypatch.setenv("NO_COLOR", "1")
    trainer = Trainer(corpus.from_text(TEXT, name="tiny.txt", val_fraction=0.2), TrainConfig(hidden=16, steps=2))
    app = make_app(trainer)
    async with app.run_test(size=size) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: app.state == "done" and chart.levels is not None, "the levels")
        expected = baselines(trainer.corpus)
        assert chart.levels == expected
        assert expected.bigram < expected.unigram < expected.uniform  # (this text: each level below the last)
        await pilot.pause()
        head = title(chart)
        assert len(head) <= chart.outer_size.width - 2
        for glyph, _, long, short in (LN_V, UNIGRAM, BIGRAM):
            assert f"{glyph} {long}" in head or f"{glyph} {short}" in head
        if size[0] >= 100:
            assert "· unigram ─ bigram" in head and "⠒ raw ▀ smooth" in head
        rows = rows_with(chart)
        assert all(rows.values()), rows  # every level shows (sharing a row if it must)
        assert rows["╌"][0] <= rows["·"][0] <= rows["─"][0]  # ln V above the unigram level above the bigram's
        await pilot.press("ctrl+q")


async def test_levels_in_one_row_take_turns_instead_of_hiding_each_other():
    trainer = Trainer(corpus.from_text(TEXT, name="tiny.txt", val_fraction=0.2), TrainConfig(hidden=16, steps=2))
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: app.state == "done" and chart.levels is not None, "the levels")
        near = chart.baseline - 1e-6  # the same row as ln V, whatever the graph's height
        chart.set_baselines(Baselines(chart.baseline, near, near))
        await pilot.pause()
        rows = rows_with(chart)
        assert rows["╌"][0] == rows["·"][0] == rows["─"][0]
        line = chart.query_one("#plot", Canvas).render_line(rows["╌"][0]).text
        assert "╌·─╌·─" in line  # in turn, cell by cell
        await pilot.press("ctrl+q")


async def test_the_race_graph_names_the_levels(tmp_path):
    race = tiny_race(steps=3, tmp=tmp_path)
    app = RaceApp(race)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.levels is not None, "the levels")
        assert chart.levels == baselines(race.trainers[race.names[0]].corpus)
        await wait_for(pilot, lambda: app.state == "done", "every model's budget")
        head = title(chart)
        assert "╌ ln V · unigram ─ bigram" in head and len(head) <= 78
        await pilot.press("f6")  # the x axis named too: the words shorten to fit
        head = title(chart)
        assert "x: seconds" in head and len(head) <= 78
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the saves")


def saved(folder: Path, text: str, val_fraction: float = 0.2) -> Path:
    (folder / "tiny.txt").write_text(text, encoding="utf-8")
    trainer = Trainer(
        corpus.load(folder / "tiny.txt", val_fraction=val_fraction),
        TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=0),
        checkpoint=folder / "tiny.lstm.npz",
    )
    trainer.train_step()
    trainer.save()
    return folder / "tiny.lstm.npz"


async def test_the_watcher_draws_the_levels_of_the_text_it_finds_and_drops_them_for_another(tmp_path):
    path = saved(tmp_path, TEXT)
    first = follow.load(path)
    text, note = follow.find_corpus(first, path)
    app = WatchApp(path, first, text, note, poll_s=0.02)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.levels is not None, "the levels")
        assert chart.levels == baselines(text)  # the text split as the run split it
        assert "uni" in title(chart)
        other = tmp_path / "other"
        other.mkdir()
        saved(other, "0123456789 +-*/=\n" * 20).replace(path)  # the file now holds a model of another text
        await wait_for(pilot, lambda: chart.levels is None, "the levels gone")
        assert "uni" not in title(chart) and "ln V" in title(chart)
        await pilot.pause()
        assert rows_with(chart)["╌"] and not rows_with(chart)["─"]
        await pilot.press("ctrl+q")
