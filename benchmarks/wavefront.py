"""A wavefront over layers (W-Par's idea) against splitting the streams, for a two-layer LSTM.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/wavefront.py \
        [--hidden 256 --batch 32 --seq-len 100 --chunk 10 --repeats 9]

Three ways to compute one window's loss and gradients (forward, loss, backward; no optimizer):

- serial: the model's own forward and backward on one thread;
- streams: the engine's split (core/parallel.py): two threads, each on half the streams;
- wavefront: two threads, one per layer, the window cut into chunks of `--chunk` steps. Forward:
  layer 0 runs chunk k while layer 1 runs chunk k-1 (layer 1 projects each chunk of layer 0's
  output as it arrives). Backward: layer 1 runs chunk k (and its input gradient for that chunk)
  while layer 0 runs chunk k+1. The readout, the loss and its gradient run between the two, on
  the calling thread.

This is a measuring prototype (LSTM, two layers, no dropout, no resets), not the engine: it checks
that its gradients equal the serial ones, then times the three, alternating, one BLAS thread per
call. Milliseconds per window are thread CPU time summed over threads (work) and wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from core import corpus as corpus_io
from core.batches import Batches
from core.engine import NumpyEngine
from core.models import ModelConfig, create_model, softmax_cross_entropy
from core.models.lstm import CHUNK_FLOATS, _gate_derivatives, _recurrence, gate_scale
from core.models.recurrent import input_gradients
from tui.bench.measure import OthersCPU


class Run:
    """Just enough of a run for NumpyEngine: a model, its state, its batch, no clipping."""

    def __init__(self, model, B):
        self.model, self.batch = model, B
        self.state = model.initial_state(B)
        self.config = type("C", (), {"clip": 0.0})()


def wavefront(model, x, y, state, chunk: int):
    """Loss and gradients of a two-layer LSTM window, the layers on two threads (see the docstring)."""
    P, cfg = model.params, model.config
    T, B = x.shape
    H, dt = cfg.hidden, cfg.dtype
    s = gate_scale(H, dt)
    K = list(range(0, T, chunk))  # chunk starts
    A = [np.empty((T, B, 4 * H), dt) for _ in range(2)]
    Hs = [np.empty((T + 1, B, H), dt) for _ in range(2)]
    C = [np.empty((T + 1, B, H), dt) for _ in range(2)]
    TC = [np.empty((T, B, H), dt) for _ in range(2)]
    for layer in range(2):
        Hs[layer][0], C[layer][0] = state[layer]
    Wx1s, b1s = P["Wx1"] * s, P["b1"] * s
    Whs = [P["Wh0"] * s, P["Wh1"] * s]
    ready = [threading.Event() for _ in K]  # layer 0 finished chunk k
    np.take(P["Wx0"] * s + P["b0"] * s, x, axis=0, out=A[0])

    def forward0() -> None:
        for k, t0 in enumerate(K):
            t1 = min(T, t0 + chunk)
            _recurrence(A[0][t0:t1], Hs[0][t0 : t1 + 1], C[0][t0 : t1 + 1], TC[0][t0:t1], Whs[0], None)
            ready[k].set()

    def forward1() -> None:
        for k, t0 in enumerate(K):
            t1 = min(T, t0 + chunk)
            ready[k].wait()
            a = A[1][t0:t1].reshape(-1, 4 * H)
            np.matmul(Hs[0][t0 + 1 : t1 + 1].reshape(-1, H), Wx1s, out=a)
            a += b1s
            _recurrence(A[1][t0:t1], Hs[1][t0 : t1 + 1], C[1][t0 : t1 + 1], TC[1][t0:t1], Whs[1], None)

    th = threading.Thread(target=forward0)
    th.start()
    forward1()
    th.join()
    top = Hs[1][1:].reshape(T * B, H)
    logits = top @ P["Wy"] + P["by"]
    loss, dl = softmax_cross_entropy(logits, y.reshape(-1))
    grads = {"Wy": top.T @ dl, "by": dl.sum(axis=0)}
    dY1 = (dl @ P["Wy"].T).reshape(T, B, H)
    dY0 = np.empty((T, B, H), dt)
    done = [threading.Event() for _ in K]  # layer 1 finished chunk k, and dY0 for it

    def backward(layer: int, dHout, after=None) -> None:
        a, c, tc = A[layer], C[layer], TC[layer]
        WhT = np.ascontiguousarray(P[f"Wh{layer}"].T)
        Kc = max(1, min(chunk, CHUNK_FLOATS // (B * 4 * H)))
        M = np.empty((Kc, B, 4 * H), dt)
        oD = np.empty((Kc, B, H), dt)
        dh, dcur = np.empty((B, H), dt), np.empty((B, H), dt)
        dh_next, dc_next = np.zeros((B, H), dt), np.zeros((B, H), dt)
        F, Dzo = a[..., H : 2 * H], a[..., 2 * H : 3 * H]
        M4, Mo = M.reshape(Kc, B, 4, H), M[..., 2 * H : 3 * H]
        for k in reversed(range(len(K))):
            t0c, t1c = K[k], min(T, K[k] + chunk)
            if after is not None:
                after[k].wait()
            for t1 in range(t1c, t0c, -Kc):
                t0 = max(t0c, t1 - Kc)
                n = t1 - t0
                _gate_derivatives(a[t0:t1], c[t0:t1], tc[t0:t1], M[:n], oD[:n], H)
                for t in range(t1 - 1, t0 - 1, -1):
                    j = t - t0
                    np.add(dHout[t], dh_next, out=dh)
                    np.multiply(dh, oD[j], out=dcur)
                    np.add(dcur, dc_next, out=dcur)
                    np.multiply(dcur, F[t], out=dc_next)
                    dz = a[t]
                    np.multiply(M4[j], dcur[:, None, :], out=dz.reshape(B, 4, H))
                    np.multiply(Mo[j], dh, out=Dzo[t])
                    np.dot(dz, WhT, out=dh_next)
            if layer == 1:  # this chunk's input gradient, for layer 0
                dz = a[t0c:t1c].reshape(-1, 4 * H)
                np.matmul(dz, P["Wx1"].T, out=dY0[t0c:t1c].reshape(-1, H))
                done[k].set()
        dZ = a.reshape(T * B, 4 * H)
        grads[f"Wh{layer}"] = Hs[layer][:-1].reshape(T * B, H).T @ dZ
        if layer == 1:
            grads["b1"] = dZ.sum(axis=0)
            grads["Wx1"] = Hs[0][1:].reshape(T * B, H).T @ dZ
        else:
            input_gradients(0, x, dZ, P, model._pool, grads)

    th = threading.Thread(target=backward, args=(0, dY0, done))
    th.start()
    backward(1, dY1)
    th.join()
    return loss, grads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    text = corpus_io.load(corpus_io.bundled_path())
    H, B, T = args.hidden, args.batch, args.seq_len
    model = create_model(ModelConfig(text.vocab.size, H, 2), np.random.default_rng(0))
    w = Batches(np.tile(text.ids, 4 * B * T // len(text.ids) + 2), B, T).next()
    state = model.initial_state(B)
    split = NumpyEngine(Run(model.replica(), B), 2)
    print(f"load average before: {os.getloadavg()[0]:.2f}; LSTM H={H} L=2 B={B} T={T}, chunks of {args.chunk}")
    with threadpool_limits(1, user_api="blas"):
        ref_loss, ref, _ = model.loss_and_grads(w.x, w.y, state)
        loss, grads = wavefront(model, w.x, w.y, state, args.chunk)
        split.learn(w, None)
        worst = max(float(np.max(np.abs(grads[k] - ref[k])) / (np.max(np.abs(ref[k])) + 1e-12)) for k in ref)
        worst_split = max(
            float(np.max(np.abs(split._learned[0][k] - ref[k])) / (np.max(np.abs(ref[k])) + 1e-12)) for k in ref
        )
        print(f"largest gradient difference from serial, relative: wavefront {worst:.1e}, streams {worst_split:.1e}")
        runs = {
            "serial": lambda: model.loss_and_grads(w.x, w.y, state),
            "streams": lambda: split.learn(w, None),
            "wavefront": lambda: wavefront(model, w.x, w.y, state, args.chunk),
        }
        wall: dict[str, list[float]] = {k: [] for k in runs}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        names = list(runs)
        others = OthersCPU()
        for rep in range(args.repeats):
            for name in names if rep % 2 == 0 else reversed(names):
                c0, t0 = time.process_time(), time.perf_counter()
                runs[name]()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    busy = others.cores()
    base = statistics.median(wall["serial"])
    print("| way | wall ms | CPU ms (all threads) | speed-up over serial |")
    print("|---|---:|---:|---:|")
    for name in names:
        m = statistics.median(wall[name])
        print(f"| {name} | {m * 1e3:.1f} | {statistics.median(cpu[name]) * 1e3:.1f} | {base / m:.2f}x |")
    blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
    print(f"BLAS {blas['internal_api']} kernel {blas['architecture']}; load average after: {os.getloadavg()[0]:.2f}")
    if busy is not None:
        print(f"other processes kept {busy:.2f} cores busy while this measured")


if __name__ == "__main__":
    main()
