"""The engine's promises: text handling, batching, the model, sampling, training, checkpoints."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from core import (
    CharLSTM,
    CheckpointError,
    ConfigError,
    CorpusError,
    DivergedReport,
    DoneReport,
    EvalReport,
    ModelConfig,
    SaveReport,
    StepReport,
    TrainConfig,
    Trainer,
    Vocab,
    corpus,
    evaluate,
    generate,
    probabilities,
    sample,
)
from core import checkpoint as ckpt_io
from core.batches import Batches, fit_shape
from core.optim import clip_by_global_norm, make_optimizer
from core.trainer import best_path

HAMLET_SHA = "d6bc132567a2fd9e83c9253a84692c166529ff7cf39d4b1c3b170be4e1573a58"


def tiny_config(**kw) -> TrainConfig:
    base = dict(hidden=16, batch=4, seq_len=16, eval_every=0, lr=1e-2)
    base.update(kw)
    return TrainConfig(**base)


def run_steps(trainer: Trainer, n: int) -> list:
    """Reports up to and including the n-th step from now."""
    target = trainer.step_count + n
    cfg = trainer.config
    trainer.config = TrainConfig.from_dict({**cfg.to_dict(), "steps": target})
    reports = list(trainer.run())
    trainer.config = cfg
    return reports


# ------------------------------------------------------------------------ corpus
def test_bundled_corpus_is_the_notebooks_soliloquy():
    import hashlib

    path = corpus.bundled_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == HAMLET_SHA
    c = corpus.load(path)
    assert (c.size, c.vocab.size) == (866, 32)
    assert not c.split and "whole text" in c.note
    assert c.text().startswith("to be, or not to be")


def test_unicode_text_works_like_english():
    text = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 3 + "café naïve"
    c = corpus.from_text(text)
    assert c.text() == text
    assert c.vocab.size == len(set(text))
    trainer = Trainer(c, tiny_config())
    reports = run_steps(trainer, 3)
    assert any(isinstance(r, StepReport) for r in reports)


def test_lowercase_option():
    c = corpus.from_text("Hello World", lowercase=True)
    assert c.text() == "hello world"


def test_large_texts_are_split_for_validation():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh \n"), 20_000))
    c = corpus.from_text(text)
    assert c.split
    assert len(c.val_ids) == 2000 and c.n_train == 18_000
    assert "validation" in c.note
    assert corpus.from_text(text, val_fraction=0).split is False


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"   \n\t  \n", "only whitespace"),
        (b"aaaaaaa", "only 1 distinct character"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "looks binary"),
        (b"caf\xe9 au lait", "not valid utf-8"),
    ],
)
def test_bad_corpora_are_refused_with_one_line(tmp_path, content, expected):
    p = tmp_path / "text.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        corpus.load(p)
    msg = str(e.value)
    assert expected in msg and "\n" not in msg


def test_undecodable_text_names_offset_and_encoding_option(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("naïve café".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"offset 2.*--encoding"):
        corpus.load(p)
    assert corpus.load(p, encoding="latin-1").text() == "naïve café"


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        corpus.load(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="is a directory"):
        corpus.load(tmp_path)


def test_an_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    p = tmp_path / "secret.txt"
    p.write_text("hello there")

    def denied(self):  # chmod 000 cannot stop root, so stand in for the kernel's refusal
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CorpusError, match="cannot read .*permission denied"):
        corpus.load(p)


def test_byte_order_mark_and_line_endings(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfline one\r\nline two\rthree\n")
    c = corpus.load(p)
    assert c.text() == "line one\nline two\nthree\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_with_a_byte_order_mark_load_without_the_option(tmp_path, encoding):
    text = "naïve café, 春眠不觉晓\n" * 3
    p = tmp_path / "wide.txt"
    bom = {"utf-16": b"", "utf-16-be": b"\xfe\xff", "utf-32": b""}[encoding]
    p.write_bytes(bom + text.encode(encoding))
    assert corpus.load(p).text() == text


def test_unknown_encoding_is_a_clear_error(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello")
    with pytest.raises(CorpusError, match="unknown encoding"):
        corpus.load(p, encoding="klingon-8")


# ------------------------------------------------------------------------ vocab
def test_vocab_encode_decode_and_unknown_characters():
    v = Vocab.from_text("hello world")
    assert v.chars == tuple(sorted(set("hello world")))
    ids = v.encode("hold")
    assert v.decode(ids) == "hold"
    known, skipped = v.encode_known("hex? wow!")
    assert v.decode(known) == "he wow"
    assert skipped == ["x", "?", "!"]
    with pytest.raises(CorpusError):
        v.encode("xyz")


def test_vocab_beyond_the_basic_plane():
    text = "a😀b😀c𝄞"
    v = Vocab.from_text(text)
    assert v.decode(v.encode(text)) == text
    ids, skipped = v.encode_known("a🙃b")
    assert v.decode(ids) == "ab" and skipped == ["🙃"]


# ---------------------------------------------------------------------- batches
def test_batches_shrink_to_fit_a_short_text():
    assert fit_shape(2, 16, 64) == (1, 1)
    assert fit_shape(11, 4, 100) == (1, 10)
    assert fit_shape(101, 32, 10) == (10, 10)
    assert fit_shape(1000, 16, 48) == (16, 48)
    assert fit_shape(866, 16, 64) == (13, 64)  # B windows of T must fit in the text


def test_batches_cover_the_text_and_reset_on_wrap():
    ids = np.arange(21, dtype=np.int64)  # 20 (input, target) pairs
    b = Batches(ids, batch=2, seq_len=5)
    seen = []
    for _ in range(4):
        w = b.next()
        assert np.array_equal(w.y, w.x + 1)  # targets are the next character
        seen.append(w)
    # Stream 0 starts at 0, stream 1 at 10; after 2 windows stream 1 wraps to 0 and resets.
    assert seen[0].x[0].tolist() == [0, 10]
    assert 0 in seen[0].resets and seen[0].resets[0].tolist() == [0]
    assert seen[2].x[0].tolist() == [10, 0]
    assert seen[2].resets[0].tolist() == [1]
    assert b.epoch == pytest.approx(40 / 20)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_two_character_corpus_trains(cell):
    c = corpus.from_text("ab")
    trainer = Trainer(c, TrainConfig(hidden=8, eval_every=1, steps=3, cell=cell))
    reports = list(trainer.run())
    assert (trainer.batch, trainer.seq_len) == (1, 1) and trainer.shrunk
    steps = [r for r in reports if isinstance(r, StepReport)]
    assert len(steps) == 3 and all(math.isfinite(r.loss) for r in steps)
    assert isinstance(reports[-1], DoneReport) and reports[-1].reason == "budget"


# ------------------------------------------------------------------------ model
def test_step_by_step_equals_the_batched_window():
    rng = np.random.default_rng(1)
    cfg = ModelConfig(vocab_size=7, hidden=6, layers=2, dtype="float64")
    model = CharLSTM.create(cfg, rng)
    x = rng.integers(0, 7, (9, 3))  # (T, B)
    logits, final, _ = model.forward(x, model.initial_state(3))
    stepper = model.stepper()
    state = stepper.initial_state(3)
    for t in range(9):
        out, state = stepper.step(x[t], state)
        np.testing.assert_allclose(out, logits[t], rtol=1e-10, atol=1e-12)
    for (h1, c1), (h2, c2) in zip(final, state, strict=True):
        np.testing.assert_allclose(h1, h2, atol=1e-12)
        np.testing.assert_allclose(c1, c2, atol=1e-12)


def test_model_defaults_follow_the_design():
    model = CharLSTM.create(ModelConfig(vocab_size=5, hidden=4), np.random.default_rng(0))
    b = model.params["b0"]
    assert model.params["Wx0"].shape == (5, 16) and model.params["Wh0"].shape == (4, 16)
    assert np.all(b[4:8] == 1.0) and np.all(b[:4] == 0) and np.all(b[8:] == 0)  # forget bias 1
    assert model.params["Wx0"].dtype == np.float32


@pytest.mark.parametrize("bad", [dict(hidden=0), dict(layers=-1), dict(dropout=1.0), dict(dtype="int8")])
def test_absurd_model_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        ModelConfig(vocab_size=5, **bad)


@pytest.mark.parametrize(
    "bad", [dict(hidden=0), dict(batch=-3), dict(seq_len=0), dict(lr=0.0), dict(lr=float("nan")), dict(clip=-1)]
)
def test_absurd_training_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


# --------------------------------------------------------------------- sampling
def test_temperature_zero_is_argmax():
    logits = np.array([0.1, 2.0, -1.0, 1.99])
    rng = np.random.default_rng(0)
    assert all(sample(logits, rng, temperature=0) == 1 for _ in range(20))
    assert probabilities(logits, 0).tolist() == [0, 1, 0, 0]


def test_temperature_one_matches_softmax_statistically():
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5])
    p = np.exp(logits - logits.max())
    p /= p.sum()
    rng = np.random.default_rng(12345)
    n = 20_000
    counts = np.bincount([sample(logits, rng, 1.0) for _ in range(n)], minlength=5)
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert chi2 < 18.47  # the 99.9% point of chi-square with 4 degrees of freedom


def test_top_k_never_leaves_the_top_k():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=40)
    top3 = set(np.argsort(logits)[-3:].tolist())
    draws = {sample(logits, rng, temperature=2.0, top_k=3) for _ in range(2000)}
    assert draws <= top3 and len(draws) == 3


def test_top_k_ranks_the_logits_as_given_even_when_temperature_rounds_them_together():
    # 5e-324 / 2 rounds to 0: after the division both logits look equal, but only index 1 is the top 1
    logits = np.array([0.0, 5e-324])
    assert probabilities(logits, 2.0, top_k=1).tolist() == [0.0, 1.0]
    assert sample(logits, np.random.default_rng(0), 2.0, top_k=1) == 1


@pytest.mark.parametrize("temperature", [0.5, 1.7])
def test_sampling_at_a_temperature_draws_from_probabilities(temperature):
    logits = np.array([1.0, 0.0, -1.0, 2.0, 0.5], dtype=np.float32)
    p = probabilities(logits, temperature)
    rng = np.random.default_rng(7)
    n = 20_000
    counts = np.bincount([sample(logits, rng, temperature) for _ in range(n)], minlength=5)
    chi2 = float(np.sum((counts - n * p) ** 2 / (n * p)))
    assert chi2 < 18.47  # the 99.9% point of chi-square with 4 degrees of freedom


def test_top_p_keeps_the_smallest_set_with_that_mass():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = probabilities(logits, 1.0, top_p=0.75)
    assert p[2] == 0 and p[3] == 0
    assert p[0] == pytest.approx(0.5 / 0.8)


def test_low_temperature_is_stable():
    logits = np.array([1000.0, 999.0, -1000.0])
    p = probabilities(logits, 0.01)
    assert np.all(np.isfinite(p)) and p[0] == pytest.approx(1.0)


@pytest.mark.parametrize("t", [-0.5, float("nan"), float("inf")])
def test_bad_temperatures_are_refused(t):
    with pytest.raises(ConfigError):
        probabilities(np.zeros(3), t)


def test_generation_same_seed_same_text_and_streams():
    c = corpus.load(corpus.bundled_path())
    model = CharLSTM.create(ModelConfig(c.vocab.size, 16), np.random.default_rng(0))
    prime, skipped = c.vocab.encode_known("To be")  # 'T' is not in the lowercased soliloquy
    assert skipped == ["T"]
    a = list(generate(model, prime, 50, np.random.default_rng(7)))
    b = list(generate(model, prime, 50, np.random.default_rng(7)))
    other = list(generate(model, prime, 50, np.random.default_rng(8)))
    assert a == b and a != other and len(a) == 50
    greedy = [list(generate(model, prime, 30, np.random.default_rng(s), temperature=0)) for s in (1, 2)]
    assert greedy[0] == greedy[1]
    stream = generate(model, prime, 5, np.random.default_rng(0))
    assert isinstance(next(stream), int)  # one character at a time
    assert len(list(generate(model, np.zeros(0, np.int64), 5, np.random.default_rng(0)))) == 5


# ------------------------------------------------------------------- training
def test_default_configuration_memorises_the_soliloquy():
    """The first-minute promise: >= 99% greedy accuracy on the whole text from a fresh state."""
    c = corpus.load(corpus.bundled_path())
    trainer = Trainer(c, TrainConfig(steps=300, eval_every=25, seed=0))
    evals = [r for r in trainer.run() if isinstance(r, EvalReport)]
    best = max(evals, key=lambda r: r.accuracy)
    assert best.accuracy >= 0.99, f"accuracy {best.accuracy:.3f} after {trainer.step_count} steps"
    # The figure is measured the strict way: the whole text as one sequence from a fresh state.
    ev = evaluate(trainer.model, c.ids, c.vocab)
    assert ev.n == 865 and ev.accuracy >= 0.99 and ev.loss < 0.1


@pytest.mark.parametrize(("cell", "target"), [("gru", 0.99), ("rnn", 0.95)])
def test_the_other_cells_learn_the_soliloquy_within_1500_steps_at_the_defaults(cell, target):
    """The issue's promise for the new cells: greedy whole-text accuracy of 99% (GRU) and 95% (RNN)
    within 1,500 steps at the default settings. The run stops at the first evaluation that gets
    there (about 100 steps here), so the test stays short."""
    c = corpus.load(corpus.bundled_path())
    trainer = Trainer(c, TrainConfig(steps=1500, cell=cell))  # everything else (evaluations too) as default
    assert trainer.config.cell == cell and TrainConfig().cell == "lstm"
    reached = None
    with threadpoolctl.threadpool_limits(1, user_api="blas"):  # as `lstm-tui train` runs it
        for r in trainer.run():
            if isinstance(r, EvalReport) and r.accuracy >= target:
                reached = r
                break
    assert reached is not None, f"{cell} never reached {target:.0%} in {trainer.step_count} steps"
    ev = evaluate(trainer.model, c.ids, c.vocab)  # the strict way: the whole text from a fresh state
    assert ev.n == 865 and ev.accuracy >= target


def test_evaluation_reports_ground_truth_against_prediction():
    c = corpus.from_text("abcabcabcabc")
    model = CharLSTM.create(ModelConfig(c.vocab.size, 8), np.random.default_rng(0))
    ev = evaluate(model, c.ids, c.vocab, rng=np.random.default_rng(0))
    assert ev.context == "a" and ev.truth == "bcabcabcabc"
    assert len(ev.predicted) == len(ev.truth) == len(ev.p_true) == len(ev.sampled) == 11
    assert np.all((ev.p_true > 0) & (ev.p_true < 1))
    assert ev.accuracy == pytest.approx(np.mean(ev.correct))
    assert ev.loss == pytest.approx(-np.mean(np.log(ev.p_true)), rel=1e-5)
    assert ev.bits_per_char == pytest.approx(ev.loss / math.log(2))


def test_controls_pause_resume_stop_from_another_thread():
    c = corpus.from_text("the quick brown fox jumps over the lazy dog " * 5)
    trainer = Trainer(c, tiny_config())
    controls = trainer.controls
    steps: list[int] = []
    done = threading.Event()

    def worker():
        for r in trainer.run():
            if isinstance(r, StepReport):
                steps.append(r.step)
        done.set()

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    while len(steps) < 3:
        th.join(0.01)
    controls.pause()
    th.join(0.2)
    frozen = trainer.step_count
    th.join(0.3)
    assert trainer.step_count == frozen  # no progress while paused
    controls.resume()
    while trainer.step_count <= frozen:
        th.join(0.01)
    controls.stop()
    assert done.wait(5)


def test_learning_rate_can_change_between_steps():
    c = corpus.from_text("hello there, general kenobi " * 4)
    trainer = Trainer(c, tiny_config())
    trainer.controls.set_lr(0.123)
    r = trainer.train_step()
    assert isinstance(r, StepReport) and r.lr == 0.123


def test_divergence_restores_finite_weights_and_pauses():
    c = corpus.from_text("abcdefghij" * 20)
    trainer = Trainer(c, tiny_config(optimizer="sgd", lr=100.0, clip=0.0))
    trainer.publish()
    good = {k: v.copy() for k, v in trainer.model.params.items()}
    trainer.model.params["Wy"][0, 0] = np.inf  # what a far too high learning rate ends in
    report = trainer.train_step()
    assert isinstance(report, DivergedReport)
    assert "lower learning rate" in report.message
    assert trainer.controls.paused
    for k, v in trainer.model.params.items():
        assert np.all(np.isfinite(v)) and np.array_equal(v, good[k])


def test_the_loop_pauses_on_divergence_and_keeps_answering():
    c = corpus.from_text("abcdefghij" * 20)
    trainer = Trainer(c, tiny_config())
    seen = []
    for r in trainer.run():
        seen.append(r)
        if isinstance(r, StepReport) and r.step == 3:
            trainer.model.params["Wh0"][...] = np.nan  # as a far too high learning rate ends
        if isinstance(r, DivergedReport):
            break
    assert isinstance(seen[-1], DivergedReport) and trainer.controls.paused
    assert all(np.all(np.isfinite(v)) for v in trainer.model.params.values())
    assert trainer.step_count == 3  # the bad step was not counted
    trainer.controls.resume()
    trainer.config = TrainConfig.from_dict({**trainer.config.to_dict(), "steps": 5})
    rest = list(trainer.run())
    assert [r.step for r in rest if isinstance(r, StepReport)] == [4, 5]


def test_snapshot_is_a_copy():
    c = corpus.from_text("some text to learn, some text to learn")
    trainer = Trainer(c, tiny_config())
    snap = trainer.snapshot
    before = snap.params["Wh0"].copy()
    trainer.train_step()
    assert np.array_equal(snap.params["Wh0"], before)
    assert snap.params["Wh0"] is not trainer.model.params["Wh0"]


# ------------------------------------------------------------------ checkpoints
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
    assert resumed.val_history == straight.val_history
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
    with pytest.raises(CheckpointError, match="different vocabulary"):
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


# ------------------------------------------------------------------- isolation
def test_importing_core_loads_neither_textual_nor_rich():
    code = (
        "import sys, core, core.trainer, core.checkpoint, core.sampling;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ------------------------------------------------------------------- optimizers
def _textbook(name: str, steps: list[dict[str, np.ndarray]], p0: dict[str, np.ndarray], lr: float):
    """The update rules as papers write them, in float64, one step at a time."""
    p = {k: v.astype(np.float64) for k, v in p0.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v2 = {k: np.zeros_like(v) for k, v in p.items()}
    for t, grads in enumerate(steps, start=1):
        for k, g in grads.items():
            g = g.astype(np.float64)
            if name == "sgd":
                p[k] -= lr * g
            elif name == "adagrad":
                v2[k] += g * g
                p[k] -= lr * g / (np.sqrt(v2[k]) + 1e-8)
            else:  # adam, with bias-corrected moments
                m[k] = 0.9 * m[k] + 0.1 * g
                v2[k] = 0.999 * v2[k] + 0.001 * g * g
                m_hat, v_hat = m[k] / (1 - 0.9**t), v2[k] / (1 - 0.999**t)
                p[k] -= lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    return p


@pytest.mark.parametrize("name", ["adam", "sgd", "adagrad"])
def test_optimizers_follow_the_textbook_update(name):
    rng = np.random.default_rng(4)
    p0 = {"W": rng.standard_normal((3, 5)), "b": rng.standard_normal(5)}
    steps = [{k: rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 2) for k, v in p0.items()} for _ in range(7)]
    params = {k: v.copy() for k, v in p0.items()}
    opt = make_optimizer(name, params, 0.01)
    for grads in steps:
        opt.step(params, {k: g.copy() for k, g in grads.items()})
    expected = _textbook(name, steps, p0, 0.01)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-10, atol=1e-12)
    assert opt.t == len(steps)


def test_clipping_scales_to_the_global_norm_and_leaves_small_gradients_alone():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # global norm 5
    assert clip_by_global_norm(grads, 10.0) == pytest.approx(5.0)
    assert grads["a"].tolist() == [3.0, 0.0]
    assert clip_by_global_norm(grads, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(grads["a"], [0.6, 0.0])
    np.testing.assert_allclose(grads["b"], [[0.8]])


# ------------------------------------------------------------------------ README
def test_the_readme_library_example_runs(tmp_path):
    """The README's 'Using the engine from Python' block, run as a user would paste it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    marker = "<!-- library-example: tests/test_core.py runs this block -->"
    assert marker in readme
    block = readme.split(marker, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loss_line, text_line = out.stdout.strip().splitlines()
    assert float(loss_line.split()[1]) < 0.1  # 300 steps learn the soliloquy
    assert text_line.startswith("to be, or ") and len(text_line) == len("to be, or ") + 80
    assert (tmp_path / "hamlet.npz").is_file()
