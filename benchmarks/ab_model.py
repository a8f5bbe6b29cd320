"""Before/after for a change to the LSTM model's code, in one process: the model as committed at a
git revision (default HEAD) against the working tree, alternating full training steps
(loss_and_grads + global-norm clip + Adam) on the benchmark's configurations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/ab_model.py [--rev HEAD] [--threads 1]

Prints medians of wall time per step and the ratio before/after (> 1 means the change is faster).
CPU time (process_time) is printed too: on a shared machine it is steadier than wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from core.batches import Batches
from core.optim import clip_by_global_norm, make_optimizer
from tui.bench import FULL, case_corpus

ROOT = Path(__file__).resolve().parent.parent


def load_model_module(rev: str):
    """core/model.py as of `rev`, imported as a module of the core package (for its relative imports)."""
    src = subprocess.run(["git", "show", f"{rev}:core/model.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    tmp = Path(tempfile.mkdtemp()) / "model_before.py"
    tmp.write_text(src.stdout)
    spec = importlib.util.spec_from_file_location("core.model_before", tmp)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["core.model_before"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=0.3, help="per timed repetition")
    ap.add_argument("--case", action="append")
    args = ap.parse_args()
    import core.model as after

    before = load_model_module(args.rev)
    with threadpool_limits(args.threads, user_api="blas"):
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"][0]
        print(f"BLAS {blas['internal_api']} {blas['architecture']} threads={blas['num_threads']}; before = {args.rev}")
        for case in FULL.cases:
            if args.case and case.name not in args.case:
                continue
            corpus = case_corpus(case)
            runners = {}
            for name, mod in (("before", before), ("after", after)):
                cfg = mod.ModelConfig(corpus.vocab.size, case.hidden, case.layers)
                model = mod.CharLSTM.create(cfg, np.random.default_rng(0))
                opt = make_optimizer("adam", model.params, 2e-3)
                batches = Batches(corpus.train_ids, case.batch, case.seq_len)
                state = [model.initial_state(batches.batch)]

                def step(model=model, opt=opt, batches=batches, state=state) -> None:
                    w = batches.next()
                    _, grads, state[0] = model.loss_and_grads(w.x, w.y, state[0], w.resets)
                    clip_by_global_norm(grads, 5.0)
                    opt.step(model.params, grads)

                step()
                step()
                t0 = time.perf_counter()
                step()
                n = max(1, round(args.seconds / (time.perf_counter() - t0)))
                runners[name] = (step, n)
            wall: dict[str, list[float]] = {"before": [], "after": []}
            cpu: dict[str, list[float]] = {"before": [], "after": []}
            for rep in range(args.repeats):
                for name in ("before", "after") if rep % 2 == 0 else ("after", "before"):
                    step, n = runners[name]
                    w0, c0 = time.perf_counter(), time.process_time()
                    for _ in range(n):
                        step()
                    wall[name].append((time.perf_counter() - w0) / n)
                    cpu[name].append((time.process_time() - c0) / n)
            wb, wa = statistics.median(wall["before"]), statistics.median(wall["after"])
            cb, ca = statistics.median(cpu["before"]), statistics.median(cpu["after"])
            print(
                f"{case.name:9s} H={case.hidden} L={case.layers} B={case.batch} T={case.seq_len}: "
                f"wall {wb * 1e3:8.2f} -> {wa * 1e3:8.2f} ms  x{wb / wa:.2f}   "
                f"cpu {cb * 1e3:8.2f} -> {ca * 1e3:8.2f} ms  x{cb / ca:.2f}"
            )


if __name__ == "__main__":
    main()
