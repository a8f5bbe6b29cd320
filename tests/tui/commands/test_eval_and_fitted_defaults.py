"""`lstm-tui eval`, and the command line's use of the fitted defaults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_usage_error
from helpers import run_cli as run

from core import TrainConfig, Trainer, corpus, evaluate
from core import checkpoint as ckpt_io

FAST = 60e9  # a machine doing 60 GFLOP/s in one matrix product, as this one does
SLOW = 6e9


def _text(tmp_path: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs", "far"]
    text = " ".join(rng.choice(words, size=n // 4))[:n] + "\n"
    path = tmp_path / "words.txt"
    path.write_text(text)
    return path


def test_train_says_what_it_chose_and_builds_that_model(tmp_path):
    path = _text(tmp_path, 60_000)
    res = run("train", str(path), "--steps", "1", "--eval-every", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    chose = [line for line in res.stderr.splitlines() if line.startswith("lstm-tui: chose ")]
    assert len(chose) == 1
    ck = ckpt_io.load(tmp_path / "words.lstm.npz")
    cfg = ck.meta["train"]
    assert chose[0].startswith(f"lstm-tui: chose {cfg['layers']} x {cfg['hidden']} units, batch {cfg['batch']}")
    assert f"lr {cfg['lr']:g}" in chose[0]


def test_flags_win_over_the_choice_and_resume_keeps_the_saved_shape(tmp_path):
    path = _text(tmp_path, 60_000)
    res = run("train", str(path), "--steps", "1", "--hidden", "24", "--batch", "5", "--eval-every", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    cfg = ckpt_io.load(tmp_path / "words.lstm.npz").meta["train"]
    assert (cfg["hidden"], cfg["batch"], cfg["lr"]) == (24, 5, 1e-2)
    res = run("train", str(path), "--resume", "words.lstm.npz", "--steps", "1", "--eval-every", "0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "lstm-tui: chose" not in res.stderr  # nothing is chosen when resuming
    cfg = ckpt_io.load(tmp_path / "words.lstm.npz").meta["train"]
    assert (cfg["hidden"], cfg["batch"]) == (24, 5)


def test_absurd_windows_shrink_to_the_text_before_memory_is_judged(tmp_path):
    path = _text(tmp_path, 11_000)
    res = run(
        "train", str(path), "--seq-len", "100000", "--batch", "512", "--steps", "1", "--hidden", "16", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert "the training text has only" in res.stderr


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small model trained on a text with a validation part, saved with the text beside it."""
    tmp = tmp_path_factory.mktemp("eval")
    text = "".join(
        f"{i} green bottles hanging on the wall, and if one green bottle should fall...\n" for i in range(90)
    )
    (tmp / "bottles.txt").write_text(text)
    c = corpus.load(tmp / "bottles.txt")
    assert c.split
    Trainer(c, TrainConfig(hidden=16, steps=30, eval_every=0), checkpoint=tmp / "b.npz").save()
    for _ in Trainer.resume(tmp / "b.npz", c, steps=30).run():
        pass
    return tmp / "b.npz"


def test_eval_scores_the_validation_part_by_default(model):
    res = run("eval", str(model), "--json", cwd=model.parent)
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)
    ck = ckpt_io.load(model)
    c = corpus.load(model.parent / "bottles.txt")
    expected = evaluate(ck.model, c.val_ids, ck.vocab)
    assert rec["chars"] == len(c.val_ids) - 1 and rec["skipped"] == 0 and rec["sample"] is False
    assert rec["loss"] == pytest.approx(expected.loss, rel=1e-9)
    assert rec["accuracy"] == pytest.approx(expected.accuracy)
    assert rec["bits_per_char"] == pytest.approx(expected.loss / np.log(2))
    assert rec["perplexity"] == pytest.approx(np.exp(expected.loss))
    assert "validation part" in rec["text"]
    # and from a cold start: every 64-character block from a blank state, its loss by position
    cold = evaluate(ck.model, c.val_ids, ck.vocab, cold=True).cold
    assert rec["cold_loss"] == pytest.approx(cold.loss, rel=1e-9) and rec["cold_block"] == 64
    assert rec["cold_by_position"] == pytest.approx(list(cold.by_position), abs=1e-6)
    assert rec["cold_by_position"][0] > rec["cold_by_position"][-1]  # a blank state knows least at first
    text = run("eval", str(model), cwd=model.parent).stdout
    assert "cold start: each 64-character block read from a blank state" in text
    assert f"loss        {cold.loss:.4f} nats/char" in text
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit() and "-" in line.split()[0]]
    assert [line.split()[0] for line in rows] == [f"{a}-{a + 7}" for a in range(0, 64, 8)]


def test_eval_any_text_skips_and_counts_unknown_characters(model, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("10 green bottles — hanging on the wall ✓\r\n")  # — and ✓ were never seen; \r\n -> \n
    res = run("eval", str(model), str(other), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    ck = ckpt_io.load(model)
    known = "10 green bottles  hanging on the wall \n"
    expected = evaluate(ck.model, ck.vocab.encode(known), ck.vocab)
    assert f"{len(known) - 1:,} characters scored" in out
    assert f"loss        {expected.loss:.4f} nats/char" in out
    assert "skipped     2 characters the model never saw (2 distinct" in out
    res = run("eval", str(model), str(other), "--json", "--chars", "5", cwd=tmp_path)
    rec = json.loads(res.stdout)
    assert rec["chars"] == 5 and rec["sample"] is True and rec["skipped"] == 2


def test_eval_bad_checkpoints(tmp_path):
    assert_usage_error(run("eval", "missing.npz", cwd=tmp_path), "no such checkpoint")
    (tmp_path / "x.npz").write_text("not a checkpoint")
    assert_usage_error(run("eval", "x.npz", cwd=tmp_path), "x.npz")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"\x00\x01binary", "binary"),
        (b"abc \xfa bad utf-8 \xc3", "not valid utf-8"),
        ("✓✓✓—✓".encode(), "characters the model knows"),
    ],
)
def test_eval_bad_texts(model, tmp_path, content, needle):
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_bytes(content)
    assert_usage_error(run("eval", str(model), str(path), cwd=tmp_path), needle)


def test_eval_without_text_says_how_to_give_it(model, tmp_path):
    shutil.copy(model, tmp_path / "moved.npz")  # away from its text, which is found by name...
    (model.parent / "bottles.txt").rename(model.parent / "bottles.moved")  # ...and now nowhere
    try:
        assert_usage_error(run("eval", str(tmp_path / "moved.npz"), cwd=tmp_path), "give the text to score")
    finally:
        (model.parent / "bottles.moved").rename(model.parent / "bottles.txt")


def test_the_weights_a_run_ends_with_are_kept_as_best_when_no_evaluation_beat_them(tmp_path):
    """Stopped before an evaluation in progress finished (or with none asked for), the run's final
    weights are still scored for the summary, and kept as the best model when they are."""
    path = _text(tmp_path, 30_000)
    res = run("train", str(path), "--steps", "20", "--eval-every", "0", "--hidden", "16", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    best = ckpt_io.load(tmp_path / "words.lstm.best.npz")
    final = ckpt_io.load(tmp_path / "words.lstm.npz")
    assert best.meta["step"] == final.meta["step"] == 20
    c = corpus.load(path)
    assert best.meta["best_val"] == pytest.approx(evaluate(best.model, c.val_ids, c.vocab).loss, rel=1e-6)
    assert final.meta["best_val"] == best.meta["best_val"]


def test_an_interface_missing_from_the_installation_is_one_clear_error():
    from core import LstmTuiError
    from tui.commands.common import interface

    with pytest.raises(LstmTuiError, match=r"^the interface is not available in this installation "
                       r"\(tui\.no_such_screen is missing\); try train$"):  # fmt: skip
        interface("tui.no_such_screen", "App", "; try train")
    assert interface("tui.commands.common", "interface") is interface  # an installed one is returned
