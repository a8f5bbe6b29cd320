"""Adam's rate for a short text: how soon each cell learns the soliloquy, and whether it stays learned.

For each cell (lstm, gru, rnn) and rate (0.01, the short-text recipe's, and 0.015), five seeds of
the short-text settings (1 x 128, batch 8 x 48, one window in ten from a blank state, a constant
rate), one BLAS thread, in this process:

- steps: the first step whose whole-text loss (one pass, from a fresh state) is under 0.1, and its
  training time (what `lstm-tui bench --only learn` times against the notebook);
- worst after: the highest whole-text loss at any later check (every 5 steps): a jump back;
- one pass and cold start (64-character blocks each from a blank state) after 600 steps.

Then the LSTM for 2,000 steps at both rates (checks every 25 steps), the worst jump back and both
scores at the end.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/short_lr.py > benchmarks/results/short_lr.txt
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import corpus  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.evaluate import evaluate  # noqa: E402
from core.trainer import Trainer  # noqa: E402

TARGET = 0.1
SEEDS = range(5)


def run(text, cell: str, lr: float, seed: int, steps: int, every: int) -> dict:
    with threadpool_limits(1):
        t = Trainer(text, TrainConfig(eval_every=0, seed=seed, lr=lr, cell=cell, reset_prob=0.1))
        reached, seconds, worst, trained = None, None, 0.0, 0.0
        for s in range(1, steps + 1):
            t0 = time.perf_counter()
            t.train_step()
            trained += time.perf_counter() - t0
            if reached is not None and s % every:
                continue
            loss = evaluate(t.model, text.ids, text.vocab).loss
            if reached is None and loss < TARGET:
                reached, seconds = s, trained
            elif reached is not None:
                worst = max(worst, loss)
        ev = evaluate(t.model, text.ids, text.vocab, cold=True)
    return {"steps": reached, "seconds": seconds, "worst": worst, "one": ev.loss, "cold": ev.cold.loss}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] if r[key] is not None else float("inf") for r in rows)


def main() -> None:
    text = corpus.load(corpus.bundled_path())
    print(
        "cell  lr     steps to < 0.1 (5 seeds)    median  s (median)  worst after (each seed)"
        "          one@600  cold@600"
    )
    for cell in ("lstm", "gru", "rnn"):
        for lr in (0.01, 0.015):
            rows = [run(text, cell, lr, seed, 600, 5) for seed in SEEDS]
            steps = ", ".join(str(r["steps"]) for r in rows)
            worst = ", ".join(f"{r['worst']:.3f}" for r in rows)
            print(
                f"{cell:<5} {lr:<6g} {steps:<27} {median(rows, 'steps'):>6g}  {median(rows, 'seconds'):>10.3f}  "
                f"{worst:<32} {median(rows, 'one'):>7.4f}  {median(rows, 'cold'):>8.3f}",
                flush=True,
            )
    print("\nlstm, 2,000 steps: worst after (each seed); one pass and cold start at the end (each seed)")
    for lr in (0.01, 0.015):
        rows = [run(text, "lstm", lr, seed, 2000, 25) for seed in SEEDS]
        print(
            f"lr {lr:g}: worst {[round(r['worst'], 3) for r in rows]}, one {[round(r['one'], 4) for r in rows]}, "
            f"cold {[round(r['cold'], 3) for r in rows]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
