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
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from core.batches import Batches
from core.model import CharLSTM, ModelConfig
from core.optim import clip_by_global_norm, make_optimizer
from tui.bench import FULL, case_corpus
from tui.bench_torch import TorchTrainer


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


def median_alternating(runners: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in runners}
    names = list(runners)
    for fn in runners.values():
        fn()  # warm-up
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else reversed(names):
            t0 = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


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
            V, H, L, B, T = corpus.vocab.size, case.hidden, case.layers, case.batch, case.seq_len
            shapes = products(B, T, H, L, V)
            model = CharLSTM.create(ModelConfig(V, H, L), np.random.default_rng(0))
            opt = make_optimizer("adam", model.params, 2e-3)
            batches = Batches(corpus.train_ids, B, T)
            state = [model.initial_state(B)]
            tt = TorchTrainer(V, H, L, 2e-3, 5.0)

            def ours(model=model, opt=opt, batches=batches, state=state) -> None:
                w = batches.next()
                _, grads, state[0] = model.loss_and_grads(w.x, w.y, state[0], w.resets)
                clip_by_global_norm(grads, 5.0)
                opt.step(model.params, grads)

            def theirs(tt=tt, batches=batches) -> None:
                w = batches.next()
                tt.step(w.x, w.y)

            med = median_alternating(
                {
                    "np": gemm_runner(np.dot, lambda a: a, shapes),
                    "torch": gemm_runner(torch.mm, torch.from_numpy, shapes),
                    "ours": ours,
                    "theirs": theirs,
                },
                args.repeats,
            )
            ms = {k: v * 1e3 for k, v in med.items()}
            print(
                f"| {case.name} H={H} L={L} B={B} T={T} | {ms['np']:.1f} | {ms['torch']:.1f} | {ms['ours']:.1f} | "
                f"{ms['theirs']:.1f} | {ms['np'] / ms['theirs']:.2f} |"
            )


if __name__ == "__main__":
    main()
