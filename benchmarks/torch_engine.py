"""`train --engine torch` against the NumPy engine on this CPU, side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/torch_engine.py [--repeats 7]

For each shape it times whole training steps (`Trainer.train_step`: the next window, forward,
backward, clipping, the optimizer, the reports' bookkeeping), alternating repetition by
repetition in one process, one thread each (NumPy's BLAS and PyTorch's intra-op pool):
  - numpy   core.Trainer, the default engine
  - torch   tui.torch_engine.TorchTrainer, the `--engine torch` one (same windows, resets,
            clipping rule and checkpoints)
  - plain   tui.bench_torch.TorchTrainer, the textbook nn.LSTM loop `lstm-tui bench` compares
            with: what PyTorch itself costs, without our engine's bookkeeping around it
Medians of `--repeats` repetitions of about 0.3 s each, after a warm-up; characters per second
are B x T per step. Needs the torch extra. Writes a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import platform
import sys

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rep-seconds", type=float, default=0.3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    blas = blas_info()
    print(
        f"Machine: {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__} "
        f"({blas.get('library')} {blas.get('version')}, kernel {blas.get('architecture')}), "
        f"PyTorch {torch.__version__}; 1 thread each; medians of {args.repeats} repetitions.\n"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
