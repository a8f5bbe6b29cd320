"""Where the milliseconds of a training step on N threads go, against PyTorch's step on its default
threads, for the benchmark's configurations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/profile_threads.py [--threads 2]

Alternating in one process (medians, milliseconds per optimizer step):

- PyTorch: `lstm-tui bench`'s PyTorch step on its default threads;
- ours, N threads: the same step with the streams split N ways (one BLAS thread per call), split into
  the parallel part (the threads' forward and backward) and the serial rest (the window, adding
  the threads' gradients, clipping, Adam, joining the carried state);
- one slice alone: the forward and backward of one thread's B/N streams on one thread with
  nothing else running: what the parallel part would take if the threads did not slow each other;
  of it, the matrix products alone (the same shapes and count, np.dot);
- ours, 1 thread, for reference.

So ours on N threads = products + the rest of a slice's arithmetic + what running together adds
(the interpreter lock, hand-overs, shared caches) + the serial part.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from gemm_floor import gemm_runner, products  # benchmarks/gemm_floor.py, beside this script
from threadpoolctl import threadpool_info, threadpool_limits

from core.batches import Batches
from core.parallel import Workers
from tui.bench.measure import BENCH_CLIP, BENCH_LR, FULL, OthersCPU, busy_text, case_corpus, case_trainer
from tui.pytorch.bench import DEFAULT_THREADS, TorchTrainer, set_threads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    N = args.threads
    parallel: list[float] = []
    real_run = Workers.run

    def timed_run(self, fn, k):  # the wall time of each parallel section
        t0 = time.perf_counter()
        try:
            return real_run(self, fn, k)
        finally:
            parallel.append(time.perf_counter() - t0)

    Workers.run = timed_run  # type: ignore[method-assign]
    load = os.getloadavg()[0]
    print(f"load average before: {load:.2f}; ours on {N} threads (streams split), PyTorch on {DEFAULT_THREADS}")
    print(
        "| config | PyTorch | ours, N threads | = products of a slice | + rest of a slice | + running together "
        "| + serial part | ours, 1 thread |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with threadpool_limits(1, user_api="blas"):
        for case in FULL.cases:
            if case.batch < N:
                continue
            corpus = case_corpus(case)
            one = case_trainer(case, corpus)
            many = case_trainer(case, corpus, threads=N)
            V, H, L, B, T = corpus.vocab.size, case.hidden, case.layers, one.batch, one.seq_len
            b = B // N  # (the larger slices have one more stream when N does not divide B)
            alone = case_trainer(case, corpus)
            alone_w = Batches(corpus.train_ids, B, T).next()
            x, y = alone_w.x[:, :b], alone_w.y[:, :b]
            state = alone.model.initial_state(b)
            prods = gemm_runner(np.dot, lambda a: a, products(b, T, H, L, V))
            tt = TorchTrainer(V, H, L, BENCH_LR, BENCH_CLIP)
            tw = Batches(corpus.train_ids, B, T)

            def torch_step(tt=tt, tw=tw) -> None:
                set_threads(DEFAULT_THREADS)
                w = tw.next()
                tt.step(w.x, w.y)

            def one_slice(model=alone.model, x=x, y=y, state=state) -> None:
                model.loss_and_grads(x, y, state, None, None, weight=1 / N)

            runs = {
                "torch": torch_step,
                "many": many.train_step,
                "slice": one_slice,
                "products": prods,
                "one": one.train_step,
            }
            for fn in runs.values():
                fn()
                fn()
            times: dict[str, list[float]] = {k: [] for k in runs}
            par: list[float] = []
            names = list(runs)
            others = OthersCPU()
            for rep in range(args.repeats):
                for name in names if rep % 2 == 0 else reversed(names):
                    time.sleep(0.05)
                    parallel.clear()
                    t0 = time.perf_counter()
                    runs[name]()
                    times[name].append(time.perf_counter() - t0)
                    if name == "many":
                        par.append(sum(parallel))
            ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            p = statistics.median(par) * 1e3
            serial = ms["many"] - p
            together = p - ms["slice"]
            rest = ms["slice"] - ms["products"]
            print(
                f"| {case.name} H={H} L={L} B={B} T={T} | {ms['torch']:.1f} | {ms['many']:.1f} | {ms['products']:.1f} "
                f"| {rest:.1f} | {together:.1f} | {serial:.1f} | {ms['one']:.1f} |"
            )
            print(f"  (other processes meanwhile: {busy_text(others.cores())})")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(f"BLAS {blas['internal_api']} kernel {blas['architecture']}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
