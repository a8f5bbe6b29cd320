"""What one time step of one LSTM layer costs on one thread as a function of the streams it carries,
and what that implies, on paper, for more cores: splitting the streams against a wavefront over
the layers.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/step_cost.py [--hidden 256]

Measured (thread CPU time, one BLAS thread, medians): the forward and backward time loops of one
layer over T=100 steps for b = 1, 2, 4, ..., 64 streams; fitted as tau(b) = c0 + c1 b per step
(c0: what a step costs whatever its width: the recurrent product's packing of Wh and the ~20 NumPy
calls; c1: the arithmetic per stream). The interpreter lock is held for the calls' dispatch, g per
step, measured as a step at H=8, b=1 (where the arithmetic is nothing).

Projected (a model, not a measurement) for P cores, B streams, L layers, T steps, K chunks:

    streams split over P:         T L tau(B/P)                    lock: P T L g
    wavefront, L layers x P/L:    T tau(B L/P) (1 + (L-1)/K)      lock: P T g

each taking the larger of its arithmetic and its lock time; the window's large products (input
projections, weight gradients, readout) split over the threads in both and are left out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from core.models import ModelConfig, create_model

T = 100


def loop_cost(H: int, b: int, repeats: int = 5) -> float:
    """Thread CPU seconds per time step of one layer's forward and backward loops at b streams."""
    rng = np.random.default_rng(0)
    model = create_model(ModelConfig(32, H, 1), rng)
    x = rng.integers(0, 32, (T, b))
    y = rng.integers(0, 32, (T, b))
    state = model.initial_state(b)
    model.loss_and_grads(x, y, state)
    # the whole step minus its window-sized products, measured apart
    ts = []
    for _ in range(repeats):
        t0 = time.thread_time()
        model.loss_and_grads(x, y, state)
        ts.append(time.thread_time() - t0)
    top = rng.standard_normal((T * b, H)).astype(np.float32)
    dz = rng.standard_normal((T * b, 4 * H)).astype(np.float32)
    big = []
    for _ in range(repeats):
        t0 = time.thread_time()
        top.T @ dz  # dWh
        _ = top @ model.params["Wy"]  # readout
        big.append(time.thread_time() - t0)
    return (statistics.median(ts) - statistics.median(big)) / T


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--chunks", type=int, default=10)
    args = ap.parse_args()
    H, B, L, K = args.hidden, args.batch, args.layers, args.chunks
    print(f"load average before: {os.getloadavg()[0]:.2f}; LSTM H={H}, one layer's time loops, T={T}")
    with threadpool_limits(1, user_api="blas"):
        widths = [1, 2, 4, 8, 16, 32, 64]
        tau = {b: loop_cost(H, b) for b in widths}
        g = loop_cost(8, 1)
    bs = np.array(widths, float)
    ts = np.array([tau[b] for b in widths])
    c1, c0 = np.polyfit(bs, ts, 1)
    print("| streams b | per step, forward + backward (us) | fit c0 + c1 b (us) |")
    print("|---:|---:|---:|")
    for b in widths:
        print(f"| {b} | {tau[b] * 1e6:.1f} | {(c0 + c1 * b) * 1e6:.1f} |")
    print(f"c0 = {c0 * 1e6:.1f} us, c1 = {c1 * 1e6:.2f} us per stream; lock per step g = {g * 1e6:.1f} us (H=8, b=1)")

    def tau_of(b: float) -> float:
        return float(np.interp(b, bs, ts))

    one = T * L * tau_of(B)
    print(f"\nProjection (paper): B={B}, L={L}, T={T}, K={K} chunks; speed-up over one thread")
    print("| cores P | streams split | wavefront x streams | wavefront / split |")
    print("|---:|---:|---:|---:|")
    for P in (2, 4, 8, 16, 32):
        split = max(T * L * tau_of(B / P), P * T * L * g) if P <= B else float("nan")
        if P % L == 0 and P // L <= B:
            wave = max(T * tau_of(B * L / P) * (1 + (L - 1) / K), P * T * g)
        else:
            wave = float("nan")
        print(f"| {P} | {one / split:.2f}x | {one / wave:.2f}x | {split / wave:.2f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
