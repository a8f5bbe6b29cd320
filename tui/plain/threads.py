"""How many threads the arithmetic may use: the interface's rule, written once.

Every part of the interface that trains or scores a model calls `limit_threads()`: the headless
commands once for the process, the screens while they are up, the recipe while it measures the
machine. The rule: one BLAS thread, unless the user chose a count (OPENBLAS_NUM_THREADS and the
like). Our products are small and come one after another: on two cores a second thread spins,
waits and, when anything else runs (the screen, the run being watched), slows a step many times
over (benchmarks/results/blas_threads.txt: 0.08x-0.82x of one thread; with the screen open,
training ran at 51% of headless with two threads and 87% with one).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from threadpoolctl import threadpool_limits

THREADS = 1  # BLAS threads for the arithmetic, unless the environment says otherwise
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the user's own choice


class Limited(Protocol):
    """An engine with a thread pool of its own (core.engine.Engine.limit_threads)."""

    def limit_threads(self, n: int) -> None: ...


class Limit:
    """What `limit_threads` changed; `restore()` (or leaving a `with` block) undoes it."""

    def __init__(self, blas: threadpool_limits | None) -> None:
        self._blas = blas

    def restore(self) -> None:
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None

    def __enter__(self) -> Limit:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.restore()


def limit_threads(engines: Iterable[Limited] = ()) -> Limit:
    """Apply the rule to this process's BLAS and to each engine's own pool (PyTorch's)."""
    if any(os.environ.get(v) for v in BLAS_ENV):
        return Limit(None)
    for engine in engines:
        engine.limit_threads(THREADS)
    return Limit(threadpool_limits(limits=THREADS, user_api="blas"))
