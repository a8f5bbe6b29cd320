"""`lstm-tui watch`: a watcher, driven with Pilot, against a checkpoint that the test replaces the way
a training process does (atomic saves), plus the file-following pieces and the command's bad input.
Every wait polls a condition; the watcher polls the files every 20 ms here."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import LSTM_TUI, TIMEOUT, assert_usage_error, record_notices, run_cli, wait_for
from rich.cells import cell_len

from core import TrainConfig, Trainer, checkpoint, corpus, generate
from tui.apps.watch import WatchApp
from tui.plain import follow as watch
from tui.widgets.comparison import ComparisonView
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.loss_chart import LossChart
from tui.widgets.next_chars import NextCharView
from tui.widgets.stats import StatsPanel
from tui.widgets.status_line import StatusLine

TEXT = (
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    "and by opposing end them. To die, to sleep, no more; and by a sleep to say we end the "
    "heart-ache and the thousand natural shocks that flesh is heir to.\n"
) * 6


class Run:
    """A training run in this process, saving to `run/model.npz` the way `train --save-every` does."""

    def __init__(self, tmp_path: Path, cell: str = "lstm", text: str = TEXT) -> None:
        self.folder = tmp_path / "run"
        self.folder.mkdir()
        (self.folder / "tiny.txt").write_text(text, encoding="utf-8")
        self.path = self.folder / "model.npz"
        text = corpus.load(self.folder / "tiny.txt", val_fraction=0.3)
        config = TrainConfig(hidden=16, batch=4, seq_len=16, eval_every=5, cell=cell)
        self.trainer = Trainer(text, config, checkpoint=self.path)

    def train_and_save(self, steps: int) -> int:
        """Train `steps` more steps (evaluating every 5, as the run would), then save atomically."""
        t = self.trainer
        target = t.step_count + steps
        while t.step_count < target:
            t.train_step()
            if t.step_count % 5 == 0:
                t.evaluate()
        t.save()  # core.checkpoint.save: a temporary file, then an atomic rename over the path
        return t.step_count

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file in the run's folder: name -> (modification time, size)."""
        return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in self.folder.iterdir()}


def replace(path: Path, data: bytes) -> None:
    """Put `data` at `path` in one atomic step (so the watcher sees only the whole of it)."""
    tmp = path.parent.parent / "incoming"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def watcher(run: Run, **kwargs) -> WatchApp:
    first = watch.load(run.path)
    text, note = watch.find_corpus(first, run.path)
    return WatchApp(run.path, first, text, note, Path(f"{run.path}.jsonl"), poll_s=0.02, **kwargs)


async def polls(app: WatchApp, pilot, n: int = 3) -> None:
    """Let the watcher look at the files at least `n` more times."""
    target = app.polls + n
    await wait_for(pilot, lambda: app.polls >= target, f"{n} polls")


def header(app: WatchApp) -> str:
    return str(app.query_one(StatusLine).render())


async def generated(app: WatchApp, pilot, seed: str, temperature: float, rng_seed: int) -> str:
    """Generate from the seed at the temperature with a seeded generator; the text generated."""
    app.query_one("#seed").value = seed
    app.query_one(GeneratePanel).temperature = temperature
    await wait_for(pilot, lambda: app.sampling_temperature == temperature, "the temperature to reach the sampler")
    app.generation_rng = np.random.default_rng(rng_seed)
    runs = app._run_id
    app.action_generate()
    await wait_for(pilot, lambda: app._run_id > runs and not app.query_one(GeneratePanel).running, "generation")
    return app.generated


def expected_text(model, vocab, seed: str, temperature: float, rng_seed: int, length: int) -> str:
    ids = vocab.encode(seed)
    out = generate(model, ids, length, np.random.default_rng(rng_seed), temperature)
    return vocab.decode(np.fromiter(out, dtype=np.int64))


async def test_follows_replacements_never_writes_and_generates_from_the_newest_weights(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(10)
    app = watcher(run)
    app.generate_chars = 40
    async with app.run_test(size=(100, 30)) as pilot:
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: stats.step is not None and stats.step.step == 10, "step 10 in the stats")
        assert "WATCHING, not training" in header(app) and "step 10" in header(app)
        assert "saved" in header(app)
        compare = app.query_one(ComparisonView)
        await wait_for(pilot, lambda: compare.evaluation is not None, "the comparison of the first model")
        assert compare.on_validation  # the text was found beside the checkpoint, split as the run split it
        old_val = stats.evaluation.val_loss

        # Watching writes nothing: no file appears, none changes, over many polls.
        before = run.files()
        await polls(app, pilot, 10)
        assert run.files() == before

        # The run saves again: the screen follows.
        first_model = app.loaded.model
        run.train_and_save(40)
        await wait_for(pilot, lambda: app.loaded.step == 50, "the replaced checkpoint to be read")
        await wait_for(pilot, lambda: stats.step.step == 50, "step 50 in the stats")
        await wait_for(pilot, lambda: "step 50" in header(app), "step 50 in the header")
        chart = app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.drawn is not None and chart.drawn.total_steps == 50, "the new curve")
        assert len(chart.drawn.val_steps) == len(run.trainer.val_history)
        await wait_for(pilot, lambda: compare.step == 50, "the comparison of the new model")
        assert stats.evaluation.val_loss != old_val

        # Generation uses the newest weights: the same text core writes from the saved file.
        newest = checkpoint.load(run.path)
        text = await generated(app, pilot, "to be", 0.8, rng_seed=7)
        assert text == expected_text(newest.model, newest.vocab, "to be", 0.8, 7, 40)
        old = expected_text(first_model, newest.vocab, "to be", 0.8, 7, 40)
        assert text != old  # (so the comparison above tells the two models apart)

        before = run.files()
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "ctrl+q to quit")  # at once: nothing to save
    assert run.files() == before  # quitting saved nothing
    assert sorted(before) == ["model.npz", "tiny.txt"]  # the run's files only


async def test_every_panel_shows_the_save_on_screen_and_the_runs_own_scores(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(10)  # evaluated at 5 and 10
    app = watcher(run)
    async with app.run_test(size=(80, 24)) as pilot:
        stats, compare = app.query_one(StatsPanel), app.query_one(ComparisonView)
        await wait_for(pilot, lambda: compare.step == 10, "the predictions of the first save")
        run.train_and_save(3)  # step 13: its last evaluation is still the one at step 10
        await wait_for(pilot, lambda: app.loaded.step == 13 and compare.step == 13, "the second save everywhere")
        view = app.query_one(NextCharView)
        await wait_for(pilot, lambda: view.source is app.loaded.model, "the next characters of the second save")
        assert "step 13" in header(app) and stats.step.step == 13
        run_step, run_val = run.trainer.val_history[-1]
        assert (stats.evaluation.step, stats.evaluation.val_loss) == (run_step, run_val) == (10, pytest.approx(run_val))
        line = [row for row in str(stats.render()).split("\n") if row.startswith("val")][0]
        assert line.endswith("@10")  # the score says which step it is of
        await pilot.press("ctrl+q")


async def test_the_numbers_fit_their_panel_at_100_columns_with_a_long_validation_text(tmp_path):
    run = Run(tmp_path, text=TEXT * 60)  # a validation part longer than the screen reads itself
    run.train_and_save(10)
    app = watcher(run)
    async with app.run_test(size=(100, 30)) as pilot:
        stats = app.query_one(StatsPanel)
        await wait_for(pilot, lambda: app.query_one(ComparisonView).step == 10, "the predictions")
        await pilot.pause()
        rows = str(stats.render()).split("\n")
        assert any(row.startswith("val") for row in rows)
        for row in rows:
            assert cell_len(row) <= stats.content_size.width, row
        await pilot.press("ctrl+q")


async def test_watches_a_gru_run_its_inside_view_and_generation(tmp_path):
    from tui.widgets.inside_screen import InsideScreen

    run = Run(tmp_path, cell="gru")
    run.train_and_save(10)
    app = watcher(run)
    app.generate_chars = 30
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "GRU 1×16" in header(app), "the GRU in the header")
        saved = checkpoint.load(run.path)
        text = await generated(app, pilot, "to be", 0.8, rng_seed=3)
        assert text == expected_text(saved.model, saved.vocab, "to be", 0.8, 3, 30)
        await pilot.press("f4")
        await wait_for(pilot, lambda: isinstance(app.screen, InsideScreen), "the inside view")
        screen = app.screen
        await wait_for(pilot, lambda: screen.acts is not None, "activations")
        assert screen.choice.quantity == "hidden"
        assert set(screen.acts.values) == {"reset", "update", "candidate", "hidden"}
        await pilot.press("escape")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None, "ctrl+q to quit")


async def test_survives_a_vanished_and_a_corrupt_checkpoint_and_recovers(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(10)
    app = watcher(run)
    app.generate_chars = 30
    async with app.run_test(size=(100, 30)) as pilot:
        notes = record_notices(app)
        await wait_for(pilot, lambda: app.query_one(StatsPanel).step is not None, "the first model")
        good_model = app.loaded.model
        good = checkpoint.load(run.path)

        # The file goes away: a notice, a red header, and the last good model stays.
        os.rename(run.path, run.folder / "elsewhere.npz")
        await wait_for(pilot, lambda: app.failure is not None, "the vanished file to be noticed")
        assert app.failure.vanished
        assert any("keeping the last good model" in title and "is gone" in msg for title, msg in notes)
        assert app.query_one(StatusLine).state == "watch-failed" and "checkpoint gone" in header(app)
        assert app.loaded.model is good_model and app.query_one(StatsPanel).step.step == 10
        text = await generated(app, pilot, "to be", 0.8, rng_seed=3)  # still generates, from the kept model
        assert text == expected_text(good.model, good.vocab, "to be", 0.8, 3, 30)

        # Something that is not a checkpoint takes its place; then a truncated checkpoint.
        notes.clear()
        replace(run.path, b"not a checkpoint at all")
        await wait_for(pilot, lambda: any("not an lstm-tui checkpoint" in m for _, m in notes), "a notice")
        notes.clear()
        whole = (run.folder / "elsewhere.npz").read_bytes()
        replace(run.path, whole[: len(whole) // 2])
        await wait_for(pilot, lambda: any("corrupt or truncated" in m for _, m in notes), "a notice")
        assert app.loaded.model is good_model and app.query_one(StatusLine).state == "watch-failed"
        await polls(app, pilot, 5)
        assert len(notes) == 1  # one notice per bad version of the file, not one per poll

        # A good save arrives: the watcher follows again.
        run.path.unlink()
        run.train_and_save(20)
        await wait_for(pilot, lambda: app.loaded.step == 30, "the good checkpoint to be read")
        assert app.failure is None and app.query_one(StatusLine).state == "watching"
        assert app.loaded.model is not good_model
        await wait_for(pilot, lambda: app.query_one(StatsPanel).step.step == 30, "step 30 in the stats")
        await pilot.press("ctrl+q")


async def test_the_log_beside_the_checkpoint_extends_the_curve_past_the_last_save(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(10)
    log = Path(f"{run.path}.jsonl")
    records = [
        {"step": s, "epoch": s / 100, "elapsed_s": s / 10, "train_loss": 3.0 - s / 100, "val_loss": 3.1 - s / 100,
         "accuracy": 0.2, "chars_per_s": 1234.0, "lr": 0.01}
        for s in (5, 10, 15, 20)
    ]  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in records[:3]), encoding="utf-8")
    app = watcher(run)
    async with app.run_test(size=(100, 30)) as pilot:
        stats, chart = app.query_one(StatsPanel), app.query_one(LossChart)
        await wait_for(pilot, lambda: chart.drawn is not None and chart.drawn.total_steps == 15, "the curve to 15")
        assert 15.0 in chart.drawn.val_steps
        # The numbers are the save's (step 10), with the run's own evaluation at it, from the log.
        assert stats.step.step == 10 and stats.evaluation.step == 10
        assert stats.evaluation.val_loss == pytest.approx(3.0) and stats.evaluation.accuracy == 0.2
        with log.open("a", encoding="utf-8") as f:  # the run appends, a line at a time
            f.write(json.dumps(records[3])[:20])
            f.flush()
            await polls(app, pilot, 3)
            assert chart.drawn.total_steps == 15  # half a line is not a record yet
            f.write(json.dumps(records[3])[20:] + "\n")
        await wait_for(pilot, lambda: chart.drawn.total_steps == 20, "the curve to 20")
        assert stats.step.step == 10 and app.loaded.step == 10  # the weights on screen are still the saved ones
        await pilot.press("ctrl+q")
    assert log.read_text(encoding="utf-8").count("\n") == 4  # read, never written


async def test_without_its_text_the_watcher_says_so_and_still_generates(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(10)
    (run.folder / "tiny.txt").unlink()
    first = watch.load(run.path)
    text, note = watch.find_corpus(first, run.path)
    assert text is None and "tiny.txt" in note and "--corpus" in note
    app = WatchApp(run.path, first, text, note, None, poll_s=0.02)
    app.generate_chars = 20
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        compare = app.query_one(ComparisonView)
        assert compare.evaluation is None and "no ground truth" in str(compare.render())
        got = await generated(app, pilot, "the ", 0.5, rng_seed=1)
        assert got == expected_text(first.model, first.vocab, "the ", 0.5, 1, 20)
        await pilot.press("f4")  # the inside view reads text the model wrote
        await wait_for(pilot, lambda: getattr(app.screen, "acts", None) is not None, "the inside view")
        await pilot.press("escape", "ctrl+q")


# --------------------------------------------------------------- the pieces
def test_log_tail_reads_whole_lines_and_starts_over_when_replaced(tmp_path):
    path = tmp_path / "run.jsonl"
    tail = watch.LogTail(path)
    assert tail.read() is None  # no log yet
    path.write_text('{"step": 1}\n{"step": 2}\n{"ste', encoding="utf-8")
    assert tail.read() == ([{"step": 1}, {"step": 2}], True)
    assert tail.read() is None
    with path.open("a", encoding="utf-8") as f:
        f.write('p": 3}\nnot json\n[1]\n')
    assert tail.read() == ([{"step": 3}], False)
    path.write_text('{"step": 0}\n', encoding="utf-8")  # shorter: a new log
    assert tail.read() == ([{"step": 0}], True)


def test_current_run_starts_where_the_steps_go_back():
    steps = [0, 10, 20, 30, 25, 30, 0, 5]
    assert [r["step"] for r in watch.current_run([{"step": s} for s in steps])] == [0, 5]
    assert [r["step"] for r in watch.current_run([{"step": s} for s in steps[:6]])] == [25, 30]


def test_follower_reports_each_version_once(tmp_path):
    run = Run(tmp_path)
    run.train_and_save(5)
    follower = watch.Follower(run.path)
    first = follower.poll()
    assert isinstance(first, watch.Loaded) and first.step == 5
    assert follower.poll() is None and follower.reads == 1  # unchanged: not read again
    run.path.unlink()
    assert isinstance(follower.poll(), watch.Failed) and follower.poll() is None
    run.train_and_save(5)
    again = follower.poll()
    assert isinstance(again, watch.Loaded) and again.step == 10


# ------------------------------------------------------------ the command
def test_watch_bad_input_is_one_line_and_exit_2(tmp_path):
    assert_usage_error(run_cli("watch", "missing.npz", cwd=tmp_path), "no such checkpoint: missing.npz")
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    assert_usage_error(run_cli("watch", "notes.txt", cwd=tmp_path), "not an lstm-tui checkpoint")
    assert_usage_error(run_cli("watch", cwd=tmp_path), "CHECKPOINT")
    run = Run(tmp_path)
    run.train_and_save(5)
    res = run_cli("watch", str(run.path), "--corpus", "notes.txt", cwd=tmp_path)
    assert_usage_error(res, "notes.txt is not the text", "tiny.txt")
    before = run.files()
    assert_usage_error(run_cli("watch", str(run.path), cwd=tmp_path), "needs a terminal")  # good input, no terminal
    assert run.files() == before


@pytest.mark.parametrize("lowercase", [False, True])
def test_the_text_is_found_and_split_as_the_run_split_it(tmp_path, lowercase):
    (tmp_path / "book.txt").write_text(TEXT * 4, encoding="utf-8")
    text = corpus.load(tmp_path / "book.txt", val_fraction=0.25, lowercase=lowercase)
    trainer = Trainer(text, TrainConfig(hidden=8, batch=2, seq_len=8), checkpoint=tmp_path / "ck" / "m.npz")
    trainer.train_step()
    trainer.save()
    loaded = watch.load(tmp_path / "ck" / "m.npz")
    found, where = watch.find_corpus(loaded, tmp_path / "ck" / "m.npz")  # not beside it: where the run read it
    assert found is not None and where == str((tmp_path / "book.txt").resolve())
    assert found.n_train == text.n_train and found.split and np.array_equal(found.val_ids, text.val_ids)


# ------------------------------------------------------------ waiting for the first save
def test_wait_for_reads_the_checkpoint_once_it_appears(tmp_path):
    import threading

    run = Run(tmp_path)
    waiting = threading.Event()

    def sleep(seconds: float) -> None:
        waiting.set()  # looked, found nothing, waits
        threading.Event().wait(seconds)

    found: list = []
    thread = threading.Thread(target=lambda: found.append(watch.wait_for(run.path, 0.01, sleep)))
    thread.start()
    assert waiting.wait(TIMEOUT) and not found
    run.train_and_save(5)
    thread.join(TIMEOUT)
    assert found and found[0].step == 5


def test_wait_for_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(watch.CheckpointError, match="not an lstm-tui checkpoint"):
        watch.wait_for(path, 0.01, lambda _s: pytest.fail("waited for a file that exists"))


def test_the_command_waits_for_a_run_that_has_not_saved_yet_then_shows_it(tmp_path):
    """The documented recipe: start a run, then watch it before its first save. In a terminal
    (a pty here), watch says it is waiting, and shows the run once the file appears."""
    import fcntl
    import pty
    import select
    import struct
    import subprocess
    import termios

    run = Run(tmp_path)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [*LSTM_TUI, "watch", str(run.path)], cwd=tmp_path, stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""

    def read_until(needle: bytes) -> None:
        nonlocal seen
        while needle not in seen:
            ready, _, _ = select.select([master], [], [], TIMEOUT)
            assert ready, f"no {needle!r} in {seen[-500:]!r}"
            try:
                seen += os.read(master, 65536)
            except OSError:  # the process closed the terminal
                raise AssertionError(f"no {needle!r} in {seen[-500:]!r}") from None

    try:
        read_until(b"waiting for")
        assert proc.poll() is None  # still there, waiting
        run.train_and_save(5)
        read_until(b"WATCHING")
        os.write(master, b"\x11")  # ctrl+q
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
