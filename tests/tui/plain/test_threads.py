"""The thread rule and the thread count (tui.plain.threads): one BLAS thread unless the user chose a
count; the NumPy engine's threads measured at the start unless --threads says, the measurement
leaving the run untouched. No test here asserts a time or which count wins (that depends on the
machine): only what is chosen from what was measured."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import tiny_config
from threadpoolctl import threadpool_info, threadpool_limits

from core import Trainer, corpus
from core.engine import NumpyEngine, NumpyEngineFactory
from tui.plain import threads
from tui.plain.threads import BLAS_ENV, limit_threads


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


class Engine:
    """An engine with a pool of its own: records the limits it is given."""

    def __init__(self) -> None:
        self.limits: list[int] = []

    def limit_threads(self, n: int) -> None:
        self.limits.append(n)


def test_one_blas_thread_and_the_engines_pools_until_restored(monkeypatch):
    for name in BLAS_ENV:
        monkeypatch.delenv(name, raising=False)
    if not blas_threads():
        pytest.skip("NumPy reports no BLAS thread pool here")
    engine = Engine()
    with threadpool_limits(limits=2, user_api="blas"):  # start from two, so that one is a change
        before = blas_threads()
        with limit_threads([engine]):
            assert blas_threads() == {1}
            assert engine.limits == [1]
        assert blas_threads() == before


def test_a_count_the_user_chose_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    engine = Engine()
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with limit_threads([engine]):
            assert blas_threads() == before
        assert engine.limits == []


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
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    finally:
        handle.restore()


def test_the_rule_leaves_the_numpy_engines_own_threads_alone(monkeypatch):
    """One BLAS thread, but the NumPy engine keeps the threads its run chose (they never spin)."""
    for name in BLAS_ENV:
        monkeypatch.delenv(name, raising=False)
    trainer = Trainer(soliloquy(), tiny_config(), engine=NumpyEngineFactory(2))
    with limit_threads([trainer.engine]):
        assert isinstance(trainer.engine, NumpyEngine) and trainer.engine.threads == 2
