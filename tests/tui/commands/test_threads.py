"""The thread count a run trains with: measured at the start unless --threads says, said in one
line, kept in the checkpoint; the measurement leaves the run untouched. No test here asserts a
time or which count wins (that depends on the machine): only what is chosen from what was measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_usage_error, run_cli, tiny_config

from core import Trainer, corpus
from core import checkpoint as ckpt_io
from core.engine import NumpyEngine, NumpyEngineFactory
from tui.plain import threads

SMALL = ["--hidden", "16", "--batch", "4", "--seq-len", "16", "--seed", "3"]


def soliloquy() -> corpus.Corpus:
    return corpus.load(corpus.bundled_path())


# ------------------------------------------------------------------------- the rule
def test_the_counts_measured_are_powers_of_two_and_the_cores_up_to_the_streams():
    assert threads.candidates(2, 32) == [1, 2]
    assert threads.candidates(6, 32) == [1, 2, 4, 6]
    assert threads.candidates(8, 5) == [1, 2, 4, 5]
    assert threads.candidates(8, 1) == [1]
    assert threads.candidates(1, 32) == [1]


def test_the_fewest_threads_within_the_margin_of_the_fastest_win():
    def pick(rates: dict) -> tuple:
        return threads.pick({k if isinstance(k, tuple) else (k, False): v for k, v in rates.items()})

    assert pick({1: 100.0, 2: 180.0}) == (2, False)
    assert pick({1: 100.0, 2: 103.0}) == (1, False)  # within 5%: not worth a second core
    assert pick({1: 100.0, 2: 60.0}) == (1, False)
    assert pick({1: 100.0, 2: 170.0, 4: 175.0}) == (2, False)
    assert pick({1: 100.0, 2: 150.0, 4: 200.0}) == (4, False)
    assert pick({1: 100.0, 2: 150.0, (2, True): 160.0}) == (2, True)  # the faster way of using 2
    assert pick({1: 100.0, 2: 150.0, (2, True): 140.0, 4: 200.0, (4, True): 230.0}) == (4, True)


def test_a_wavefront_is_measured_for_two_layers_or_more():
    assert threads.arrangements(2, 32, 1) == [(1, False), (2, False)]
    assert threads.arrangements(2, 32, 2) == [(1, False), (2, False), (2, True)]
    assert threads.arrangements(8, 32, 2) == [
        (1, False),
        (2, False),
        (4, False),
        (8, False),
        (2, True),
        (4, True),
        (8, True),
    ]
    assert threads.arrangements(4, 32, 3) == [(1, False), (2, False), (4, False), (3, True)]
    assert threads.arrangements(8, 1, 2) == [(1, False), (2, True)]  # one stream: only the layers can share


def test_threads_asked_for_are_used_without_measuring(monkeypatch):
    monkeypatch.setattr(threads, "measure", lambda *a, **k: pytest.fail("measured despite --threads"))
    trainer = Trainer(soliloquy(), tiny_config(batch=4))
    choice = threads.choose(trainer, 3)
    assert (choice.threads, choice.blas) == (3, 1) and choice.line() == "threads: 3 (--threads 3)"
    choice = threads.choose(trainer, 9)
    assert choice.threads == 4 and "4 streams" in choice.reason  # never more threads than streams


def test_the_measured_count_is_chosen_and_said(monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "blas_from_environment", lambda: None)
    rates = {(1, False): 1000.0, (2, False): 1900.0, (4, False): 1950.0}
    monkeypatch.setattr(threads, "measure", lambda trainer, ways, budget_s: rates)
    choice = threads.choose(Trainer(soliloquy(), tiny_config(batch=8)), None)
    assert choice.threads == 2 and not choice.wavefront and choice.rates[(2, False)] == 1900.0
    assert choice.line().startswith("threads: 2 (1.90x one thread on this model, of 4 cores")
    slower = {(1, False): 1000.0, (2, False): 700.0, (4, False): 500.0}
    monkeypatch.setattr(threads, "measure", lambda trainer, ways, budget_s: slower)
    choice = threads.choose(Trainer(soliloquy(), tiny_config(batch=8)), None)
    assert choice.threads == 1 and "2 threads measured 0.70x one" in choice.reason
    wave = {(1, False): 1000.0, (2, False): 1500.0, (2, True): 1700.0, (4, False): 1600.0, (4, True): 1650.0}
    monkeypatch.setattr(threads, "measure", lambda trainer, ways, budget_s: wave)
    choice = threads.choose(Trainer(soliloquy(), tiny_config(batch=8, layers=2)), None)
    assert (choice.threads, choice.wavefront) == (2, True)
    assert choice.line().startswith("threads: 2, the layers as a wavefront (1.70x one thread")


def test_one_stream_or_one_core_needs_no_measurement(monkeypatch):
    monkeypatch.setattr(threads, "blas_from_environment", lambda: None)
    monkeypatch.setattr(threads, "measure", lambda *a, **k: pytest.fail("nothing to measure"))
    one_stream = Trainer(soliloquy(), tiny_config(batch=1))
    assert threads.choose(one_stream, None).line() == "threads: 1 (the batch has 1 stream)"
    monkeypatch.setattr(threads, "available_cores", lambda: 1)
    assert threads.choose(Trainer(soliloquy(), tiny_config()), None).line() == "threads: 1 (one core)"


def test_a_blas_count_from_the_environment_is_kept(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    monkeypatch.setattr(threads, "measure", lambda *a, **k: pytest.fail("the user chose"))
    choice = threads.choose(Trainer(soliloquy(), tiny_config()), None)
    assert choice.threads == 1 and choice.blas is None and "OPENBLAS_NUM_THREADS=2 is set" in choice.reason


def test_measuring_leaves_the_run_untouched():
    """The measurement runs throwaway engines on the run's weights: the weights, the carried state,
    the stream positions and the random generator are as they were, and the run's buffers unused."""
    trainer = Trainer(soliloquy(), tiny_config(batch=6, dropout=0.2, layers=2))
    params = {k: v.copy() for k, v in trainer.model.params.items()}
    positions = trainer.batches.positions.copy()
    rng_state = trainer.rng.bit_generator.state
    ways = [(1, False), (2, False), (3, False), (2, True)]
    rates = threads.measure(trainer, ways, budget_s=0.05)
    assert set(rates) == set(ways) and all(r > 0 for r in rates.values())
    for k, v in params.items():
        assert np.array_equal(trainer.model.params[k], v)
    assert np.array_equal(trainer.batches.positions, positions)
    assert trainer.rng.bit_generator.state == rng_state
    assert trainer.step_count == 0 and trainer.engine._learned is None
    assert not trainer.model._pool._free  # its buffers were not taken by the measurement


def test_applying_a_choice_sets_the_engine_and_the_factory_for_a_restart():
    factory = NumpyEngineFactory(1)
    trainer = Trainer(soliloquy(), tiny_config(), engine=factory)
    handle = threads.apply(trainer, threads.Choice(2, "test", wavefront=True), factory)
    try:
        assert isinstance(trainer.engine, NumpyEngine) and trainer.engine.threads == 2 and trainer.engine.wavefront
        again = trainer.restart().engine  # a reset in the interface keeps the arrangement
        assert isinstance(again, NumpyEngine) and again.threads == 2 and again.wavefront
        from threadpoolctl import threadpool_info

        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        handle.restore_original_limits()


# ------------------------------------------------------------------- the command line
def test_train_says_the_threads_it_was_given_and_the_checkpoint_keeps_them(tmp_path: Path):
    res = run_cli("train", "--steps", "3", "--threads", "2", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "lstm-tui: threads: 2 (--threads 2)" in res.stderr
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta["threads"] == 2


def test_train_measures_when_not_told(tmp_path: Path):
    res = run_cli("train", "--steps", "3", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if ln.startswith("lstm-tui: threads: ")]
    chosen = int(line.split()[2])
    assert "one thread on this model" in line or "one on this model" in line or "core" in line, line
    assert ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta["threads"] == chosen


def test_a_resume_on_another_count_says_how_to_repeat_it_exactly(tmp_path: Path):
    assert run_cli("train", "--steps", "2", "--threads", "2", *SMALL, cwd=tmp_path).returncode == 0
    res = run_cli("train", "--resume", "hamlet.lstm.npz", "--steps", "2", "--threads", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "threads: 1 (--threads 1); the checkpoint trained on 2: --threads 2 would continue it" in res.stderr


def test_wavefront_on_the_command_line(tmp_path: Path):
    res = run_cli("train", "--steps", "2", "--threads", "2", "--wavefront", "--layers", "2", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "threads: 2, the layers as a wavefront (--threads 2 --wavefront" in res.stderr
    meta = ckpt_io.load(tmp_path / "hamlet.lstm.npz").meta
    assert (meta["threads"], meta["wavefront"]) == (2, True)
    res = run_cli("train", "--resume", "hamlet.lstm.npz", "--steps", "1", "--threads", "2", cwd=tmp_path)
    assert "the checkpoint trained on 2 as a wavefront: --threads 2 --wavefront would continue it" in res.stderr
    one = run_cli("train", "--steps", "1", "--threads", "2", "--wavefront", *SMALL, cwd=tmp_path)
    assert "threads: 2 (--threads 2; no wavefront: it needs two layers or more" in one.stderr


def test_race_measures_each_cell(tmp_path: Path):
    res = run_cli("race", "--headless", "--steps", "2", "--threads", "2", "--cells", "lstm,rnn", *SMALL, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "lstm-tui: lstm threads: 2 (--threads 2)" in res.stderr
    assert "lstm-tui: rnn threads: 2 (--threads 2)" in res.stderr


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_threads_exit_2(bad: str, tmp_path: Path):
    assert_usage_error(run_cli("train", "--steps", "1", "--threads", bad, *SMALL, cwd=tmp_path), "--threads")


def test_eval_splits_a_long_text_over_threads_with_the_same_scores(tmp_path: Path):
    """`eval --threads 2` reads a text of several streams on two threads: the scores of one thread."""
    text = "".join(f"{i} green bottles hanging on the wall, and if one should fall...\n" for i in range(400))
    (tmp_path / "bottles.txt").write_text(text)
    c = corpus.load(tmp_path / "bottles.txt", val_fraction=0.0)
    Trainer(c, tiny_config(steps=5), checkpoint=tmp_path / "b.npz").save()
    out = {}
    for n in ("1", "2"):
        res = run_cli("eval", "b.npz", "bottles.txt", "--json", "--threads", n, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out[n] = json.loads(res.stdout)
    assert out["1"]["chars"] == out["2"]["chars"] == len(text) - 1
    assert out["2"]["loss"] == pytest.approx(out["1"]["loss"], rel=1e-5)
    assert out["2"]["accuracy"] == pytest.approx(out["1"]["accuracy"], abs=2 / len(text))


def test_evaluate_on_threads_equals_one_thread():
    from core.evaluate import evaluate, stream_count

    text = corpus.from_text("to be, or not to be, that is the question. " * 500, val_fraction=0.0)
    trainer = Trainer(text, tiny_config(layers=2))
    assert stream_count(len(text.ids) - 1) >= 4
    one = evaluate(trainer.model, text.ids, text.vocab)
    three = evaluate(trainer.model, text.ids, text.vocab, threads=3)
    assert three.loss == pytest.approx(one.loss, rel=1e-5) and three.n == one.n
