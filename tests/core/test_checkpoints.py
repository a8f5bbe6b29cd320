"""Checkpoints: exact round trips and resumes, refusal of foreign and corrupt files, atomic saves."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import run_steps, tiny_config

from core import (
    CharLSTM,
    CheckpointError,
    SaveReport,
    StepReport,
    Trainer,
    corpus,
)
from core import checkpoint as ckpt_io
from core.best import best_path


def test_checkpoint_round_trip(tmp_path):
    c = corpus.load(corpus.bundled_path())
    trainer = Trainer(c, tiny_config(), checkpoint=tmp_path / "m.npz")
    run_steps(trainer, 5)
    path = trainer.save()
    ck = ckpt_io.load(path)
    assert ck.vocab == c.vocab and ck.meta["step"] == 5
    for k, v in trainer.model.params.items():
        assert np.array_equal(ck.model.params[k], v)
    assert not list(tmp_path.glob("*.tmp"))  # the temporary file was renamed away
    assert path.stat().st_mode & 0o044  # readable like any file, not mkstemp's private 0o600


@pytest.mark.parametrize(("cell", "layers"), [("lstm", 1), ("gru", 1), ("rnn", 1), ("gru", 2), ("rnn", 2)])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_resume_is_exact(tmp_path, dropout, cell, layers):
    c = corpus.load(corpus.bundled_path())
    cfg = tiny_config(dropout=dropout, eval_every=4, seed=5, cell=cell, layers=layers)
    straight = Trainer(c, cfg)
    losses_straight = [r.loss for r in run_steps(straight, 12) if isinstance(r, StepReport)]

    first = Trainer(c, cfg, checkpoint=tmp_path / "r.npz")
    losses = [r.loss for r in run_steps(first, 7) if isinstance(r, StepReport)]
    first.save()
    resumed = Trainer.resume(tmp_path / "r.npz", c)
    losses += [r.loss for r in run_steps(resumed, 5) if isinstance(r, StepReport)]
    assert losses == losses_straight
    for k, v in straight.model.params.items():
        assert np.array_equal(resumed.model.params[k], v), k
    assert resumed.loss_history == straight.loss_history
    # the same scores, and one more: the first run's final evaluation, of the weights it stopped
    # with (which changes nothing else in the run), which the resumed run does not repeat
    assert [v[0] for v in resumed.val_history if v not in straight.val_history] == [7]
    assert [v for v in resumed.val_history if v[0] != 7] == straight.val_history
    assert resumed.best_val == straight.best_val and resumed.optimizer.lr == straight.optimizer.lr
    assert resumed.model.config.cell == cell


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_a_checkpoint_records_its_cell_and_only_that_cells_state(tmp_path, cell):
    c = corpus.from_text("abcabcabc abcab")
    trainer = Trainer(c, tiny_config(cell=cell, layers=2), checkpoint=tmp_path / "m.npz")
    run_steps(trainer, 2)
    ck = ckpt_io.load(trainer.save())
    assert ck.meta["version"] == ckpt_io.VERSION == 2
    assert ck.meta["model"]["cell"] == ck.meta["train"]["cell"] == cell
    assert type(ck.model) is type(trainer.model) and ck.model.config == trainer.model.config
    assert sorted(ck.group("state")) == ["h0", "h1"]  # a GRU or RNN has no cell state
    with pytest.raises(CheckpointError, match="--cell lstm does not match the checkpoint's cell " + cell):
        Trainer.resume(tmp_path / "m.npz", c, cell="lstm")


def test_a_version_1_checkpoint_loads_as_an_lstm(tmp_path):
    """Files written before the cell was recorded (format version 1, no `cell` anywhere) are LSTMs."""
    import json

    c = corpus.from_text("abcabcabc abcab")
    trainer = Trainer(c, tiny_config(layers=2), checkpoint=tmp_path / "new.npz")
    run_steps(trainer, 3)
    path = trainer.save()
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 1  # what the old writer wrote: no cell in the model or training config
    del meta["model"]["cell"], meta["train"]["cell"]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    ck = ckpt_io.load(tmp_path / "v1.npz")
    assert isinstance(ck.model, CharLSTM) and ck.model.config.cell == "lstm"
    resumed = Trainer.resume(tmp_path / "v1.npz", c)
    assert resumed.config.cell == "lstm" and resumed.step_count == 3
    for k, v in trainer.model.params.items():
        assert np.array_equal(resumed.model.params[k], v), k
    for (h, cc), (rh, rc) in zip(trainer.state, resumed.state, strict=True):
        assert np.array_equal(h, rh) and np.array_equal(cc, rc)


def test_resume_refuses_another_vocabulary(tmp_path):
    c = corpus.from_text("abcabcabc")
    t = Trainer(c, tiny_config(), checkpoint=tmp_path / "v.npz")
    t.save()
    with pytest.raises(CheckpointError, match=r"3 characters the model never saw \('xyz'\)"):
        Trainer.resume(tmp_path / "v.npz", corpus.from_text("xyzxyz"))
    with pytest.raises(CheckpointError, match="hidden"):
        Trainer.resume(tmp_path / "v.npz", c, hidden=32)


def test_truncated_checkpoint_is_refused(tmp_path):
    c = corpus.from_text("abcabcabc")
    path = Trainer(c, tiny_config()).save(tmp_path / "t.npz")
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 30, 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError) as e:
            ckpt_io.load(bad)
        assert "\n" not in str(e.value)


def test_non_checkpoint_files_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not an lstm-tui checkpoint"):
        ckpt_io.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(CheckpointError, match="not an lstm-tui checkpoint"):
        ckpt_io.load(other)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt_io.load(tmp_path / "missing.npz")


def test_pickled_objects_are_refused_not_executed(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    p = tmp_path / "evil.npz"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="pickled"):
        ckpt_io.load(p)
    obj = tmp_path / "obj.npz"
    np.savez(obj, meta=np.array([Evil()], dtype=object))
    with pytest.raises(CheckpointError, match="pickled"):
        ckpt_io.load(obj)
    assert not marker.exists()


def test_another_format_version_is_refused(tmp_path):
    c = corpus.from_text("abcabcabc")
    path = Trainer(c, tiny_config()).save(tmp_path / "v1.npz")
    import json

    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    meta["version"] = 99
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(CheckpointError, match="version 99"):
        ckpt_io.load(tmp_path / "v99.npz")


def test_best_weights_are_kept_beside_the_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    words = ["alpha ", "beta ", "gamma ", "delta "]
    text = "".join(rng.choice(words, 1500))
    c = corpus.from_text(text)
    assert c.split
    trainer = Trainer(c, tiny_config(eval_every=5, steps=20), checkpoint=tmp_path / "b.npz")
    saves = [r for r in trainer.run() if isinstance(r, SaveReport)]
    assert saves and all(r.kind == "best" and r.error is None for r in saves)
    best = ckpt_io.load(best_path(tmp_path / "b.npz"))
    assert best.meta["best_val"] == pytest.approx(trainer.best_val)


def test_save_errors_are_reported_not_raised_in_the_loop(tmp_path):
    c = corpus.from_text("abcabcabc")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    trainer = Trainer(c, tiny_config(save_every=1, steps=1), checkpoint=blocker / "m.npz")
    saves = [r for r in trainer.run() if isinstance(r, SaveReport)]
    assert saves and saves[0].error and "cannot save" in saves[0].error


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    c = corpus.from_text("abcabcabc")
    trainer = Trainer(c, tiny_config(), checkpoint=tmp_path / "m.npz")
    trainer.save()
    before = (tmp_path / "m.npz").read_bytes()
    run_steps(trainer, 2)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(CheckpointError, match="No space left"):
        trainer.save()
    assert (tmp_path / "m.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert z.testzip() is None
