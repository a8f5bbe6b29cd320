"""Several threads on one training step or one evaluation: each takes a fixed share of the streams.

A training window is B streams side by side, and the streams only meet in the weight gradients,
which are sums over streams. So thread i of n runs the model's own forward and backward on
streams [i B / n, (i+1) B / n), from their carried state, with their resets and their dropout
masks, into buffers of its own (a `CharModel.replica`), and weighs its mean loss by its share of
the streams; the threads' gradients then add up to the whole window's. Evaluation splits its
streams the same way (forward only).

Why threads pay in pure NumPy: NumPy releases the interpreter lock inside BLAS calls and inside
ufunc loops over more than a few hundred numbers, so n threads do their arithmetic on n cores at
once and take the lock only to start each call.

Determinism: thread i always reads the same streams and the gradients are added in thread order
(0 + 1 + ... + n-1), so a run is repeatable for a given thread count. Different counts agree to
float rounding (a product over B/n rows adds in another order than one over B).

The BLAS must run each call on one thread while these threads run: n threads each starting a
product on M BLAS threads would ask for n x M cores, and OpenBLAS's threads spin while they wait
for one. NumPy has no way to set that, so core does not: whoever runs the engine does (lstm-tui
limits OpenBLAS to one thread, process-wide, with threadpoolctl; see tui/threads.py).
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .models import CharModel, Resets, State
from .models.base import Abandoned

R = TypeVar("R")


def split(batch: int, n: int) -> list[slice]:
    """The streams each of `n` threads reads of `batch`: n contiguous slices, sizes differing by at
    most one (the first ones the smaller)."""
    n = max(1, min(n, batch))
    bounds = [(i * batch) // n for i in range(n + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(n)]


def slice_state(state: State, streams: slice) -> State:
    """The carried state of `streams` (views)."""
    return tuple(tuple(a[streams] for a in layer) for layer in state)


def join_states(parts: Sequence[State]) -> State:
    """The states of consecutive stream slices as one (new arrays)."""
    return tuple(
        tuple(np.concatenate([p[layer][k] for p in parts], axis=0) for k in range(len(parts[0][layer])))
        for layer in range(len(parts[0]))
    )


def slice_resets(resets: Resets | None, streams: slice) -> Resets | None:
    """The resets that fall in `streams`, renumbered from the slice's first stream."""
    if not resets:
        return resets
    lo, hi = streams.start, streams.stop
    out: Resets = {}
    for t, idx in resets.items():
        mine = idx[(idx >= lo) & (idx < hi)]
        if mine.size:
            out[t] = mine - lo
    return out


# A helper thread with nothing to do checks this often whether the thread it works for has ended.
IDLE_CHECK_S = 1.0


def _serve(inbox: queue.SimpleQueue, done: queue.SimpleQueue, owner: threading.Thread) -> None:
    """A helper thread: run jobs until told to stop (None) or until `owner`, the thread it helps,
    has ended (helpers never outlive the training thread they belong to)."""
    while True:
        try:
            job = inbox.get(timeout=IDLE_CHECK_S)
        except queue.Empty:
            if owner.is_alive():
                continue
            return
        if job is None:
            return
        ticket, fn, i = job
        try:
            done.put((ticket, i, fn(i), None))
        except BaseException as e:  # handed to the caller, which raises it
            done.put((ticket, i, None, e))


class Workers:
    """n - 1 helper threads and the caller: `run(fn, k)` computes fn(0), ..., fn(k-1) at once,
    fn(0) in the calling thread, and returns the results in order.

    The helpers start on first use and belong to the thread that used them: they end soon after it
    does (a new caller gets new helpers), when this object is collected, or on `close()`."""

    def __init__(self, n: int):
        self.n = max(1, n)
        self._inboxes: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._ticket = 0
        self._owner: threading.Thread | None = None
        self._finalizer: weakref.finalize | None = None

    def _start(self) -> None:
        """Helpers for the calling thread (new ones if the last caller was another thread)."""
        me = threading.current_thread()
        if self._threads and self._owner is me and all(th.is_alive() for th in self._threads):
            return
        self.close()
        self._owner = me
        self._inboxes = [queue.SimpleQueue() for _ in range(self.n - 1)]
        self._threads = []
        for i, inbox in enumerate(self._inboxes, start=1):
            th = threading.Thread(
                target=_serve, args=(inbox, self._done, me), name=f"{me.name} helper {i}", daemon=True
            )
            th.start()
            self._threads.append(th)
        self._finalizer = weakref.finalize(self, _stop, self._inboxes)

    def run(self, fn: Callable[[int], R], k: int) -> list[R]:
        """[fn(0), ..., fn(k-1)], computed by k threads at once (k <= n). An exception in any of
        them is raised here once all have finished (the first that is not an Abandoned)."""
        if k > self.n:
            raise ValueError(f"{k} jobs for {self.n} threads")
        if k == 1:
            return [fn(0)]
        self._start()
        self._ticket += 1
        ticket = self._ticket
        for i in range(1, k):
            self._inboxes[i - 1].put((ticket, fn, i))
        results: list[Any] = [None] * k
        errors: list[BaseException | None] = [None] * k
        try:
            results[0] = fn(0)
        except BaseException as e:  # still wait for the others: they use buffers the caller owns
            errors[0] = e
        waiting = k - 1
        while waiting:
            got, i, result, error = self._done.get()
            if got != ticket:  # left over from a run interrupted while it waited
                continue
            results[i], errors[i] = result, error
            waiting -= 1
        failed = [e for e in errors if e is not None]
        if failed:  # the first real failure, not a thread that stopped because of it
            raise next((e for e in failed if not isinstance(e, Abandoned)), failed[0])
        return results

    def close(self) -> None:
        """End the helper threads (they finish the job in hand first)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._threads = []


def _stop(inboxes: list[queue.SimpleQueue]) -> None:
    for inbox in inboxes:
        inbox.put(None)


class SplitScorer:
    """What evaluation reads (initial_state, forward) for a model, with the streams split over the
    threads of `workers` as training splits them. A text short enough to be read as one stream is
    read by one thread."""

    def __init__(self, model: CharModel, workers: Workers):
        self.model = model
        self.config = model.config
        self._workers = workers
        self._replicas = [model] + [model.replica() for _ in range(workers.n - 1)]

    def initial_state(self, batch: int = 1) -> State:
        return self.model.initial_state(batch)

    def score_windows(self, n: int) -> Any:
        """The windows a model with a bounded context reads a text of `n` positions in (the GPT), or
        None: the same as the model's own."""
        read_as = getattr(self.model, "score_windows", None)
        return read_as(n) if read_as is not None else None

    def forward(
        self, x: NDArray, state: State, resets: Resets | None = None, masks: Any = None
    ) -> tuple[NDArray, State, None]:
        """Logits (T, S, V) for ids `x` (T, S) from `state`, and the final state (no cache: this is
        for scoring, never backpropagated)."""
        slices = split(x.shape[1], self._workers.n)

        def part(i: int) -> tuple[NDArray, State]:
            s = slices[i]
            logits, new_state, _ = self._replicas[i].forward(x[:, s], slice_state(state, s), slice_resets(resets, s))
            return logits, new_state

        parts = self._workers.run(part, len(slices))
        if len(parts) == 1:
            return parts[0][0], parts[0][1], None
        return np.concatenate([p[0] for p in parts], axis=1), join_states([p[1] for p in parts]), None
