"""Where one training step's time goes: forward, loss, backward, clipping, optimizer.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/profile_step.py [--threads 1] [--cell gru]

Medians over repetitions, milliseconds per step, for the benchmark's training configurations.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from core.batches import Batches
from core.models import MODELS, ModelConfig, create_model, softmax_cross_entropy
from core.optim import clip_by_global_norm, make_optimizer
from tui.bench.measure import FULL, case_corpus


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--case", action="append")
    ap.add_argument("--cell", action="append", choices=tuple(MODELS), help="repeatable; default lstm")
    args = ap.parse_args()
    with threadpool_limits(args.threads, user_api="blas"):
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
        print(f"BLAS {blas['internal_api']} {blas['architecture']} threads={blas['num_threads']}")
        for case, cell in [(case, cell) for case in FULL.cases for cell in args.cell or ["lstm"]]:
            if args.case and case.name not in args.case:
                continue
            corpus = case_corpus(case)
            config = ModelConfig(corpus.vocab.size, case.hidden, case.layers, cell=cell)
            model = create_model(config, np.random.default_rng(0))
            opt = make_optimizer("adam", model.params, 2e-3)
            batches = Batches(corpus.train_ids, case.batch, case.seq_len)
            state = model.initial_state(batches.batch)
            parts: dict[str, list[float]] = {k: [] for k in ("window", "forward", "loss", "backward", "clip", "adam")}
            for rep in range(args.repeats + 2):
                t = [time.perf_counter()]
                w = batches.next()
                t.append(time.perf_counter())
                logits, new_state, cache = model.forward(w.x, state, w.resets)
                t.append(time.perf_counter())
                T, B, V = logits.shape
                _, dlogits = softmax_cross_entropy(logits.reshape(T * B, V), w.y.reshape(-1))
                t.append(time.perf_counter())
                grads, _ = model.backward(dlogits.reshape(T, B, V), cache)
                t.append(time.perf_counter())
                clip_by_global_norm(grads, 5.0)
                t.append(time.perf_counter())
                opt.step(model.params, grads)
                t.append(time.perf_counter())
                state = new_state
                if rep >= 2:
                    for k, a, b in zip(parts, t[:-1], t[1:], strict=True):
                        parts[k].append((b - a) * 1e3)
            med = {k: statistics.median(v) for k, v in parts.items()}
            total = sum(med.values())
            chars = batches.batch * batches.seq_len
            print(
                f"{case.name:9s} {cell} B={batches.batch} T={batches.seq_len} total {total:7.2f} ms "
                f"({chars / total * 1e3:,.0f} chars/s): " + "  ".join(f"{k} {v:.2f}" for k, v in med.items())
            )


if __name__ == "__main__":
    main()
