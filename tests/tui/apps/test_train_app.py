"""The app, driven with Pilot on a tiny model and corpus. Every wait polls a condition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import record_notices, tiny_trainer, wait_for
from rich.cells import cell_len
from textual.command import CommandList

from core import CharLSTM, TrainConfig, Trainer, checkpoint, corpus, evaluate
from core.sampling import TEMPERATURE
from tui.apps.train import LstmApp, make_app
from tui.plain.format import char_label, visible
from tui.widgets.comparison import RIGHT, WRONG, ComparisonView
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.loss_chart import LossChart
from tui.widgets.next_chars import NextCharView
from tui.widgets.stats import StatsPanel

TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    "and by opposing end them. [Exit]\n"
)


def tiny(steps: int = 0, checkpoint_path=None, cell: str = "lstm") -> Trainer:
    return tiny_trainer(steps, checkpoint_path, cell, text=TEXT)


async def finish(app: LstmApp, pilot) -> None:
    """End a test without leaving a training thread behind."""
    app.trainer.controls.stop()
    await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "the workers to end")


async def test_starts_trains_and_fills_every_panel():
    app = make_app(tiny(), corpus_label="tiny text")
    async with app.run_test(size=(80, 24)) as pilot:
        stats, chart, compare = app.query_one(StatsPanel), app.query_one(LossChart), app.query_one(ComparisonView)
        await wait_for(pilot, lambda: stats.step is not None and stats.step.step >= 12, "training steps on screen")
        await wait_for(pilot, lambda: chart.drawn is not None and len(chart.drawn.steps) >= 2, "points on the graph")
        await wait_for(pilot, lambda: len(chart.drawn.val_steps) >= 2, "validation points on the graph")
        assert app.state == "running"
        assert stats.evaluation is not None and math.isfinite(stats.evaluation.val_loss)
        await pilot.pause()
        lines = str(stats.render()).split("\n")  # label, then value, a line each
        assert [line[:6] for line in lines] == ["step  ", "loss  ", "ppl   ", "eval  ", "speed ", "lr    ", "steps "]
        assert lines[0].startswith("step  ") and " · epoch " in lines[0]
        assert " · cold " in lines[3] and lines[3].endswith(f"@{stats.evaluation.step:,}")  # the score's own step
        await wait_for(pilot, lambda: compare.evaluation is not None, "an evaluation in the comparison")
        ev = compare.evaluation
        assert ev.n > 0 and len(ev.predicted) == len(ev.truth)
        assert "[Exit]" in TEXT and "tiny text" in str(app.query_one("#status").render())
        await finish(app, pilot)


def f2_label(app: LstmApp) -> str:
    """What the footer says f2 does."""
    (label,) = [b.binding.description for b in app.active_bindings.values() if b.binding.key == "f2"]
    return label


async def test_pause_stops_steps_and_resume_restarts_them():
    app = make_app(tiny())
    async with app.run_test(size=(80, 24)) as pilot:
        trainer = app.trainer
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: trainer.step_count >= 3, "some steps")
        assert f2_label(app) == "Pause"
        await pilot.press("f2")
        assert app.state == "paused" and trainer.controls.paused
        assert f2_label(app) == "Resume"
        # The step in flight when pause was pressed finishes and is posted; then nothing moves.
        await wait_for(pilot, lambda: stats.step is not None and stats.step.step == trainer.step_count, "last step")
        paused_at = trainer.step_count
        for _ in range(30):
            await pilot.pause(0.01)
            assert trainer.step_count == paused_at
        await pilot.press("f2")
        assert app.state == "running"
        await wait_for(pilot, lambda: trainer.step_count > paused_at + 2, "steps after resume")
        await wait_for(pilot, lambda: stats.step.step > paused_at, "new steps on screen")
        await finish(app, pilot)


async def generate(app: LstmApp, pilot) -> str:
    runs = app._run_id
    await pilot.press("ctrl+g")
    panel = app.query_one(GeneratePanel)
    await wait_for(pilot, lambda: app._run_id > runs and not panel.running, "generation to finish")
    return app.generated


async def test_generate_temperature_and_unknown_seed_characters():
    app = make_app(tiny(steps=40))
    async with app.run_test(size=(80, 24)) as pilot:
        notes = record_notices(app)
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        seed = app.query_one("#seed")
        seed.value = ""
        await pilot.press(*"to be")
        assert seed.value == "to be"
        text = await generate(app, pilot)
        assert len(text) > 0 and set(text) <= set(TEXT)
        assert panel_text(app).startswith("to be")

        # Temperature 0 is greedy: the same text twice.
        app.query_one(GeneratePanel).temperature = 0.0
        await pilot.pause()
        assert app.sampling_temperature == 0.0
        first = await generate(app, pilot)
        second = await generate(app, pilot)
        assert first == second and set(app.generation_temperatures) == {0.0}

        # A key changes the temperature the sampler uses.
        await pilot.press("f8", "f8")
        assert app.query_one(GeneratePanel).temperature == pytest.approx(0.1)
        await generate(app, pilot)
        assert set(app.generation_temperatures) == {0.1}

        # A typed temperature too (snapped to the 0.05 grid, clamped to [0, 2]).
        await pilot.press("tab")
        assert app.focused is app.query_one("#temperature")
        await pilot.press(*"1.52")
        assert app.sampling_temperature == pytest.approx(1.5)
        await pilot.press("enter")  # enter in the temperature box generates
        await wait_for(
            pilot,
            lambda: not app.query_one(GeneratePanel).running and app.generation_temperatures,
            "generation at the typed temperature",
        )
        assert set(app.generation_temperatures) == {1.5}

        # Unknown characters are skipped with a notice, not a crash.
        seed.value = "to be€☃"
        await generate(app, pilot)
        assert any("unknown" in title and "€" in message for title, message in notes)
        assert len(app.generated) > 0
        await finish(app, pilot)


async def test_f3_selects_the_seed_so_that_typing_replaces_it():
    app = make_app(tiny(steps=5))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        seed = app.query_one("#seed")
        seed.value = "to be"
        await pilot.press("tab")  # away from the seed box, then back with f3
        assert app.focused is not seed
        await pilot.press("f3")
        assert app.focused is seed
        await pilot.press(*"or")
        assert seed.value == "or"
        await pilot.press("f3")  # already in the box: f3 selects again
        await pilot.press("x")
        assert seed.value == "x"
        await finish(app, pilot)


def panel_text(app: LstmApp) -> str:
    panel = app.query_one(GeneratePanel)
    return panel.run_seed + panel.output_text


async def test_next_character_view_sums_to_at_most_one_and_follows_temperature():
    app = make_app(tiny(steps=40))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        view = app.query_one(NextCharView)
        panel = app.query_one(GeneratePanel)
        final = app.trainer.snapshot
        await wait_for(pilot, lambda: view.source is final and view.temperature == panel.temperature, "a table")
        before = [c.p for c in view.candidates]
        assert 0 < sum(before) <= 1 + 1e-9
        rows = str(view.render()).split("\n")  # name, bar, percentage: a line per candidate
        assert len(rows) == min(len(view.candidates), view.content_size.height)
        for row, c in zip(rows, view.candidates, strict=False):
            assert row.startswith(char_label(c.char)) and row.endswith(f"{c.p:.1%}")
            assert cell_len(row) <= view.content_size.width
        assert before == sorted(before, reverse=True)
        assert view.temperature == TEMPERATURE  # where every screen starts, as `lstm-tui sample` does
        await pilot.press("f8", "f8", "f8", "f8")  # 1.0 -> 1.2: a flatter distribution
        await wait_for(pilot, lambda: view.temperature == pytest.approx(1.2), "the table at the new temperature")
        after = [c.p for c in view.candidates]
        assert 0 < sum(after) <= 1 + 1e-9
        assert after[0] < before[0]
        panel.temperature = 0.0  # greedy: all the mass on one character
        await wait_for(pilot, lambda: view.temperature == 0.0, "the greedy table")
        assert view.candidates[0].p == 1.0 and sum(c.p for c in view.candidates) == 1.0
        # Typing in the seed updates the table too.
        seed_before = view.seed
        await pilot.press("x")
        await wait_for(pilot, lambda: view.seed == seed_before + "x", "the table for the new seed")
        await finish(app, pilot)


@pytest.mark.parametrize("cell", ["gru", "rnn"])
async def test_other_cells_train_evaluate_generate_and_save_in_the_interface(tmp_path, cell):
    path = tmp_path / f"{cell}.npz"
    app = make_app(tiny(steps=30, checkpoint_path=path, cell=cell))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        assert f"{cell.upper()} 1×16" in str(app.query_one("#status").render())
        assert app.query_one(ComparisonView).evaluation is not None
        app.query_one(GeneratePanel).temperature = 0.0
        await pilot.pause()
        first = await generate(app, pilot)
        second = await generate(app, pilot)
        assert len(first) > 0 and first == second and set(first) <= set(TEXT)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the save on quit")
    loaded = checkpoint.load(path)
    assert loaded.model.config.cell == cell and loaded.meta["step"] == 30


async def test_quit_while_training_saves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "run.npz"
    app = make_app(tiny(checkpoint_path=path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.trainer.step_count >= 3, "training")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the save on quit")
    assert app.saved_path == str(path)
    assert not any(w.is_running for w in app.workers)
    loaded = checkpoint.load(path)
    assert loaded.meta["step"] >= 3
    resumed = Trainer.resume(path, corpus.from_text(TEXT, name="tiny.txt"))
    assert resumed.step_count == loaded.meta["step"]


async def test_quit_while_paused_also_saves(tmp_path):
    path = tmp_path / "paused.npz"
    app = make_app(tiny(checkpoint_path=path))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.trainer.step_count >= 2, "training")
        await pilot.press("f2")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.saved_path is not None, "the save on quit")
    assert checkpoint.load(path).meta["step"] >= 2


async def test_a_failed_save_on_quit_keeps_the_app_open(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    app = make_app(tiny(checkpoint_path=blocker / "run.npz"))  # a folder that cannot exist
    async with app.run_test(size=(80, 24)) as pilot:
        notes = record_notices(app)
        await wait_for(pilot, lambda: app.trainer.step_count >= 2, "training")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: any(t == "not saved" for t, _ in notes), "the failure notice")
        assert app.is_running and app.saved_path is None
        app.action_save(str(tmp_path / "elsewhere.npz"))  # what "Save as…" does with an answer
        await wait_for(pilot, lambda: app.last_save is not None, "the save elsewhere")
        await pilot.press("ctrl+q")  # the model is saved: quit at once
    assert app.saved_path == str(tmp_path / "elsewhere.npz")
    checkpoint.load(app.saved_path)


async def test_resume_shows_the_earlier_loss_history(tmp_path):
    path = tmp_path / "earlier.npz"
    first = tiny(checkpoint_path=path)
    for _ in first.run():
        if first.step_count >= 25:
            first.controls.stop()
    first.save()
    resumed = Trainer.resume(path, corpus.from_text(TEXT, name="tiny.txt"))
    resumed.controls.pause()  # nothing new: the graph shows only the history
    app = make_app(resumed)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.drawn is not None, "the first drawing")
        frame = chart.drawn
        assert frame.steps[0] == 1 and frame.steps[-1] == 25
        np.testing.assert_allclose(frame.raw, first.loss_history, rtol=1e-6)
        assert list(frame.val_steps) == [s for s, _ in first.val_history]
        stats = app.query_one(StatsPanel)
        assert stats.start_step == 25 and stats.last_val == first.val_history[-1]
        await finish(app, pilot)


@pytest.mark.parametrize("size", [(80, 24), (40, 12), (120, 40)])
async def test_renders_at_size_and_reflows(size):
    app = make_app(tiny())
    async with app.run_test(size=size) as pilot:
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: stats.step is not None, "a step on screen")
        await pilot.pause()
        screen = app.screen.region
        if size == (80, 24) or size == (120, 40):
            for selector in ("#status", "#chart", "#stats", "#compare-panel", "#generate", "#next", "#seed", "Footer"):
                region = app.query_one(selector).region
                assert region.area > 0 and screen.contains_region(region), selector
            assert not app.query_one("#small-note").display
        else:
            assert app.query_one("#small-note").display
            for selector in ("#status", "#stats", "#seed", "Footer"):
                assert app.query_one(selector).region.area > 0, selector
        before = {w: w.region for w in app.query("#chart, #stats, #generate")}
        await pilot.press("f2")  # paused, the process idles and Pilot's resizes return at once
        await pilot.resize_terminal(size[1] * 2 + 10, size[0] // 2)  # another shape reflows
        shown = app.query("#status, #stats, #generate, Footer")
        assert all(app.screen.region.contains_region(w.region) and w.region.area for w in shown)
        await pilot.resize_terminal(*size)
        assert {w: w.region for w in app.query("#chart, #stats, #generate")} == before
        await finish(app, pilot)


async def test_no_color_renders(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tiny())
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.no_color
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.redraws >= 3, "the graph drawn a few times")
        await pilot.press("f2")
        await pilot.press("f1")  # the help screen too
        await pilot.pause()
        await pilot.press("escape")
        await finish(app, pilot)


async def test_stopping_a_generation():
    app = make_app(tiny())
    app.generate_chars = 10**7  # would never finish on its own
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(GeneratePanel)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: len(app.generated) > 20, "text streaming in")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not panel.running, "the generation to stop")
        assert len(app.generated) < app.generate_chars
        await finish(app, pilot)


def poison(trainer: Trainer, at: int, error: Exception | None = None) -> None:
    """Make the training thread hit a non-finite weight (or raise `error`) at step `at`."""
    step = trainer.train_step
    done = []

    def train_step():
        if trainer.step_count == at and not done:
            done.append(True)
            if error is not None:
                raise error
            trainer.model.params["Wy"][0, 0] = np.nan  # in the training thread, which owns the weights
        return step()

    trainer.train_step = train_step  # type: ignore[method-assign]


async def test_divergence_pauses_with_an_explanation_and_resume_continues():
    trainer = tiny()
    poison(trainer, at=8)
    app = make_app(trainer)
    notes = record_notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "diverged", "the divergence")
        assert trainer.controls.paused
        title, message = next((t, m) for t, m in notes if t == "training diverged")
        assert "learning rate" in message
        assert all(np.isfinite(v).all() for v in trainer.model.params.values())  # rolled back
        await pilot.press("f2")
        await wait_for(pilot, lambda: trainer.step_count >= 12, "training after the divergence")
        assert app.state == "running"
        await finish(app, pilot)


async def test_a_training_error_is_shown():
    trainer = tiny()
    poison(trainer, at=4, error=RuntimeError("the engine broke"))
    app = make_app(trainer)
    notes = record_notices(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "error", "the error state")
        assert any("training" in t and "the engine broke" in m for t, m in notes)
        await finish(app, pilot)


def palette_offers(app: LstmApp, title: str) -> bool:
    """Is the command palette open and listing `title` first?"""
    lists = app.screen.query(CommandList)
    return bool(lists) and lists.first().option_count > 0 and title in str(lists.first().get_option_at_index(0).prompt)


async def test_palette_actions_learning_rate_comparison_text_and_reset():
    long_text = TEXT * 40  # long enough for a validation split
    # lr_decay 1: the learning rate set below stays (the default halves it after a stalled evaluation)
    config = TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5, lr_decay=1.0)
    trainer = Trainer(corpus.from_text(long_text), config)
    assert trainer.corpus.split
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        stats, view = app.query_one(StatsPanel), app.query_one(ComparisonView)
        await wait_for(pilot, lambda: view.evaluation is not None and view.on_validation, "a validation comparison")

        await pilot.press("f2")  # paused, the process idles and Pilot's key presses return at once
        await pilot.press("ctrl+p", *"learning rate")
        await wait_for(pilot, lambda: palette_offers(app, "Change learning rate"), "the palette to offer the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PromptScreen", "the learning-rate prompt")
        await pilot.press("ctrl+u", *"0.003", "enter")
        await pilot.press("f2")
        await wait_for(pilot, lambda: stats.step is not None and stats.step.lr == 0.003, "the new learning rate")

        app.action_toggle_comparison()
        await wait_for(pilot, lambda: not view.on_validation and view.evaluation is not None, "training text")
        n_train = trainer.corpus.n_train
        assert view.evaluation.truth == long_text[1 : 1 + view.evaluation.n] and n_train > view.evaluation.n
        app.action_toggle_comparison()
        await wait_for(pilot, lambda: view.on_validation, "validation text again")

        old = app.trainer
        app.action_reset_model()
        await wait_for(pilot, lambda: app.trainer is not old and app.state == "running", "a fresh model")
        assert old.controls.stopped
        await wait_for(pilot, lambda: app.trainer.step_count > 2, "training the fresh model")
        await finish(app, pilot)


async def test_comparison_shows_markup_literally_and_aligns_wide_characters():
    text = "[b]bold[/b] and [red]red[/red].\n" * 20
    config = TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5, steps=10)
    app = make_app(Trainer(corpus.from_text(text), config))
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(ComparisonView)
        await wait_for(pilot, lambda: app.state == "done" and view.step == 10, "the last evaluation")
        rendered = view.render()
        lines = rendered.plain.split("\n")
        assert lines[0].startswith("truth  b]bold[/b] and [red]red[/red].↵[b]bold[/b]")
        # Every predicted character carries its own verdict: underlined exactly where it is wrong,
        # in a "right" colour exactly where it is right.
        ev, shown = view.evaluation, 0
        for truth, model in zip(rendered.split("\n")[0::2], rendered.split("\n")[1::2], strict=True):
            for col in range(7, len(model.plain)):
                styles = " ".join(str(sp.style) for sp in model.spans if sp.start <= col < sp.end)
                right = ev.predicted[shown] == ev.truth[shown]
                assert truth.plain[col] == visible(ev.truth[shown]) and model.plain[col] == visible(ev.predicted[shown])
                assert ("underline" in styles) != right
                assert any(c in styles for c in (RIGHT if right else WRONG)), styles
                shown += 1
        assert shown > 100 and 0 < sum(ev.predicted[i] == ev.truth[i] for i in range(shown)) < shown

        wide = corpus.from_text("日本語のテキスト and narrow text 字.\n" * 20)
        model = CharLSTM.create(TrainConfig(hidden=8).model_config(wide.vocab.size), np.random.default_rng(0))
        view.show(evaluate(model, wide.ids[:300], wide.vocab), 0, True)  # an untrained model: many wide guesses
        await pilot.pause()
        lines = view.render().plain.split("\n")
        assert len(lines) == 4
        for truth, guess in zip(lines[0::2], lines[1::2], strict=True):
            assert truth.startswith("truth") and guess.startswith("model")
            assert cell_len(truth) == cell_len(guess) <= view.size.width
        await finish(app, pilot)


async def test_what_the_command_line_chose_is_shown_where_it_covers_no_panel():
    chose = "chose 1 x 128 units, batch 8 x seq-len 32, lr 0.01: a short text"
    app = make_app(tiny(), notes=[chose])
    async with app.run_test(size=(80, 24), notifications=True) as pilot:  # notices shown, as in a terminal
        await wait_for(pilot, lambda: app.trainer.step_count >= 2, "training")
        await pilot.pause()
        panel = app.query_one("#next").region
        for toast in app.screen.query("Toast"):  # no notice covers the next-character panel
            assert not toast.region.overlaps(panel), str(toast.render())
        shown = " ".join(str(app.query_one("#gen-output").render()).split())
        assert chose in shown  # the settings are under the seed, where the generated text will go
        await pilot.press("ctrl+g")  # the first generation takes the place of the note
        await wait_for(pilot, lambda: app.generated, "generated text")
        assert chose not in " ".join(str(app.query_one("#gen-output").render()).split())
        await finish(app, pilot)


async def test_when_the_budget_runs_out_the_screen_shows_the_final_weights_score():
    # evaluations by characters trained (the default): on a short run only the one before step 1
    trainer = tiny_trainer(steps=20, text=TEXT, eval_every=None)
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        view, stats = app.query_one(ComparisonView), app.query_one(StatsPanel)
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        await pilot.pause()
        final = evaluate(trainer.snapshot, trainer.eval_ids, trainer.corpus.vocab)
        assert view.step == 20 and view.evaluation.accuracy == pytest.approx(final.accuracy)
        assert "step 20" in str(view.parent.border_title)
        assert stats.evaluation.step == 20 and stats.evaluation.val_loss == pytest.approx(final.loss)
        assert [s for s, _ in trainer.val_history] == [0, 20]  # recorded, as `lstm-tui train` records it
        await finish(app, pilot)


async def test_the_header_fits_80_columns_dropping_the_least_useful_parts_first():
    long_text = corpus.from_text(TEXT * 40, name="tinyshakespeare-and-more.txt")
    trainer = Trainer(long_text, TrainConfig(hidden=16, layers=2, batch=4, seq_len=16, eval_every=0))
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "running", "training")
        for state in ("stopping", "running", "diverged"):
            app.state = state
            await pilot.pause()
            header = str(app.query_one("#status").render())
            assert cell_len(header) <= 80 and not header.endswith("…"), header
            for kept in ("tinyshakespeare-and-more.txt", "LSTM 2×16"):
                assert kept in header, header
        assert " chars" not in header  # the least useful part went first
        await pilot.resize_terminal(160, 24)
        header = str(app.query_one("#status").render())
        assert "lstm-tui" in header and "params" in header and f"{long_text.size:,} chars" in header
        await finish(app, pilot)
