"""Does the GPT's float32 GELU pay? The float64-exact evaluation of Phi, run in float32, against the
fitted fast form (core/models/gpt.py; benchmarks/fit_gelu.py derives both): GELU forward and
backward alone on the MLP's (768, 512) at nanoGPT's CPU recipe, and whole training steps
(forward + backward, 4 layers, 4 heads, width 128, B=12, T=64) with one and the other.

The two alternate in one process until --budget CPU seconds are spent per comparison; medians, and
the median of the per-round ratios. One BLAS thread.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/gpt_gelu.py --budget 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import core.models.gpt as gpt  # noqa: E402
from core.models import ModelConfig, create_model  # noqa: E402


def alternate(contenders: dict[str, Callable[[], object]], budget: float, rounds: int = 5) -> dict[str, list[float]]:
    """Each contender once per round, in turn, until `budget` CPU seconds are spent; wall times."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for f in contenders.values():
        f()  # warm up
    start, done = time.process_time(), 0
    while done < rounds or time.process_time() - start < budget:
        for name, f in contenders.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
        done += 1
    return times


def report(title: str, times: dict[str, list[float]]) -> None:
    ratios = [e / f for f, e in zip(times["fast"], times["exact"], strict=True)]
    print(title)
    for name in ("fast", "exact"):
        print(f"  {name:6s} median {statistics.median(times[name]) * 1e3:8.2f} ms over {len(times[name])} rounds")
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    print(f"  exact / fast: median of per-round ratios {q2:.2f} (quartiles {q1:.2f}, {q3:.2f})")


def exact(x: np.ndarray, out: np.ndarray | None = None, scratch: np.ndarray | None = None) -> np.ndarray:
    """The float64-exact Phi, in x's dtype (float32 here)."""
    p = gpt.normal_cdf_exact(x)
    if out is None:
        return p
    np.copyto(out, p)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=20.0, help="CPU seconds per comparison")
    a = ap.parse_args()
    rng = np.random.default_rng(2)
    with threadpool_limits(limits=1, user_api="blas"):
        u = rng.standard_normal((768, 512), dtype=np.float32)
        Phi, G, dU = np.empty_like(u), np.empty_like(u), np.empty_like(u)

        def gelu_with(cdf: Callable[..., np.ndarray]) -> Callable[[], None]:
            def run() -> None:
                cdf(u, out=Phi, scratch=G)
                np.multiply(u, Phi, out=G)
                dU[...] = 1.0
                gpt.gelu_backward(u, Phi, dU, G)

            return run

        times = alternate({"fast": gelu_with(gpt.normal_cdf_fast), "exact": gelu_with(exact)}, a.budget)
        report("GELU forward + backward on (768, 512) float32", times)

        model = create_model(ModelConfig(65, 128, 4, cell="gpt", heads=4, block=64), rng)
        x, y = rng.integers(0, 65, (64, 12)), rng.integers(0, 65, (64, 12))
        fast_cdf = gpt.normal_cdf

        def step_with(cdf: Callable[..., np.ndarray]) -> Callable[[], None]:
            def run() -> None:
                gpt.normal_cdf = cdf
                try:
                    model.loss_and_grads(x, y, ())
                finally:
                    gpt.normal_cdf = fast_cdf

            return run

        times = alternate({"fast": step_with(fast_cdf), "exact": step_with(exact)}, a.budget)
        report("training step (forward + backward) with each GELU, float32", times)


if __name__ == "__main__":
    main()
