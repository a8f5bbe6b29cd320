"""How many BLAS threads should training use while the interface is running?

The app trains in a worker thread while the UI thread renders on the same machine. This runs
the trainer in a worker thread, as the app does, with NumPy's BLAS limited to 1 or 2 threads,
while a stand-in "UI thread" is idle, renders in bursts (pure-Python work for `--busy-ms` out of
every 100 ms: the GIL-holding kind of work Textual does when it repaints), or spins all the time;
and it reports training throughput (median of several repetitions, alternating settings).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/blas_threads.py

Note: the machine's other load (other processes) counts too; the script prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from threadpoolctl import threadpool_info, threadpool_limits

from core import TrainConfig, Trainer
from core import corpus as corpus_io
from tui.bench.measure import Case, case_corpus


def ui_stand_in(stop: threading.Event, busy_ms: float, period_ms: float = 100.0) -> None:
    """Pure-Python work for busy_ms of every period_ms (busy_ms >= period_ms: never sleeps)."""
    while not stop.is_set():
        t_end = time.perf_counter() + busy_ms / 1e3
        s = 0
        while time.perf_counter() < t_end and not stop.is_set():
            s += sum(range(200))  # holds the GIL, like building and diffing render strips
        if busy_ms < period_ms:
            stop.wait((period_ms - busy_ms) / 1e3)


def measure(trainer: Trainer, seconds: float) -> float:
    """chars/s of train_step run in a worker thread for about `seconds`."""
    out: list[float] = []

    def work() -> None:
        trainer.train_step()  # warm
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            trainer.train_step()
            n += 1
        out.append(n * trainer.batch * trainer.seq_len / (time.perf_counter() - t0))

    th = threading.Thread(target=work)
    th.start()
    th.join()
    return out[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--busy-ms", type=float, default=30.0, help="the bursty UI's work per 100 ms")
    args = ap.parse_args()
    soliloquy = corpus_io.load(corpus_io.bundled_path())
    setups = {
        "default (H=128 B=16 T=48, soliloquy)": (soliloquy, TrainConfig(eval_every=0)),
        "H=128 B=32 T=64": (
            case_corpus(Case("h128", 128, 1, 32, 64)),
            TrainConfig(hidden=128, batch=32, seq_len=64, eval_every=0),
        ),
        "H=256 L=2 B=32 T=100": (
            case_corpus(Case("h256x2", 256, 2, 32, 100)),
            TrainConfig(hidden=256, layers=2, batch=32, seq_len=100, eval_every=0),
        ),
    }
    uis = {"idle UI": None, f"UI busy {args.busy_ms:g}/100 ms": args.busy_ms, "UI spinning": 1e9}
    print(f"load average before: {os.getloadavg()[0]:.2f}; cpus {os.cpu_count()}")
    for label, (corpus, cfg) in setups.items():
        results: dict[tuple[str, int], list[float]] = {}
        trainers = {n: Trainer(corpus, cfg) for n in (1, 2)}
        for rep in range(args.repeats):
            for ui, busy in uis.items():
                for n in (1, 2) if rep % 2 == 0 else (2, 1):
                    with threadpool_limits(n, user_api="blas"):
                        stop = threading.Event()
                        th = threading.Thread(target=ui_stand_in, args=(stop, busy), daemon=True) if busy else None
                        if th:
                            th.start()
                        try:
                            results.setdefault((ui, n), []).append(measure(trainers[n], args.seconds))
                        finally:
                            stop.set()
                            if th:
                                th.join()
        print(f"\n{label}: training chars/s (median of {args.repeats})")
        print("| UI thread | 1 BLAS thread | 2 BLAS threads | 2 / 1 |")
        print("|---|---:|---:|---:|")
        for ui in uis:
            one, two = statistics.median(results[(ui, 1)]), statistics.median(results[(ui, 2)])
            print(f"| {ui} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(
        f"\nBLAS {blas['internal_api']} {blas['version']} kernel {blas['architecture']}; "
        f"load average after: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
