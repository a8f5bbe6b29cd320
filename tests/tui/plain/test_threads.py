"""The interface's thread rule (tui.plain.threads): one BLAS thread, unless the user chose a count."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

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
