"""The training screen with a GPT: it trains, evaluates, generates past its block, shows the next
characters, and the inside view shows what each attention head attends to."""

from __future__ import annotations

import pytest
from helpers import tiny_trainer, wait_for

from tui.apps.train import make_app
from tui.widgets.attention_screen import AttentionScreen
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.next_chars import NextCharView
from tui.widgets.stats import StatsPanel

TEXT = 'he said "to be, or not to be" [and] then "that is the question"\nwhether tis nobler\n' * 3


async def test_the_screen_trains_generates_and_looks_inside_a_gpt():
    trainer = tiny_trainer(cell="gpt", text=TEXT, hidden=16, heads=2, layers=2, block=16, seq_len=16)
    app = make_app(trainer, corpus_label="tiny text")
    app.generate_chars = 60  # past the block of 16: the cache's rule for a full block runs
    async with app.run_test(size=(80, 24)) as pilot:
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: stats.evaluation is not None and stats.evaluation.step >= 5, "an evaluation")
        assert "GPT 2×16" in str(app.query_one("#status").render())
        panel = app.query_one(GeneratePanel)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: not panel.running and len(app.generated) >= 60, "generated text")
        app.query_one("#seed").value = "the "
        view = app.query_one(NextCharView)
        await wait_for(pilot, lambda: view.seed == "the " and view.candidates, "the next characters")
        app.trainer.controls.pause()  # (held while the view is checked: no new evaluation redraws it)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, AttentionScreen), "the inside view of the heads")
        screen = app.screen
        await wait_for(pilot, lambda: screen.att is not None, "the attention weights")
        att = screen.att
        assert (att.layers, att.heads) == (2, 2) and att.text == app.recent_text()  # the generated text
        assert len(att) == len(app.recent_text()) > 16  # past the block: each read in its own context
        head = str(screen.query_one("#attn-head").render())
        assert "GPT · 2 layers × 2 heads · width 16 · block 16" in head and "layer 1/2 · head 1/2" in head
        n = len(att)
        assert f"char {n}/{n}" in head and screen.position == n - 1  # the latest character
        await pilot.press("down", "right_square_bracket", "left", "left")
        assert (app.inside.layer, app.inside.head, screen.position) == (1, 1, n - 3)
        head = str(screen.query_one("#attn-head").render())
        assert "layer 2/2 · head 2/2" in head and f"char {n - 2}/{n}" in head
        side = str(screen.query_one("#attn-top").render()).splitlines()
        shown = [float(line.split("%")[0]) / 100 for line in side if "%" in line]
        top = screen.att.top(1, 1, n - 3, len(shown))  # (the weights on screen now)
        assert shown == pytest.approx([w for _, w in top], abs=0.006)  # the heaviest, as core ranks them
        assert shown == sorted(shown, reverse=True)
        await pilot.press("end")
        assert screen.position == n - 1 and app.inside.position is None
        await pilot.press("escape")
        await pilot.press("f4")  # it comes back as it was left
        await wait_for(pilot, lambda: isinstance(app.screen, AttentionScreen) and app.screen.att is not None, "again")
        assert (app.screen.choice.layer, app.screen.choice.head) == (1, 1)
        app.trainer.controls.resume()
        app.trainer.controls.stop()
        await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "workers to end")


async def test_watch_follows_a_gpt_run_and_generates_from_its_weights(tmp_path):
    from test_watch import Run, expected_text, generated, header, watcher

    from core import checkpoint

    run = Run(tmp_path, cell="gpt")
    run.train_and_save(10)
    app = watcher(run)
    app.generate_chars = 30
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "GPT 1×16" in header(app), "the GPT in the header")
        saved = checkpoint.load(run.path)
        text = await generated(app, pilot, "to be", 0.8, rng_seed=3)
        assert text == expected_text(saved.model, saved.vocab, "to be", 0.8, 3, 30)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "ctrl+q to quit")
