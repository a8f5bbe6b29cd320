"""Awkward seeds and texts, on the command line and in the app: warnings, not crashes or garbage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli as cli
from helpers import wait_for

from core import TrainConfig, Trainer, corpus
from core import checkpoint as ckpt_io
from tui.apps.train import make_app
from tui.widgets.generate_panel import GeneratePanel
from tui.widgets.next_chars import NextCharView


@pytest.fixture(scope="module")
def model(saved_model) -> Path:
    return saved_model(hidden=16, steps=20)


@pytest.mark.parametrize(
    "prime, warning",
    [
        ("", None),  # nothing to continue: starts from a random character
        ("XYZ€☃", "skipped"),  # only characters the model never saw
        ("to be\x1b[31m\x07\t or", "skipped"),  # control characters (argv cannot hold NUL)
        ("[bold]to be[/bold]", "skipped"),  # markup-looking text is just characters
    ],
)
def test_awkward_primes_generate_and_warn(model, tmp_path, prime, warning):
    res = cli("sample", str(model), "--prime", prime, "--length", "40", "--seed", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    known = "".join(ch for ch in prime if ch in corpus.load(corpus.bundled_path()).vocab)
    assert res.stdout.startswith(known)
    assert len(res.stdout) == len(known) + 40
    assert (warning in res.stderr) if warning else res.stderr == ""
    assert "Traceback" not in res.stderr


def test_a_100_000_character_prime(model, tmp_path):
    prime = corpus.bundled_path().read_text(encoding="utf-8") * 116  # ~100,000 characters
    assert len(prime) >= 100_000
    res = cli("sample", str(model), "--prime", prime, "--length", "20", "--seed", "2", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(prime) and len(res.stdout) == len(prime) + 20


def test_very_long_lines_mixed_line_endings_and_a_bom_train(tmp_path):
    rng = np.random.default_rng(0)
    line = "".join(rng.choice(list("abcdefgh ,."), 300_000))  # one 300 kB line
    (tmp_path / "long.txt").write_bytes(b"\xef\xbb\xbf" + (line + "\r\n" + line[:1000] + "\r" + line[:500]).encode())
    res = cli("train", "long.txt", "--steps", "3", "--hidden", "16", "--eval-chars", "300", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load(tmp_path / "long.lstm.npz")
    assert "\ufeff" not in ck.vocab.chars and "\r" not in ck.vocab.chars and "\n" in ck.vocab.chars


def test_another_encoding_with_the_option_trains(tmp_path):
    (tmp_path / "cp.txt").write_bytes("Größe, naïve café — «déjà vu». ".encode("cp1252") * 40)
    bad = cli("train", "cp.txt", "--steps", "1", "--hidden", "8", cwd=tmp_path)
    assert bad.returncode == 2 and "--encoding" in bad.stderr
    good = cli("train", "cp.txt", "--encoding", "cp1252", "--steps", "2", "--hidden", "8", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert "ß" in ckpt_io.load(tmp_path / "cp.lstm.npz").vocab.chars


async def test_the_app_shows_markup_seeds_literally_and_survives_a_huge_seed():
    text = "a [bold] tag and [red]colour[/red] words\n" * 20
    app = make_app(Trainer(corpus.from_text(text, name="markup.txt"), TrainConfig(hidden=16, steps=20, eval_every=5)))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        panel = app.query_one(GeneratePanel)
        seed = app.query_one("#seed")
        seed.value = "[bold]"
        runs = app._run_id
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app._run_id > runs and not panel.running, "generation")
        shown = str(panel.query_one("#gen-output").render())
        assert shown.startswith("[bold]")  # literal characters, not turned into a style
        # A 100,000-character seed: generation and the next-character view still answer.
        seed.value = text * 125
        assert len(seed.value) >= 100_000
        runs = app._run_id
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: app._run_id > runs and not panel.running and app.generated, "a huge-seed run")
        view = app.query_one(NextCharView)
        await wait_for(pilot, lambda: view.seed == seed.value and len(view.candidates) > 0, "next-char view")
        app.trainer.controls.stop()
        await wait_for(pilot, lambda: not any(w.is_running for w in app.workers), "workers to end")


async def test_ctrl_c_in_the_interface_saves_and_quits_like_ctrl_q(tmp_path):
    path = tmp_path / "c.npz"
    text = "the quick brown fox jumps over the lazy dog\n" * 10
    trainer = Trainer(corpus.from_text(text, name="fox.txt"), TrainConfig(hidden=16, eval_every=5), checkpoint=path)
    app = make_app(trainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.trainer.step_count >= 3, "training")
        await pilot.press("ctrl+c")  # with the seed box focused, where ctrl+c used to copy
        await wait_for(pilot, lambda: app.saved_path is not None, "the save on ctrl+c")
    assert app.saved_path == str(path)
    assert ckpt_io.load(path).meta["step"] >= 3
