"""Training throughput with the interface running (headless, under Textual's test driver) against
the same training loop with no interface, alternating, for each engine thread count asked for;
and how fast keys reach the screen while the interface trains.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/ui_overhead.py \
        [--threads 1 2] [--hidden 256 --layers 2 --batch 32 --seq-len 100 --text FILE]

Both sides run with one BLAS thread per call, as the app and `lstm-tui train` do, and the NumPy
engine on N threads (core/parallel.py). Throughput is optimizer steps x B x T per second of wall
time over a window of the run (after a warm-up), so evaluations, snapshots and whatever the UI
thread costs the trainer all count. "UI thread CPU" is the CPU time the UI thread (the main
thread, running Textual's event loop) used per second of that window.

The interface is first left alone (the throughput column), then typed into (the key columns, and
the throughput meanwhile: each key changes the seed and the next-character table is computed
again from it). Key-to-screen latency: a character is typed into the seed box every
KEY_EVERY_S; each latency is the time from posting the key until the first screen update that
shows the new text has been composed and encoded as a terminal would be sent it (the test driver
skips writing; this script encodes every update anyway, so the cost of a real terminal's output
is counted). p50 and max over all keys of all repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from core import TrainConfig, Trainer
from core import corpus as corpus_io
from core.engine import numpy_engine_threads
from tui.apps.train import make_app
from tui.bench.measure import OthersCPU, busy_text

WARMUP_S = 1.0
KEY_EVERY_S = 0.2
KEY_TIMEOUT_S = 5.0


def rate(trainer: Trainer, t0: float, s0: int) -> float:
    return (trainer.step_count - s0) * trainer.batch * trainer.seq_len / (time.perf_counter() - t0)


def headless(text: corpus_io.Corpus, cfg: TrainConfig, threads: int, seconds: float) -> float:
    """The trainer's own loop in a worker thread, nothing else running."""
    trainer = Trainer(text, cfg, engine=numpy_engine_threads(threads))
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


class KeyClock:
    """Times keys typed into an Input until the screen shows them (see the module docstring)."""

    def __init__(self, app: Any, box: Any):
        from textual._compositor import CompositorUpdate

        self.box = box
        self.expected: str | None = None
        self.pressed = 0.0
        self.latencies: list[float] = []
        show = app._display

        def display(screen: Any, renderable: Any) -> None:
            show(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)  # what a real terminal would be sent
            if self.expected is not None and box.value == self.expected:
                self.latencies.append(time.perf_counter() - self.pressed)
                self.expected = None

        app._display = display

    async def type(self, app: Any, key: str) -> None:
        """Type one key as a terminal driver hands it over (posted to the app's queue, as its
        input thread does) and wait until the screen shows it (or give up after KEY_TIMEOUT_S).
        (Pilot.press would also wait for the process to be idle, which it never is while training.)"""
        from textual import events

        self.expected = self.box.value + key
        event = events.Key(key, key)
        event.set_sender(app)
        self.pressed = time.perf_counter()
        app._driver.send_message(event)
        deadline = self.pressed + KEY_TIMEOUT_S
        while self.expected is not None and time.perf_counter() < deadline:
            await asyncio.sleep(0.002)
        if self.expected is not None:
            self.latencies.append(KEY_TIMEOUT_S)
            self.expected = None


async def with_ui(
    text: corpus_io.Corpus, cfg: TrainConfig, threads: int, seconds: float
) -> tuple[float, float, float, list]:
    """The app, which trains in its own worker thread and repaints as progress arrives: first left
    alone for `seconds` (the throughput and the UI thread's CPU milliseconds per second), then
    for `seconds` more with keys typed into the seed box (their latencies, in seconds, and the
    throughput meanwhile: every key changes the seed, and the next-character table is computed
    again from it, on the same cores)."""
    from textual.widgets import Input

    trainer = Trainer(text, cfg, engine=numpy_engine_threads(threads))
    app = make_app(trainer, corpus_label=text.name)
    async with app.run_test(size=(120, 40)) as pilot:
        box = app.query_one("#seed", Input)
        clock = KeyClock(app, box)
        await asyncio.sleep(WARMUP_S)
        t0, s0, cpu0 = time.perf_counter(), trainer.step_count, time.thread_time()
        await asyncio.sleep(seconds)
        ui_ms = (time.thread_time() - cpu0) * 1000 / (time.perf_counter() - t0)
        r = rate(trainer, t0, s0)
        t0, s0 = time.perf_counter(), trainer.step_count
        n = 0
        while time.perf_counter() - t0 < seconds:
            await clock.type(app, "abcdefghij"[n % 10])
            n += 1
            if n % 20 == 0:
                box.value = box.value[:-20]  # keep the seed short
            await asyncio.sleep(max(0.0, KEY_EVERY_S - (time.perf_counter() - clock.pressed)))
        typing = rate(trainer, t0, s0)
        trainer.controls.stop()
        while any(w.is_running for w in app.workers):
            await pilot.pause(0.05)
    return r, ui_ms, typing, clock.latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="engine thread counts to measure")
    ap.add_argument("--text", help="a text file to train on (default: the bundled soliloquy)")
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq-len", type=int)
    args = ap.parse_args()
    given = {k: getattr(args, k) for k in ("hidden", "layers", "batch", "seq_len") if getattr(args, k)}
    cfg = TrainConfig(**given)  # the defaults the app starts with, unless given
    text = corpus_io.load(args.text or corpus_io.bundled_path())
    print(
        f"load average before: {os.getloadavg()[0]:.2f}; {text.name}, H={cfg.hidden} L={cfg.layers} "
        f"B={cfg.batch} T={cfg.seq_len}; {args.repeats} repetitions of {args.seconds:g} s, alternating"
    )
    res: dict[tuple[str, int], list[float]] = {}
    ui_cpu: dict[int, list[float]] = {}
    keys: dict[int, list[float]] = {}
    others = OthersCPU()
    with threadpool_limits(1, user_api="blas"):
        for rep in range(args.repeats):
            runs = [(mode, n) for n in args.threads for mode in ("headless", "ui")]
            for mode, n in runs if rep % 2 == 0 else reversed(runs):
                if mode == "headless":
                    r = headless(text, cfg, n, args.seconds)
                else:
                    r, ms, typed, lat = asyncio.run(with_ui(text, cfg, n, args.seconds))
                    ui_cpu.setdefault(n, []).append(ms)
                    keys.setdefault(n, []).extend(lat)
                    res.setdefault(("typing", n), []).append(typed)
                res.setdefault((mode, n), []).append(r)
    print(
        "| engine threads | headless chars/s | with the UI chars/s | UI / headless | UI thread CPU ms/s "
        "| typing: chars/s (/ headless) | keys | key-to-screen p50 ms | max ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.threads:
        h, u = statistics.median(res[("headless", n)]), statistics.median(res[("ui", n)])
        typed = statistics.median(res[("typing", n)])
        lat = keys[n]
        print(
            f"| {n} | {h:,.0f} | {u:,.0f} | {u / h:.0%} | {statistics.median(ui_cpu[n]):.0f} "
            f"| {typed:,.0f} ({typed / h:.0%}) | {len(lat)} | {statistics.median(lat) * 1e3:.1f} "
            f"| {max(lat) * 1e3:.1f} |"
        )
    if len(args.threads) > 1:
        base = statistics.median(res[("headless", args.threads[0])])
        for n in args.threads[1:]:
            print(
                f"with the UI on {n} threads / headless on {args.threads[0]}: "
                f"{statistics.median(res[('ui', n)]) / base:.2f}x"
            )
    busy = others.cores()
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(f"BLAS {blas['internal_api']} kernel {blas['architecture']}; load average after: {os.getloadavg()[0]:.2f}")
    print(f"other processes kept busy while this measured: {busy_text(busy)}")


if __name__ == "__main__":
    main()
