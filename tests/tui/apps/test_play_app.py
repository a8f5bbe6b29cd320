"""The play screen (`lstm-tui play`) on a saved model, driven with Pilot at 80x24: what it says about
the model, the inside view and the help, and that closing it writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import wait_for
from rich.cells import cell_len
from textual.widgets import Static

from core import TrainConfig, Trainer, checkpoint, corpus
from tui.apps.keys import keys_help
from tui.apps.play import HELP, SavedModelApp, make_app
from tui.plain import follow
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.help_screen import HelpScreen
from tui.widgets.inside_screen import InsideScreen
from tui.widgets.next_chars import NextCharView

SIZE = (80, 24)
TEXT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.\n" * 8


def saved(folder: Path, evaluate: bool = True) -> Path:
    (folder / "tiny.txt").write_text(TEXT, encoding="utf-8")
    trainer = Trainer(
        corpus.load(folder / "tiny.txt", val_fraction=0.2),
        TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=0),
        checkpoint=folder / "tiny.lstm.npz",
    )
    for _ in range(12):
        trainer.train_step()
    if evaluate:
        trainer.evaluate()
    trainer.save()
    return folder / "tiny.lstm.npz"


def opened(path: Path) -> SavedModelApp:
    ck = checkpoint.load(path)
    text, where = follow.find_corpus(ck, path)
    return make_app(path, ck, text, where)


def output(app: SavedModelApp) -> str:
    return str(app.query_one("#gen-output", Static).render())


async def test_the_screen_names_the_model_and_what_the_inside_view_reads(tmp_path):
    path = saved(tmp_path)
    before = path.read_bytes()
    app = opened(path)
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(NextCharView)
        await wait_for(pilot, lambda: view.candidates, "the next characters")
        header = str(app.query_one("#status").render())
        assert "SAVED MODEL" in header and "tiny.lstm.npz" in header and "step 12" in header
        assert cell_len(header) <= SIZE[0]
        notes = output(app)
        assert "tiny.lstm.npz: LSTM 1×16, step 12, trained on tiny.txt; val " in notes
        assert f"reads {tmp_path / 'tiny.txt'}, the text it was trained on" in " ".join(notes.split())
        assert app.query_one(GeneratePanel).seed == "To be, or "  # the first words of its text
        assert view.region.width > 20 and view.region.height >= 18  # the view has the screen's height
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: not app.query_one(GeneratePanel).running and app.generated, "generation")
        assert set(app.generated) <= set(TEXT)
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, "the screen to close")
    assert path.read_bytes() == before  # nothing written


async def test_without_its_text_the_inside_view_reads_what_the_model_writes(tmp_path):
    path = saved(tmp_path, evaluate=False)
    (tmp_path / "tiny.txt").unlink()
    ck = checkpoint.load(path)
    text, where = follow.find_corpus(ck, path)
    assert text is None
    app = make_app(path, ck, text, where, prime="to be")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        notes = " ".join(output(app).split())
        assert "reads text the model wrote: tiny.txt, the training text, is not" in notes
        assert "; val" not in notes  # never scored: no score to show
        assert app.query_one(GeneratePanel).seed == "to be"
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, InsideScreen) and app.screen.acts is not None, "inside")
        assert app.screen.shown_step == 12
        assert app.screen.acts.text == app.source.corpus.text(0, len(app.screen.acts.text))
        await pilot.press("escape")
        assert not isinstance(app.screen, InsideScreen)
        await pilot.press("ctrl+q")


@pytest.mark.parametrize("size", [(80, 24), (60, 16)])
async def test_help_lists_the_panels_and_the_keys(tmp_path, size):
    app = opened(saved(tmp_path))
    async with app.run_test(size=size) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        text = str(app.screen.query_one(Static).render())
        assert text.startswith(HELP) and keys_help(SavedModelApp.KEYS) in text
        assert "top-k" in text and "f5" in text and "f9" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+q")
