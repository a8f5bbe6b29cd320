"""tui.apps.base: the generation and next-character code the four apps share, proven to fire in each.

PlayApp relies on how Textual dispatches: `@on` handlers are collected per class by the message
pump's metaclass, and every class in the MRO that has one runs it. These tests pin that down (so a
Textual upgrade that changes it fails here, not on screen), check that no app defines a shared
handler again (it would run twice), and drive each app through the shared handlers: the
temperature keys, generating, stopping a generation, the next-character table, and a generated
message handled exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import tiny_race, wait_for
from textual import on
from textual.app import App
from textual.message import Message

from core import TrainConfig, Trainer, checkpoint, corpus
from tui.apps.base import ONE, PlayApp
from tui.apps.lifecycle import TrainingApp
from tui.apps.messages import Generated, Sampling
from tui.apps.play import SavedModelApp
from tui.apps.play import make_app as play
from tui.apps.race import RaceApp
from tui.apps.train import LstmApp, make_app
from tui.apps.watch import WatchApp
from tui.plain import follow as watch
from tui.widgets.generate_panel import GeneratePanel, RaceGeneratePanel
from tui.widgets.next_chars import NextCharView

TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles.\n"
) * 4

APPS = (LstmApp, WatchApp, RaceApp, SavedModelApp)


LIFECYCLE = {"on_mount", "on_unmount", "on_worker_state_changed"}  # PlayApp's, by Textual's naming


def shared_handler_names(base: type = PlayApp) -> set[str]:
    """The names of a base's own @on handlers."""
    return {method.__name__ for handlers in base.__dict__["_decorated_handlers"].values() for method, _ in handlers}


def test_textual_collects_on_handlers_only_in_message_pump_classes():
    """Why PlayApp is an App subclass and not a plain mixin: a plain class's @on handlers are never
    collected, while a base App's fire for its subclasses, each class's in turn."""

    class Ping(Message):
        pass

    class PlainMixin:
        @on(Ping)
        def _ping(self, message: Ping) -> None: ...

    class Base(App[None]):
        @on(Ping)
        def _ping(self, message: Ping) -> None: ...

    class Child(PlainMixin, Base):
        pass

    assert "_decorated_handlers" not in PlainMixin.__dict__
    assert Ping in Base.__dict__["_decorated_handlers"]
    assert Child.__dict__["_decorated_handlers"] == {}  # the subclass's own: none; Base's are found in the MRO


@pytest.mark.parametrize("app_class", APPS, ids=lambda c: c.__name__)
def test_every_app_plays_through_the_shared_handlers_and_defines_none_again(app_class):
    assert issubclass(app_class, PlayApp)
    names = shared_handler_names() | LIFECYCLE
    assert {"_on_generated", "_on_generation_done", "_on_next_chars", "_on_generate_changed"} <= names
    assert LIFECYCLE <= set(PlayApp.__dict__)
    if issubclass(app_class, TrainingApp):  # the lifecycle of a screen that trains, written once
        names |= shared_handler_names(TrainingApp)
        assert {"_on_progress", "_on_evaluated", "_on_saved", "_on_diverged", "_on_finished"} <= names
    again = names & set(app_class.__dict__)
    assert not again, f"{app_class.__name__} defines {again} again: Textual would run both"
    for key in ("ctrl+g", "escape", "f7", "f8", "f5", "f9"):  # the shared keys are in every app's bindings
        assert any(b.key == key for b in app_class.BINDINGS), key


# ------------------------------------------------------------------- the four apps, driven
def training_app(tmp_path: Path) -> tuple[PlayApp, list[str]]:
    trainer = Trainer(
        corpus.from_text(TEXT, name="tiny.txt"), TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5, steps=30)
    )
    return make_app(trainer), [ONE]


def watch_app(tmp_path: Path) -> tuple[PlayApp, list[str]]:
    (tmp_path / "tiny.txt").write_text(TEXT, encoding="utf-8")
    path = tmp_path / "model.npz"
    text = corpus.load(tmp_path / "tiny.txt", val_fraction=0.3)
    trainer = Trainer(text, TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5), checkpoint=path)
    for _ in range(5):
        trainer.train_step()
    trainer.save()
    first = watch.load(path)
    found, note = watch.find_corpus(first, path)
    return WatchApp(path, first, found, note, poll_s=0.05), [ONE]


def race_app(tmp_path: Path) -> tuple[PlayApp, list[str]]:
    race = tiny_race(steps=30, tmp=tmp_path)
    return RaceApp(race), list(race.names)


def play_app(tmp_path: Path) -> tuple[PlayApp, list[str]]:
    (tmp_path / "tiny.txt").write_text(TEXT, encoding="utf-8")
    path = tmp_path / "model.npz"
    text = corpus.load(tmp_path / "tiny.txt", val_fraction=0.3)
    Trainer(text, TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=0), checkpoint=path).save()
    ck = checkpoint.load(path)
    found, note = watch.find_corpus(ck, path)
    return play(path, ck, found, note), [ONE]


def written(app: PlayApp, name: str) -> str:
    return app.generated[name] if isinstance(app.generated, dict) else app.generated


async def finish(app: PlayApp, pilot) -> None:
    """End a test without leaving a thread behind."""
    controls = getattr(app, "trainer", None) or getattr(app, "race", None)
    if controls is not None:
        controls.controls.stop()
    app.workers.cancel_all()
    await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "the workers to end")


@pytest.mark.parametrize("build", [training_app, watch_app, race_app, play_app], ids=["train", "watch", "race", "play"])
async def test_the_shared_handlers_fire_once_in_each_app(build, tmp_path):
    app, names = build(tmp_path)
    app.generate_chars = 40
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(GeneratePanel)
        assert isinstance(panel, RaceGeneratePanel) == isinstance(app, RaceApp)

        # the temperature keys reach the panel, and its Changed message the sampler
        before = app.sampling_temperature
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.sampling_temperature == pytest.approx(before + 0.05), "T+ in the sampler")

        # a generation from every model, each in its own worker
        runs = app._run_id
        await pilot.press("ctrl+g")
        assert app._run_id == runs + len(names) and sorted(app._gen_runs.values()) == sorted(names)
        await wait_for(pilot, lambda: not panel.running and all(written(app, n) for n in names), "generation")

        # one Generated message is handled exactly once (a handler defined twice would run twice)
        name = names[-1]
        app._gen_runs = {10**6: name}
        app.post_message(Generated(10**6, "§", Sampling(0.5)))
        await wait_for(pilot, lambda: "§" in written(app, name), "the posted characters")
        await pilot.pause()
        assert written(app, name).count("§") == 1

        # escape stops a long generation
        app.generate_chars = 10**7
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: all(len(written(app, n)) > 5 for n in names), "text streaming in")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not panel.running, "the generation to stop")
        assert all(len(written(app, n)) < app.generate_chars for n in names)

        # the next-character table follows the seed (the race has none)
        if app.SHOWS_NEXT_CHARS:
            app.query_one("#seed").value = "the "
            view = app.query_one(NextCharView)
            await wait_for(pilot, lambda: view.seed == "the " and view.candidates, "the table for the new seed")
        else:
            assert not app.query(NextCharView)
        await finish(app, pilot)


@pytest.mark.parametrize("build", [training_app, watch_app, race_app, play_app], ids=["train", "watch", "race", "play"])
async def test_each_app_computes_on_one_blas_thread_and_gives_the_limit_back(build, tmp_path, monkeypatch):
    from threadpoolctl import threadpool_info, threadpool_limits

    from tui.plain.threads import BLAS_ENV

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    for name in BLAS_ENV:
        monkeypatch.delenv(name, raising=False)
    if not blas_threads():
        pytest.skip("NumPy reports no BLAS thread pool here")
    app, _ = build(tmp_path)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert blas_threads() == {1}  # the screen keeps a core; the work beside it takes one
            await finish(app, pilot)
        assert blas_threads() == before
