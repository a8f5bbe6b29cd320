"""`train --engine torch` against the NumPy engine on this CPU, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/torch_engine.py [--repeats 7]

For each shape it times whole training steps (`Trainer.train_step`: the next window, forward,
backward, clipping, the optimizer, the reports' bookkeeping), alternating repetition by
repetition in one process, one thread each (NumPy's BLAS and PyTorch's intra-op pool):
  - numpy   core.Trainer, the default engine
  - torch   tui.pytorch.engine.TorchTrainer, the `--engine torch` one (same windows, resets,
            clipping rule and checkpoints)
  - plain   tui.pytorch.bench.TorchTrainer, the textbook nn.LSTM loop `lstm-tui bench` compares
            with: what PyTorch itself costs, without our engine's bookkeeping around it
Medians of `--repeats` repetitions of about 0.3 s each, after a warm-up; characters per second
are B x T per step. Needs the torch extra. Writes a Markdown table on stdout.

With `--processes`, it then times data-parallel training: the torch engine at H=256 L=2 B=32
T=100 in 1 process and in 2 processes launched by torchrun (gloo, one thread each, each process
training 16 of the 32 streams), alternating the two launches, the median step time of each run
after a warm-up. On a 2-core machine the 2 processes share the cores with everything else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from core.batches import Batches
from core.trainer import TrainConfig, Trainer
from tui.bench import BENCH_CLIP, BENCH_LR, alternate, blas_info, calibrate, tiled_corpus
from tui.bench_torch import TorchTrainer as PlainTorch
from tui.torch_engine import TorchTrainer

SHAPES = [  # (H, L, B, T)
    (128, 1, 32, 64),
    (256, 2, 32, 100),
    (512, 1, 64, 100),
]


DDP_SHAPE = (256, 2, 32, 100)  # (H, L, B, T) for --processes
DDP_STEPS, DDP_WARMUP = 12, 3


def ddp_worker() -> None:
    """One process of a torchrun launch: time DDP_STEPS steps; rank 0 prints the median as JSON."""
    torch.set_num_threads(1)
    H, L, B, T = DDP_SHAPE
    text = tiled_corpus(4 * B * T + 1)
    cfg = TrainConfig(hidden=H, layers=L, batch=B, seq_len=T, lr=BENCH_LR, clip=BENCH_CLIP, eval_every=0)
    trainer = TorchTrainer(text, cfg, device="cpu")
    times = []
    for i in range(DDP_WARMUP + DDP_STEPS):
        t0 = time.perf_counter()
        trainer.train_step()
        if i >= DDP_WARMUP:
            times.append(time.perf_counter() - t0)
    if trainer.rank == 0:
        print(json.dumps({"processes": trainer.world, "chars_per_s": B * T / statistics.median(times)}), flush=True)


def ddp_runs(repeats: int) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    speeds: dict[int, list[float]] = {1: [], 2: []}
    for rep in range(repeats):
        for n in (1, 2) if rep % 2 == 0 else (2, 1):
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}"]
            res = subprocess.run(
                [*cmd, os.path.abspath(__file__), "--worker"], env=env, capture_output=True, text=True, check=True
            )
            record = json.loads([line for line in res.stdout.splitlines() if line.startswith("{")][-1])
            speeds[n].append(record["chars_per_s"])
    H, L, B, T = DDP_SHAPE
    one, two = statistics.median(speeds[1]), statistics.median(speeds[2])
    print(f"\n| torchrun, --engine torch, H={H} L={L} B={B} T={T}, gloo | chars/s (median of {repeats} runs) |")
    print("|---|---:|")
    print(f"| 1 process | {one:,.0f} |")
    print(f"| 2 processes (16 streams each) | {two:,.0f} ({two / one:.2f}x) |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rep-seconds", type=float, default=0.3)
    ap.add_argument("--processes", action="store_true", help="also time 1 against 2 processes under torchrun")
    ap.add_argument("--process-repeats", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        ddp_worker()
        return 0
    torch.set_num_threads(1)
    blas = blas_info()
    print(
        f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__} "
        f"({blas.get('library')} {blas.get('version')}, kernel {blas.get('architecture')}), "
        f"PyTorch {torch.__version__}; 1 thread each; medians of {args.repeats} repetitions; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start.\n"
    )
    print("| H L B T | numpy engine | --engine torch | plain nn.LSTM loop | torch / numpy | torch / plain |")
    print("|---|---:|---:|---:|---:|---:|")
    with threadpool_limits(limits=1, user_api="blas"):
        for H, L, B, T in SHAPES:
            text = tiled_corpus(4 * B * T + 1)
            cfg = TrainConfig(hidden=H, layers=L, batch=B, seq_len=T, lr=BENCH_LR, clip=BENCH_CLIP, eval_every=0)
            ours, theirs = Trainer(text, cfg), TorchTrainer(text, cfg, device="cpu")
            plain = PlainTorch(text.vocab.size, H, L, BENCH_LR, BENCH_CLIP)
            windows = Batches(text.train_ids, B, T)

            def plain_step(plain: PlainTorch = plain, windows: Batches = windows) -> float:
                w = windows.next()
                return plain.step(w.x, w.y)

            steps = {"numpy": ours.train_step, "torch": theirs.train_step, "plain": plain_step}
            runners = {name: (fn, calibrate(fn, args.rep_seconds)) for name, fn in steps.items()}
            secs = alternate(runners, args.repeats)
            cps = {name: B * T / s for name, s in secs.items()}
            print(
                f"| {H} {L} {B} {T} | {cps['numpy']:,.0f} | {cps['torch']:,.0f} | {cps['plain']:,.0f} | "
                f"{cps['torch'] / cps['numpy']:.2f}x | {cps['torch'] / cps['plain']:.2f}x |",
                flush=True,
            )
    if args.processes:
        ddp_runs(args.process_repeats)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
