"""The evidence behind the thread policy (tui/plain/threads.py), on a quiet machine and on one with
another process busy on a core.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/threads_policy.py \
        [--repeats 7] [--only quiet|loaded]

For each training configuration, optimizer steps (Trainer.train_step) alternate, repetition by
repetition in this one process, between:

- 1 thread: the engine on one thread, NumPy's BLAS on one thread;
- N threads: the engine splitting the streams over N threads, one BLAS thread each (N = 2, 4, ...
  up to the cores);
- BLAS N: the engine on one thread, OpenBLAS on N threads (what OPENBLAS_NUM_THREADS=N gives);

then the start-of-run measurement (`threads.choose`) is run as `lstm-tui train` runs it: what it
chose and how long it took. Also one stream of generation with OpenBLAS on 1 and on N threads,
and evaluation of a long text on 1 and N threads. "loaded": the same with one more process
spinning on a core (a Python busy loop at normal priority) for the whole block.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from core import TrainConfig, Trainer
from core import corpus as corpus_io
from core.engine import numpy_engine_threads
from core.evaluate import Evaluator
from core.models import ModelConfig, create_model
from core.parallel import SplitScorer, Workers
from core.sampling import generate
from tui.bench.measure import FULL, OthersCPU, busy_text, case_corpus, tiled_corpus
from tui.plain import threads

PAUSE_S = 0.05


def alternate(runs: dict[str, Callable[[], Any]], repeats: int, per_rep: dict[str, int]) -> dict[str, float]:
    """Median seconds per call of each run, in turns whose order flips every repetition."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else reversed(names):
            time.sleep(PAUSE_S)
            n = per_rep[name]
            t0 = time.perf_counter()
            for _ in range(n):
                runs[name]()
            times[name].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in times.items()}


def calls_for(fn: Callable[[], Any], seconds: float) -> int:
    fn()
    t0 = time.perf_counter()
    fn()
    return max(1, round(seconds / max(time.perf_counter() - t0, 1e-9)))


def with_blas(n: int, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with threadpool_limits(n, user_api="blas"):
            return fn()

    return run


def training(repeats: int, cores: int) -> list[str]:
    counts = threads.candidates(cores, cores)[1:]
    cases = [("defaults, soliloquy", None)] + [(c.name, c) for c in FULL.cases if not c.notebook]
    head = "| configuration | 1 thread | " + " | ".join(f"{n} threads" for n in counts)
    head += " | " + " | ".join(f"BLAS {n}" for n in counts) + " | chosen at the start | it took | others' cores |"
    lines = [head, "|---|---:|" + "---:|" * (2 * len(counts)) + "---|---:|---:|"]
    for label, case in cases:
        if case is None:
            text, cfg = corpus_io.load(corpus_io.bundled_path()), TrainConfig(eval_every=0)
        else:
            text = case_corpus(case)
            cfg = TrainConfig(
                hidden=case.hidden, layers=case.layers, batch=case.batch, seq_len=case.seq_len, eval_every=0
            )
        runs: dict[str, Callable[[], Any]] = {}
        for n in [1, *counts]:
            runs[f"{n}"] = with_blas(1, Trainer(text, cfg, engine=numpy_engine_threads(n)).train_step)
        for n in counts:
            runs[f"blas{n}"] = with_blas(n, Trainer(text, cfg).train_step)
        per = {k: calls_for(f, 0.3) for k, f in runs.items()}
        others = OthersCPU()
        secs = alternate(runs, repeats, per)
        busy = others.cores()
        probe = Trainer(text, cfg)
        with threadpool_limits(1, user_api="blas"):
            t0 = time.perf_counter()
            choice = threads.choose(probe, None)
            took = time.perf_counter() - t0
        chars = probe.batch * probe.seq_len
        one = chars / secs["1"]
        cells = [f"{one:,.0f}"]
        for n in counts:
            cells.append(f"{chars / secs[str(n)]:,.0f} ({secs['1'] / secs[str(n)]:.2f}x)")
        for n in counts:
            cells.append(f"{chars / secs[f'blas{n}']:,.0f} ({secs['1'] / secs[f'blas{n}']:.2f}x)")
        B, T = probe.batch, probe.seq_len
        name = f"{label}: H={cfg.hidden} L={cfg.layers} B={B} T={T}"
        others_s = busy_text(busy)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {choice.threads} | {took:.2f} s | {others_s} |")
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def generation(repeats: int, cores: int) -> list[str]:
    text = corpus_io.load(corpus_io.bundled_path())
    model = create_model(ModelConfig(text.vocab.size, 256, 2), np.random.default_rng(0))
    stepper = model.stepper()
    rng = np.random.default_rng(1)
    n = 2000

    def stream() -> None:
        for _ in generate(stepper, text.ids[:50], n, rng):
            pass

    runs = {"1": with_blas(1, stream), str(cores): with_blas(cores, stream)}
    secs = alternate(runs, repeats, {k: 1 for k in runs})
    return [
        f"| generation, LSTM H=256 L=2, one stream | BLAS 1: {n / secs['1']:,.0f} chars/s "
        f"| BLAS {cores}: {n / secs[str(cores)]:,.0f} chars/s ({secs['1'] / secs[str(cores)]:.2f}x) |"
    ]


def evaluation(repeats: int, cores: int) -> list[str]:
    text = tiled_corpus(400_000)
    model = create_model(ModelConfig(text.vocab.size, 256, 2), np.random.default_rng(0))
    ids = text.ids[:200_001]
    split = SplitScorer(model, Workers(cores))

    def one() -> None:
        Evaluator(model, ids, text.vocab).result()

    def many() -> None:
        Evaluator(split, ids, text.vocab).result()  # type: ignore[arg-type]

    runs = {"1": with_blas(1, one), str(cores): with_blas(1, many)}
    secs = alternate(runs, max(3, repeats // 2), {k: 1 for k in runs})
    streams = Evaluator(model, ids, text.vocab).streams
    return [
        f"| evaluation, LSTM H=256 L=2, 200,000 characters as {streams} streams | 1 thread: {secs['1']:.2f} s "
        f"| {cores} threads: {secs[str(cores)]:.2f} s ({secs['1'] / secs[str(cores)]:.2f}x) |"
    ]


def block(name: str, repeats: int, cores: int) -> list[str]:
    lines = [f"## {name}: load average {os.getloadavg()[0]:.2f} at the start", ""]
    lines += training(repeats, cores)
    lines += [""]
    lines += generation(repeats, cores)
    lines += evaluation(repeats, cores)
    lines += ["", f"load average at the end: {os.getloadavg()[0]:.2f}", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=("quiet", "loaded"))
    args = ap.parse_args()
    cores = threads.available_cores()
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    out = [
        f"{cores} cores; BLAS {blas['internal_api']} {blas['version']} kernel {blas['architecture']}; "
        f"NumPy {np.__version__}; chars/s of optimizer steps, medians of {args.repeats} alternating repetitions",
        "",
    ]
    if args.only in (None, "quiet"):
        out += block("as found (no process added)", args.repeats, cores)
    if args.only in (None, "loaded"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            out += block("loaded: one more process spinning on a core", args.repeats, cores)
        finally:
            busy.kill()
            busy.wait()
    print("\n".join(out))


if __name__ == "__main__":
    main()
