"""The training screen with a GPT: it trains, evaluates, generates past its block, shows the next
characters, and the inside view shows its residual stream."""

from __future__ import annotations

from helpers import tiny_trainer, wait_for

from tui.apps.train import make_app
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.inside_screen import InsideScreen
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
        app.trainer.controls.pause()
        await pilot.press("f4")
        app.trainer.controls.resume()
        await wait_for(pilot, lambda: isinstance(app.screen, InsideScreen), "the inside view")
        screen = app.screen
        await wait_for(pilot, lambda: screen.acts is not None, "activations")
        assert screen.choice.quantity == "residual" and set(screen.acts.values) == {"residual"}
        assert screen.acts.hidden == 16 and screen.acts.layers == 2 and len(screen.acts.text) > 16
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
