"""The layers as a wavefront (W-Par's idea) against splitting the streams, for a model of two layers
or more, on this machine's cores.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/wavefront.py \
        [--cell lstm --hidden 256 --layers 2 --batch 32 --seq-len 100 --repeats 9]

One window's forward and backward (NumpyEngine.learn: loss, gradients, clipping; no optimizer
step), alternating repetition by repetition in this one process, one BLAS thread per call:

- 1 thread;
- N threads, the streams split N ways (core/parallel.py), for N = 2, 4, ... up to the cores;
- N threads as a wavefront (core/models/recurrent.py: Wavefront): one thread per layer, a span of
  steps at a time, on N // L slices of the streams.

Wall and CPU milliseconds (all threads) per window, medians, and how many cores other processes
kept busy meanwhile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from core import corpus as corpus_io
from core.batches import Batches
from core.engine import NumpyEngine
from core.models import ModelConfig, create_model
from tui.bench.measure import OthersCPU, busy_text
from tui.plain.threads import available_cores, candidates


class Run:
    """Just enough of a run for NumpyEngine: a model, its state, its batch, no clipping."""

    def __init__(self, model, B):
        self.model, self.batch = model, B
        self.state = model.initial_state(B)
        self.config = type("C", (), {"clip": 0.0})()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cell", default="lstm")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    text = corpus_io.load(corpus_io.bundled_path())
    H, L, B, T = args.hidden, args.layers, args.batch, args.seq_len
    model = create_model(ModelConfig(text.vocab.size, H, L, cell=args.cell), np.random.default_rng(0))
    w = Batches(np.tile(text.ids, 4 * B * T // len(text.ids) + 2), B, T).next()
    cores = available_cores()
    ways = {"1 thread": NumpyEngine(Run(model, B))}
    for n in candidates(cores, B)[1:]:
        ways[f"{n} threads, streams split"] = NumpyEngine(Run(model, B), n)
        if n >= L:
            ways[f"{n} threads, wavefront"] = NumpyEngine(Run(model, B), n, wavefront=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {args.cell} H={H} L={L} B={B} T={T}; {cores} cores")
    with threadpool_limits(1, user_api="blas"):
        reference = None
        for name, engine in ways.items():
            engine.learn(w, None)  # warm-up, and the gradients agree
            grads = engine._learned[0]
            if reference is None:
                reference = grads
            worst = max(
                float(np.max(np.abs(grads[k] - reference[k])) / (np.max(np.abs(reference[k])) + 1e-12)) for k in grads
            )
            print(f"{name}: largest gradient difference from 1 thread, relative to the largest entry: {worst:.1e}")
        wall: dict[str, list[float]] = {k: [] for k in ways}
        cpu: dict[str, list[float]] = {k: [] for k in ways}
        names = list(ways)
        others = OthersCPU()
        for rep in range(args.repeats):
            for name in names if rep % 2 == 0 else reversed(names):
                time.sleep(0.05)
                c0, t0 = time.process_time(), time.perf_counter()
                ways[name].learn(w, None)
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        busy = others.cores()
    base = statistics.median(wall["1 thread"])
    print("| way | wall ms | CPU ms (all threads) | speed-up over 1 thread |")
    print("|---|---:|---:|---:|")
    for name in names:
        m = statistics.median(wall[name])
        print(f"| {name} | {m * 1e3:.1f} | {statistics.median(cpu[name]) * 1e3:.1f} | {base / m:.2f}x |")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(f"BLAS {blas['internal_api']} kernel {blas['architecture']}; load average after: {os.getloadavg()[0]:.2f}")
    print(f"other processes kept busy while this measured: {busy_text(busy)}")


if __name__ == "__main__":
    main()
