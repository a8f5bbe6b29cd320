"""How many threads the arithmetic uses: the rule, written once, and the thread count a run trains
with, measured at its start unless `--threads N` says.

BLAS (`limit_threads`). Every part of the interface that trains or scores a model calls
`limit_threads()`: the headless commands once for the process, the screens while they are up, the
recipe while it measures the machine. The rule: one BLAS thread per call, unless the user chose a
count (OPENBLAS_NUM_THREADS and the like). Our products are small and come one after another:
OpenBLAS splits even those over its threads and spins while it waits for them, which on two cores
with anything else running slows a step many times over (benchmarks/results/blas_threads.txt:
0.08x-0.82x of one thread; with the screen open, training ran at 51% of headless with two BLAS
threads and 87% with one). An engine with a pool of its own that spins the same way (PyTorch's)
is limited to one thread too. The NumPy engine's own threads are not: they block instead of
spinning, and their count is measured.

The NumPy engine's threads (`choose`). The engine can split each training step's streams over n
threads (core/parallel.py) or, for two layers or more, run the layers as a wavefront, one thread
per layer (core/models/recurrent.py), each thread on one BLAS thread. Whether that pays, and for
how many threads, depends on the model's shape (each thread's share of a step must outweigh
handing it over and the interpreter lock it takes to start every NumPy call) and on what else the
machine is running. So it is measured: before the first step, throwaway engines on the run's
weights time its next window on 1, 2, 4, ... threads (up to the cores this process may use and
the streams there are), and as a wavefront where there are layers for it, alternating, for about
a second; the fewest threads within 5% of the fastest win (the faster arrangement of that count).

Why measure at every start rather than once per machine: the answer depends on the model's shape
and on the machine's load at the time, and both change from run to run; a second at the start is
small against any run long enough to care. The choice holds for the whole run (a run is
repeatable for a given arrangement); `--threads N` (with `--wavefront`) fixes it. A BLAS thread
count the user set in the environment is kept when `--threads` is not given, with one engine
thread. The interface chooses with the same measurement: its own thread takes a few percent of a
core (benchmarks/ui_overhead.py measures what training keeps and how fast keys answer).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from core.batches import Batches, Window
from core.engine import NumpyEngine, NumpyEngineFactory

THREADS = 1  # BLAS threads per call, unless the environment says otherwise

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # the user's own choice
CALIBRATE_S = 1.0  # about how long the measurement at the start takes
MIN_ROUNDS, MAX_ROUNDS = 4, 15  # timed rounds of every arrangement (each once per round, alternating)
MARGIN = 0.05  # more threads must be this much faster to be chosen
MIN_WINDOW = 8  # the measured window is cut to fit the time, but never below this many steps


# How a step is computed: (threads, wavefront). Not a wavefront: the streams split over the
# threads. A wavefront: one thread per layer, times threads // layers slices of the streams.
Arrangement = tuple[int, bool]


@dataclass(frozen=True)
class Choice:
    """The thread count a run trains with, and why."""

    threads: int  # the NumPy engine's threads (each with one BLAS thread)
    reason: str  # for the start of a run: "2 of 2 cores, measured ..."
    rates: dict[Arrangement, float] = field(default_factory=dict)  # chars/s measured (empty: none)
    blas: int | None = 1  # BLAS threads per call; None: as the environment set them
    wavefront: bool = False  # the layers as a wavefront (one thread per layer)

    def line(self) -> str:
        """The startup line."""
        how = ", the layers as a wavefront" if self.wavefront else ""
        return f"threads: {self.threads}{how} ({self.reason})"


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def blas_from_environment() -> str | None:
    """'OPENBLAS_NUM_THREADS=2' if the user set a BLAS thread count in the environment, else None."""
    for var in BLAS_ENV:
        if os.environ.get(var):
            return f"{var}={os.environ[var]}"
    return None


def candidates(cores: int, streams: int) -> list[int]:
    """The counts worth measuring: 1, 2, 4, ... and the core count, up to the streams there are."""
    top = max(1, min(cores, streams))
    counts = {1, top}
    n = 2
    while n < top:
        counts.add(n)
        n *= 2
    return sorted(counts)


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
    """Apply the BLAS rule to this process and to each engine's own pool (PyTorch's); the NumPy
    engine's own threads, measured at the start (`choose`), are left as they are."""
    if any(os.environ.get(v) for v in BLAS_ENV):
        return Limit(None)
    for engine in engines:
        if not isinstance(engine, NumpyEngine):
            engine.limit_threads(THREADS)
    return Limit(threadpool_limits(limits=THREADS, user_api="blas"))


class _Probe:
    """Just enough of a run for a throwaway NumpyEngine: the run's model on the same weights with
    buffers of its own, its carried state, its batch."""

    def __init__(self, trainer: Any):
        self.config = trainer.config
        self.model = trainer.model.replica()
        self.optimizer = None
        self.state = trainer.state
        self.average = None
        self.controls = None
        self.batch = trainer.batch


def arrangements(cores: int, streams: int, layers: int) -> list[Arrangement]:
    """What is worth measuring: the streams split over 1, 2, 4, ... threads and the cores (no more
    threads than streams); with two layers or more, also each count of at least one thread per
    layer as a wavefront (threads // layers slices of the streams)."""
    out: list[Arrangement] = [(n, False) for n in candidates(cores, streams)]
    if layers > 1:
        for n in candidates(cores, streams * layers):
            if n >= layers and (n // layers * layers, True) not in out:
                out.append((n // layers * layers, True))
    return out


def describe(a: Arrangement) -> str:
    n, wave = a
    return f"{n}{' as a wavefront' if wave else ''}"


def measure(trainer: Any, ways: list[Arrangement], budget_s: float = CALIBRATE_S) -> dict[Arrangement, float]:
    """Characters per second of the run's forward and backward pass on each arrangement, measured
    alternately on the run's next window (cut shorter to fit `budget_s`, all told) without
    changing the run: the engines are throwaways on the same weights, the window is read from a
    copy of the stream positions, the dropout masks come from a generator of their own."""
    start = time.perf_counter()
    probe = _Probe(trainer)
    b = trainer.batches
    full = Batches(b.ids, b.batch, b.seq_len, b.positions).next()
    # What one step of the window costs on one thread, from a short piece of it (twice: the first
    # pass also fills the buffers).
    short = min(b.seq_len, 2 * MIN_WINDOW)
    piece = _cut(full, short)
    masks = trainer.model.dropout_masks(short, b.batch, np.random.default_rng(0))
    one = NumpyEngine(probe)
    one.learn(piece, masks)
    t0 = time.perf_counter()
    one.learn(piece, masks)
    per_step = (time.perf_counter() - t0) / short
    # Cut the window so that a warm-up and MIN_ROUNDS rounds of every arrangement fit what is
    # left of the budget (a pass on n threads takes at least 1/n of one thread's).
    per_round = per_step * sum(1 / n for n, _ in ways)
    left = budget_s - (time.perf_counter() - start)
    T = max(MIN_WINDOW, min(b.seq_len, int(left / (MIN_ROUNDS + 1) / max(per_round, 1e-9))))
    window = _cut(full, T)
    masks = trainer.model.dropout_masks(T, b.batch, np.random.default_rng(0))
    engines = {a: NumpyEngine(probe, *a) for a in ways}
    times: dict[Arrangement, list[float]] = {a: [] for a in ways}
    for engine in engines.values():
        engine.learn(window, masks)  # warm-up: buffers, helper threads
    for rnd in range(MAX_ROUNDS):
        for a in ways if rnd % 2 == 0 else reversed(ways):
            t0 = time.perf_counter()
            engines[a].learn(window, masks)
            times[a].append(time.perf_counter() - t0)
        if rnd + 1 >= MIN_ROUNDS and time.perf_counter() - start > budget_s:
            break
    for engine in engines.values():
        if engine._workers is not None:
            engine._workers.close()
    return {a: b.batch * T / statistics.median(ts) for a, ts in times.items()}


def _cut(window: Any, steps: int) -> Any:
    """The first `steps` steps of a window."""
    if steps >= window.x.shape[0]:
        return window
    resets = {t: s for t, s in window.resets.items() if t < steps}
    return Window(x=window.x[:steps], y=window.y[:steps], resets=resets)


def pick(rates: dict[Arrangement, float]) -> Arrangement:
    """The fewest threads within MARGIN of the fastest (the faster arrangement of that count)."""
    best = max(rates.values())
    close = [a for a, r in rates.items() if r * (1 + MARGIN) >= best]
    fewest = min(n for n, _ in close)
    return max((a for a in close if a[0] == fewest), key=rates.__getitem__)


def choose(trainer: Any, asked: int | None, budget_s: float = CALIBRATE_S, wavefront: bool = False) -> Choice:
    """The thread count for `trainer`'s run: `asked` (--threads, with --wavefront) if given, else
    measured."""
    engine = trainer.engine
    if not isinstance(engine, NumpyEngine):
        return Choice(1, "the PyTorch engine sets its own", blas=None)
    streams = trainer.batch
    layers = trainer.model.wavefront_layers()
    if asked is not None:
        if wavefront and layers > 1 and asked >= layers:
            used = min(asked // layers, streams) * layers
            why = f"--threads {asked} --wavefront: {used // layers} slice(s) of the streams x {layers} layers"
            return Choice(used, why, wavefront=True)
        used = min(asked, streams)
        why = f"--threads {asked}" + (f"; the batch has {streams} streams, one per thread" if used < asked else "")
        if wavefront:
            why += f"; no wavefront: it needs two layers or more and a thread per layer (the model has {layers})"
        return Choice(used, why)
    env = blas_from_environment()
    if env is not None:
        why = f"{env} is set: BLAS runs on the threads it says; --threads N splits the streams instead"
        return Choice(1, why, blas=None)
    cores = available_cores()
    ways = arrangements(cores, streams, layers)
    if len(ways) == 1:
        why = "one core" if cores == 1 else f"the batch has {streams} stream"
        return Choice(1, why)
    with limit_threads():
        rates = measure(trainer, ways, budget_s)
    chosen = pick(rates)
    one = rates[(1, False)]
    measured = ", ".join(f"{describe(a)}: {r:,.0f}" for a, r in rates.items())
    if chosen == (1, False):
        other = max((a for a in rates if a != chosen), key=rates.__getitem__)
        why = f"{describe(other)} threads measured {rates[other] / one:.2f}x one on this model"
    else:
        why = f"{rates[chosen] / one:.2f}x one thread on this model"
    return Choice(chosen[0], f"{why}, of {cores} cores; chars/s {measured}", rates, wavefront=chosen[1])


def apply(trainer: Any, choice: Choice, factory: Any = None) -> Limit:
    """Set the engine's threads (and the factory's, so that a restarted run keeps them) and the
    BLAS rule (`limit_threads`); what to `restore()`."""
    engine = trainer.engine
    if isinstance(engine, NumpyEngine):
        engine.threads, engine.wavefront = choice.threads, choice.wavefront
    if isinstance(factory, NumpyEngineFactory):
        factory.threads, factory.wavefront = choice.threads, choice.wavefront
    return limit_threads()
