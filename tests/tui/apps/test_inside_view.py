"""The inside view: opens on a running app, switches unit/layer/quantity by key, renders at
80x24 and without colour; and the `inspect` rendering helpers it shares with the CLI."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_trainer, wait_for

from core import Trainer
from tui.apps.train import make_app
from tui.plain.render import SHADES, render_ansi, render_plain, render_shades
from tui.widgets.inside_screen import InsideScreen

TEXT = 'he said "to be, or not to be" [and] then "that is the question"\nwhether tis nobler\n' * 3


def tiny(cell: str = "lstm") -> Trainer:
    return tiny_trainer(cell=cell, text=TEXT, hidden=8, layers=2)


async def open_inside(app, pilot) -> InsideScreen:
    """f4, and the view's first activations; training is left paused (Pilot waits for the app to be
    idle after each key, and a busy trainer delays that)."""
    app.trainer.controls.pause()
    await pilot.press("f4")
    await wait_for(pilot, lambda: isinstance(app.screen, InsideScreen), "the inside view")
    screen = app.screen
    await wait_for(pilot, lambda: screen.acts is not None, "activations")
    return screen


async def finish(app, pilot) -> None:
    """End a test without leaving a training thread behind."""
    app.trainer.controls.stop()
    await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "workers to end")


async def test_inside_view_switches_unit_layer_quantity_by_key():
    app = make_app(tiny())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_inside(app, pilot)
        assert (screen.choice.layer, screen.choice.unit, screen.choice.quantity) == (0, 0, "cell")
        await pilot.press("right", "right")
        assert screen.choice.unit == 2
        await pilot.press("left")
        assert screen.choice.unit == 1
        await pilot.press("down")
        assert screen.choice.layer == 1
        await pilot.press("q")
        assert screen.choice.quantity == "hidden"
        before = screen.choice.feature
        await pilot.press("f")
        assert screen.choice.feature != before
        await pilot.press("r")
        best = screen.ranking()[0]
        assert (screen.choice.layer, screen.choice.unit) == (best.layer, best.unit)
        head = str(screen.query_one("#inside-head").render())
        assert f"unit {screen.choice.unit + 1}/8" in head and "hidden" in head
        # It follows training: a later evaluation brings activations from newer weights.
        first = screen.shown_step
        app.trainer.controls.resume()
        await wait_for(pilot, lambda: screen.shown_step > first, "a refresh after an evaluation")
        await pilot.press("escape")
        assert not isinstance(app.screen, InsideScreen)
        await finish(app, pilot)


async def test_inside_view_comes_back_on_the_unit_layer_and_quantity_it_was_left_on():
    app = make_app(tiny())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_inside(app, pilot)
        await pilot.press("right", "right", "down", "q")  # unit 3, layer 2, the hidden state
        await pilot.press("escape")
        screen = await open_inside(app, pilot)
        await pilot.pause()
        head = str(screen.query_one("#inside-head").render())
        assert "layer 2/2" in head and "unit 3/8" in head and "hidden" in head, head
        await finish(app, pilot)


async def test_inside_view_without_colour_shows_shades(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tiny())
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_inside(app, pilot)
        rendered = str(screen.query_one("#inside-text").render())
        assert 'he said "to be' in rendered  # the text itself, markup characters literal
        assert any(ch in rendered for ch in SHADES[1:])  # and its values as shade characters
        await finish(app, pilot)


async def test_inside_view_renders_in_a_small_terminal():
    app = make_app(tiny())
    async with app.run_test(size=(40, 12)) as pilot:
        screen = await open_inside(app, pilot)
        await pilot.press("right", "q", "f")
        assert screen.choice.unit == 1
        await finish(app, pilot)


@pytest.mark.parametrize(
    ("cell", "shown"), [("gru", ["hidden", "reset", "update", "candidate", "hidden"]), ("rnn", ["hidden", "hidden"])]
)
async def test_inside_view_shows_each_cells_own_quantities(cell, shown):
    app = make_app(tiny(cell))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_inside(app, pilot)
        seen = [screen.choice.quantity]
        for _ in shown[1:]:
            await pilot.press("q")
            seen.append(screen.choice.quantity)
        assert seen == shown
        assert set(screen.acts.values) == set(shown)
        head = str(screen.query_one("#inside-head").render())
        assert cell.upper() in head and shown[-1] in head
        await finish(app, pilot)


def test_render_helpers_cover_every_character():
    text = 'a "b"\nc'
    values = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.9, 0.1])
    ansi = render_ansi(text, values, "hidden")
    assert ansi.count("\x1b[48;2;") == len(text) and "↵" in ansi
    shades = render_shades(text, values, "hidden").splitlines()
    assert shades[0] == 'a "b"↵' and shades[1][0] == SHADES[0] and shades[1][4] == SHADES[-1]
    plain = render_plain(text, values).splitlines()
    assert len(plain) == len(text) and plain[1].endswith("-0.5000")
