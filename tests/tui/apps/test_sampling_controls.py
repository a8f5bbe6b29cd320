"""Temperature, top-k and top-p on screen, in every app that generates (train, watch, race, play),
driven with Pilot at 80x24: the keys, the boxes, the palette, what the samplers draw with, and
the next-character view, checked against core.sampling on the same weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import record_notices, tiny_race, wait_for
from textual.widgets import Input

from core import TrainConfig, Trainer, checkpoint, corpus, generate, probabilities
from core.sampling import TEMPERATURE
from tui.apps.base import PlayApp
from tui.apps.messages import Sampling
from tui.apps.play import SavedModelApp, make_app
from tui.apps.race import RaceApp
from tui.apps.train import make_app as make_training_app
from tui.apps.watch import WatchApp
from tui.commands.sample import build_parser as sample_parser
from tui.plain import follow
from tui.widgets.generate_panel import GeneratePanel, tighter_k, tighter_p
from tui.widgets.next_chars import CUT, NextCharView
from tui.widgets.prompt_screen import PromptScreen

SIZE = (80, 24)
TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.\n"
) * 4


def saved(folder: Path, steps: int = 30) -> Path:
    """A model trained a little on TEXT (beside it, as a run leaves them), saved."""
    (folder / "tiny.txt").write_text(TEXT, encoding="utf-8")
    trainer = Trainer(
        corpus.load(folder / "tiny.txt", val_fraction=0.2),
        TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=0, lr=2e-2),
        checkpoint=folder / "tiny.lstm.npz",
    )
    for _ in range(steps):
        trainer.train_step()
    trainer.save()
    return folder / "tiny.lstm.npz"


def play_app(folder: Path) -> SavedModelApp:
    path = saved(folder)
    ck = checkpoint.load(path)
    text, where = follow.find_corpus(ck, path)
    return make_app(path, ck, text, where)


def training_app(folder: Path) -> PlayApp:
    return make_training_app(Trainer(corpus.from_text(TEXT, name="tiny.txt"), TrainConfig(hidden=16, steps=10)))


def watch_app(folder: Path) -> PlayApp:
    path = saved(folder)
    first = follow.load(path)
    text, note = follow.find_corpus(first, path)
    return WatchApp(path, first, text, note, poll_s=0.05)


def race_app(folder: Path) -> PlayApp:
    return RaceApp(tiny_race(steps=10, tmp=folder))


BUILDERS = [training_app, watch_app, race_app, play_app]
IDS = ["train", "watch", "race", "play"]


async def settle(app: PlayApp, pilot) -> None:
    """Training done (where there is any), so that the weights stay put."""
    if hasattr(app, "state"):
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
    await pilot.pause()


async def finish(app: PlayApp, pilot) -> None:
    app.workers.cancel_all()
    await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "the workers to end")


async def generate_with(app: PlayApp, pilot, rng_seed: int) -> None:
    """One generation run with a seeded generator, to its end."""
    app.generation_rng = np.random.default_rng(rng_seed)
    runs = app._run_id
    app.action_generate()
    panel = app.query_one(GeneratePanel)
    await wait_for(pilot, lambda: app._run_id > runs and not panel.running, "the generation")


def test_the_interface_starts_at_the_temperature_sample_draws_at():
    """One default: `lstm-tui sample` and every screen start at core.sampling.TEMPERATURE (1: the
    model's own distribution), with no top-k or top-p cut."""
    assert sample_parser().parse_args(["model.npz"]).temperature == TEMPERATURE == 1.0
    assert Sampling() == Sampling(TEMPERATURE, None, None)
    assert GeneratePanel().sampling == Sampling()


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
async def test_the_keys_set_top_k_and_top_p_and_every_sampler_draws_with_them(build, tmp_path):
    app = build(tmp_path)
    app.generate_chars = 30
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(GeneratePanel)
        V = app.play_vocab().size
        assert app.sampling == Sampling() and panel.query_one("#temperature", Input).value == f"{TEMPERATURE:.2f}"
        await pilot.press("f5", "f5")  # k: 20, then 10
        await pilot.press("f9")  # p: 0.95
        expected = Sampling(TEMPERATURE, tighter_k(tighter_k(None, V), V), 0.95)
        assert expected.top_k == 10 < V
        await wait_for(pilot, lambda: app.sampling == expected, "the settings in the sampler")
        assert panel.query_one("#top-k", Input).value == "10" and panel.query_one("#top-p", Input).value == "0.95"
        await generate_with(app, pilot, 0)
        assert app.generation_settings and set(app.generation_settings) == {expected}
        # every preset, then no cut again
        for _ in range(4):  # 5, 3, 2, 1
            await pilot.press("f5")
        assert app.sampling.top_k == 1
        await pilot.press("f5", "f9", "f9", "f9", "f9")
        assert app.sampling == Sampling(TEMPERATURE, None, None)
        assert panel.query_one("#top-k", Input).value == "" and panel.query_one("#top-p", Input).value == ""
        await finish(app, pilot)


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
async def test_the_generation_panel_still_fits_at_80x24(build, tmp_path):
    app = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        panel = app.query_one(GeneratePanel)
        controls = panel.query_one("#gen-controls")
        boxes = [panel.query_one(f"#{name}", Input) for name in ("seed", "temperature", "top-k", "top-p")]
        for box in boxes:  # each box whole, in the panel's row, in order
            assert box.region.height == 1 and box.region.y == controls.region.y
            assert controls.region.x <= box.region.x and box.region.right <= controls.region.right
        assert [b.region.x for b in boxes] == sorted(b.region.x for b in boxes)
        assert boxes[0].region.width >= 12  # room for a seed of a few words
        for box, text in zip(boxes[1:], ("0.95", "999", "0.95"), strict=True):  # a value shows whole
            assert box.content_region.width >= len(text)
        await finish(app, pilot)


async def test_typed_values_and_up_down_in_the_boxes(tmp_path):
    app = play_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(GeneratePanel)
        V = app.play_vocab().size
        k_box, p_box = panel.query_one("#top-k", Input), panel.query_one("#top-p", Input)
        k_box.focus()
        await pilot.press("7")
        assert app.sampling.top_k == 7
        await pilot.press("up")
        assert app.sampling.top_k == 8 and k_box.value == "8"
        await pilot.press("down", "down")
        assert app.sampling.top_k == 6
        await pilot.press("backspace")  # empty: every character
        assert app.sampling.top_k is None
        await pilot.press("0")  # not a k: ignored, and the box shows the value in use once left
        assert app.sampling.top_k is None
        await pilot.press(*str(V))  # "0" then V: a k the size of the vocabulary cuts nothing
        p_box.focus()
        await pilot.pause()
        assert app.sampling.top_k is None and k_box.value == ""
        await pilot.press(*"0.8")
        assert app.sampling.top_p == pytest.approx(0.8)
        await pilot.press("up", "up")
        assert app.sampling.top_p == pytest.approx(0.9) and p_box.value == "0.90"
        await pilot.press("up", "up")  # at 1: no cut
        assert app.sampling.top_p is None and p_box.value == ""
        await pilot.press("down")
        assert app.sampling.top_p == pytest.approx(0.95)
        await pilot.press("enter")  # enter in a sampling box generates, as in the seed box
        await wait_for(pilot, lambda: app.generation_settings, "a generation")
        assert app.generation_settings[0].top_p == pytest.approx(0.95)
        await finish(app, pilot)


async def test_what_the_screen_writes_is_what_core_generate_draws_with_the_same_settings(tmp_path):
    app = play_app(tmp_path)
    app.generate_chars = 200
    async with app.run_test(size=SIZE) as pilot:
        model, vocab = app.play_model(), app.play_vocab()
        panel = app.query_one(GeneratePanel)
        panel.query_one("#seed", Input).value = "to be"
        for settings in (Sampling(1.5, 3, None), Sampling(1.2, None, 0.6), Sampling(1.8, 5, 0.7)):
            panel.set_sampling(settings)
            await wait_for(pilot, lambda s=settings: app.sampling == s, "the settings in the sampler")
            await generate_with(app, pilot, 7)
            ids = generate(model, vocab.encode("to be"), 200, np.random.default_rng(7), *vars(settings).values())
            assert app.generated == vocab.decode(list(ids))
        # top-k 1 is greedy, whatever the temperature
        for settings, rng_seed in ((Sampling(2.0, 1, None), 1), (Sampling(0.0), 2)):
            panel.set_sampling(settings)
            await wait_for(pilot, lambda s=settings: app.sampling == s, "the settings in the sampler")
            await generate_with(app, pilot, rng_seed)
            if settings.top_k:
                at_k1 = app.generated
        assert at_k1 == app.generated
        await finish(app, pilot)


async def test_the_next_character_view_shows_what_may_be_drawn_and_marks_the_rest_cut(tmp_path):
    app = play_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        model, vocab = app.play_model(), app.play_vocab()
        panel, view = app.query_one(GeneratePanel), app.query_one(NextCharView)
        logits, _ = model.stepper().prime(vocab.encode(panel.seed))
        for settings in (Sampling(1.3, 4, None), Sampling(0.9, None, 0.5), Sampling(1.0, 6, 0.7)):
            panel.set_sampling(settings)
            await wait_for(pilot, lambda s=settings: view.sampling == s and view.candidates, "the table")
            await pilot.pause()
            p = probabilities(logits, settings.temperature, settings.top_k, settings.top_p)
            kept = [c for c in view.candidates if not c.cut]
            assert len(kept) == np.count_nonzero(p) and sum(c.p for c in kept) == pytest.approx(1.0)
            for c in view.candidates:
                assert c.p == pytest.approx(p[vocab.chars.index(c.char)]) and c.cut == (c.p == 0)
            assert [c.cut for c in view.candidates] == sorted(c.cut for c in view.candidates)  # cut ones last
            rows = str(view.render()).split("\n")
            for row, c in zip(rows, view.candidates, strict=False):
                assert row.endswith(CUT) if c.cut else row.endswith(f"{c.p:.1%}")
            title = str(view.border_title)
            assert f"T {settings.temperature:.2f}" in title and settings.cuts(" ") in title
        await finish(app, pilot)


def test_the_keys_presets_go_down_then_back_to_no_cut():
    ks, k = [], None
    for _ in range(8):
        k = tighter_k(k, 65)
        ks.append(k)
    assert ks == [20, 10, 5, 3, 2, 1, None, 20]
    assert tighter_k(None, 8) == 5  # presets at or above the vocabulary would cut nothing
    assert tighter_k(7, 65) == 5  # from a typed k, the next preset below it
    ps, p = [], None
    for _ in range(6):
        p = tighter_p(p)
        ps.append(p)
    assert ps == [0.95, 0.9, 0.8, 0.5, None, 0.95]


@pytest.mark.parametrize("build", BUILDERS, ids=IDS)
async def test_the_palette_sets_each_setting_and_refuses_what_is_not_one(build, tmp_path):
    app = build(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        notes = record_notices(app)
        commands = {name: run for name, run, _ in app.palette_commands()}
        assert {"Set temperature…", "Set top-k…", "Set top-p…", "Draw from every character"} <= set(commands)

        async def answer(command: str, text: str) -> None:
            commands[command]()
            await wait_for(
                pilot, lambda: isinstance(app.screen, PromptScreen) and app.screen.query(Input), "the prompt"
            )
            box = app.screen.query_one(Input)
            box.value = text
            await pilot.press("enter")
            await wait_for(pilot, lambda: not isinstance(app.screen, PromptScreen), "the answer")
            await pilot.pause()

        await answer("Set top-k…", "4")
        await answer("Set top-p…", "0.7")
        await answer("Set temperature…", "0.5")
        assert app.sampling == Sampling(0.5, 4, 0.7)
        refused = [("Set top-k…", "0"), ("Set top-p…", "1.5"), ("Set temperature…", "3"), ("Set top-k…", "x")]
        for command, bad in refused:
            await answer(command, bad)
            assert app.sampling == Sampling(0.5, 4, 0.7)
            assert notes and notes[-1][0].startswith("not a ")
        commands["Draw from every character"]()
        await pilot.pause()
        assert app.sampling == Sampling(0.5, None, None)
        await finish(app, pilot)
