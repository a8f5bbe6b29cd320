"""What limits training at B >= 32: the matrix products themselves, NumPy's BLAS against PyTorch's.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/gemm_floor.py [--threads 1]

For each `lstm-tui bench` training configuration it times, alternating, in one process:
  - every matrix product one of our training steps performs (same shapes, same count, float32):
    per layer and time step h_{t-1} Wh (forward) and dz_t Wh^T (backward); per layer the
    whole-window products (dWh, and for upper layers the input projection, dWx and the
    gradient into the layer below); the readout's three. Once with NumPy (np.dot, the BLAS
    our engine calls), once with torch.mm (the BLAS PyTorch ships);
  - our full training step and PyTorch's (nn.LSTM + Adam + clipping, as the bench runs it).

If the NumPy products alone take longer than PyTorch's whole step, no rearranging of the
element-wise work can reach 1.0x: the products are the floor. Needs the torch extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from core.batches import Batches
from tui.bench.measure import BENCH_CLIP, BENCH_LR, FULL, alternate, calibrate, case_corpus, case_trainer
from tui.pytorch.bench import TorchTrainer


def products(B: int, T: int, H: int, L: int, V: int) -> list[tuple[int, int, int, int]]:
    """(M, K, N, times) for every product of one training step: (M, K) @ (K, N), `times` times."""
    N = T * B
    shapes = [(B, H, 4 * H, T * L), (B, 4 * H, H, T * L)]  # the recurrence, forward and backward
    shapes += [(H, N, 4 * H, L)]  # dWh = Hprev^T dZ, per layer
    shapes += [(N, H, 4 * H, L - 1), (H, N, 4 * H, L - 1), (N, 4 * H, H, L - 1)]  # upper layers' input
    shapes += [(N, H, V, 1), (H, N, V, 1), (N, V, H, 1)]  # readout: logits, dWy, dY
    return [s for s in shapes if s[3] > 0]


def gemm_runner(mm: Callable, make: Callable, shapes: list[tuple[int, int, int, int]]) -> Callable[[], None]:
    rng = np.random.default_rng(0)
    ops = []
    for M, K, N, times in shapes:
        a = make(rng.standard_normal((M, K)).astype(np.float32))
        b = make(rng.standard_normal((K, N)).astype(np.float32))
        out = make(np.empty((M, N), np.float32))
        ops.append((a, b, out, times))

    def run() -> None:
        for a, b, out, times in ops:
            for _ in range(times):
                mm(a, b, out=out)

    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with threadpool_limits(args.threads, user_api="blas"):
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
        print(
            f"NumPy {np.__version__} ({blas['internal_api']} {blas.get('version')}, "
            f"kernel {blas.get('architecture')}), "
            f"PyTorch {torch.__version__}; {args.threads} thread(s). Milliseconds per training step, medians."
        )
        print(
            "| config | NumPy products | torch.mm products | ours: whole step | PyTorch: whole step "
            "| NumPy products / PyTorch step |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for case in FULL.cases:
            if case.batch < 32:
                continue
            corpus = case_corpus(case)
            trainer = case_trainer(case, corpus)  # exactly the step `lstm-tui bench` times
            V, H, L, B, T = corpus.vocab.size, case.hidden, case.layers, trainer.batch, trainer.seq_len
            shapes = products(B, T, H, L, V)
            tt = TorchTrainer(V, H, L, BENCH_LR, BENCH_CLIP)
            windows = Batches(corpus.train_ids, B, T)

            def theirs(tt: TorchTrainer = tt, windows: Batches = windows) -> None:
                w = windows.next()
                tt.step(w.x, w.y)

            runs = {
                "np": gemm_runner(np.dot, lambda a: a, shapes),
                "torch": gemm_runner(torch.mm, torch.from_numpy, shapes),
                "ours": trainer.train_step,
                "theirs": theirs,
            }
            med = alternate({k: (fn, calibrate(fn, 0.3)) for k, fn in runs.items()}, args.repeats)
            ms = {k: v * 1e3 for k, v in med.items()}
            print(
                f"| {case.name} H={H} L={L} B={B} T={T} | {ms['np']:.1f} | {ms['torch']:.1f} | {ms['ours']:.1f} | "
                f"{ms['theirs']:.1f} | {ms['np'] / ms['theirs']:.2f} |"
            )


if __name__ == "__main__":
    main()
