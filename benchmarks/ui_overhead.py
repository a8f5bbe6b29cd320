"""Training throughput with the interface running (headless, under Textual's test driver) against
the same training loop with no interface, alternating, both with one BLAS thread: the app limits
BLAS to one thread when it mounts (`blas_threads.py` measured why), so that is what it trains with.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/ui_overhead.py

Throughput is optimizer steps x B x T per second of wall time over a window of the run (after a
warm-up), so evaluations, snapshots and whatever the UI thread costs the trainer all count.
The last column is the CPU time the UI thread (the main thread, running Textual's event loop)
used per second of that window: a steadier measure of the UI's cost than the throughput ratio,
since every millisecond of it holds the interpreter lock the training thread needs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time

from threadpoolctl import threadpool_info, threadpool_limits

from core import TrainConfig, Trainer
from core import corpus as corpus_io
from tui.apps.train import make_app

WARMUP_S = 1.0


def rate(trainer: Trainer, t0: float, s0: int) -> float:
    return (trainer.step_count - s0) * trainer.batch * trainer.seq_len / (time.perf_counter() - t0)


def headless(cfg: TrainConfig, seconds: float) -> float:
    """The trainer's own loop in a worker thread, nothing else running."""
    text = corpus_io.load(corpus_io.bundled_path())
    trainer = Trainer(text, cfg)
    out: list[float] = []

    def work() -> None:
        start = time.perf_counter()
        mark: tuple[float, int] | None = None
        for _ in trainer.run():
            now = time.perf_counter()
            if mark is None and now - start >= WARMUP_S:
                mark = (now, trainer.step_count)
            if mark is not None and now - mark[0] >= seconds:
                out.append(rate(trainer, *mark))
                trainer.controls.stop()

    th = threading.Thread(target=work)
    th.start()
    th.join()
    return out[0]


async def with_ui(cfg: TrainConfig, seconds: float) -> tuple[float, float]:
    """The app, which trains in its own worker thread and repaints as progress arrives.

    Returns the throughput and the UI thread's CPU milliseconds per second.
    """
    text = corpus_io.load(corpus_io.bundled_path())
    trainer = Trainer(text, cfg)
    app = make_app(trainer, corpus_label="soliloquy")
    async with app.run_test(size=(120, 40)) as pilot:
        await asyncio.sleep(WARMUP_S)
        t0, s0, cpu0 = time.perf_counter(), trainer.step_count, time.thread_time()
        await asyncio.sleep(seconds)
        ui_ms = (time.thread_time() - cpu0) * 1000 / (time.perf_counter() - t0)
        r = rate(trainer, t0, s0)
        trainer.controls.stop()
        while any(w.is_running for w in app.workers):
            await pilot.pause(0.05)
    return r, ui_ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    cfg = TrainConfig()  # the defaults the app starts with
    print(f"load average before: {os.getloadavg()[0]:.2f}; defaults H={cfg.hidden} B={cfg.batch} T={cfg.seq_len}")
    res: dict[tuple[str, int], list[float]] = {}
    ui_cpu: dict[int, list[float]] = {}
    for rep in range(args.repeats):
        for n in (1,):
            with threadpool_limits(n, user_api="blas"):
                order = ("headless", "ui") if rep % 2 == 0 else ("ui", "headless")
                for mode in order:
                    if mode == "headless":
                        r = headless(cfg, args.seconds)
                    else:
                        r, ms = asyncio.run(with_ui(cfg, args.seconds))
                        ui_cpu.setdefault(n, []).append(ms)
                    res.setdefault((mode, n), []).append(r)
    print("| BLAS threads | headless chars/s | with the UI chars/s | UI / headless | UI thread CPU ms/s |")
    print("|---:|---:|---:|---:|---:|")
    for n in (1,):
        h, u = statistics.median(res[("headless", n)]), statistics.median(res[("ui", n)])
        print(f"| {n} | {h:,.0f} | {u:,.0f} | {u / h:.0%} | {statistics.median(ui_cpu[n]):.0f} |")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(f"BLAS {blas['internal_api']} kernel {blas['architecture']}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
