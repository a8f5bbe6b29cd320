"""The short-text settings: how soon each cell learns the soliloquy, and whether it stays learned.

Each candidate is LABEL=SETTINGS, TrainConfig fields over the short-text recipe's (core.recipe.TINY,
printed first; a constant rate, no evaluations in training). For each cell (lstm, gru, rnn) and
candidate, five seeds, one BLAS thread, in this process:

- steps: the first step whose whole-text loss (one pass, from a fresh state) is under 0.1, and its
  training time (what `lstm-tui bench --only learn` times against the notebook);
- worst after: the highest whole-text loss at any later check (every 5 steps): a jump back;
- one pass and cold start (64-character blocks each from a blank state) after 600 steps.

Then the LSTM for 2,000 steps with each candidate (checks every 25 steps once learned): the worst
jump back and both scores at the end.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/short_text.py \\
        "seq-len 48=seq_len=48" "lr 0.015=seq_len=48,lr=0.015" > benchmarks/results/short_text_lr.txt

A label holds no "=". results/short_text_seq_len.txt was recorded with "recipe=" "seq-len
32=seq_len=32" "seq-len 24=seq_len=24" when the recipe's windows were 48 steps (its first line).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import corpus  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.evaluate import evaluate  # noqa: E402
from core.recipe import TINY  # noqa: E402
from core.trainer import Trainer  # noqa: E402

TARGET = 0.1
SEEDS = range(5)


def run(text, settings: dict, seed: int, steps: int, every: int) -> dict:
    with threadpool_limits(1):
        t = Trainer(text, TrainConfig(**{**TINY, **settings, "eval_every": 0, "seed": seed}))
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


def parse(candidate: str) -> tuple[str, dict]:
    label, _, spec = candidate.partition("=")
    settings = {}
    for item in filter(None, spec.split(",")):
        k, _, v = item.partition("=")
        settings[k] = float(v) if "." in v else int(v)
    return label, settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "candidates", nargs="*", metavar="LABEL=SETTINGS", help='e.g. "lr 0.015=lr=0.015" (default: the recipe)'
    )
    a = ap.parse_args()
    text = corpus.load(corpus.bundled_path())
    candidates = [parse(c) for c in a.candidates] or [("recipe", {})]
    print(f"the short-text recipe: {TINY}")
    print(
        f"{'cell':<5} {'candidate':<12} {'steps to < 0.1 (5 seeds)':<27} {'median':>6}  {'s (median)':>10}  "
        f"{'worst after (each seed)':<32} {'one@600':>7}  {'cold@600':>8}"
    )
    for cell in ("lstm", "gru", "rnn"):
        for label, settings in candidates:
            rows = [run(text, {**settings, "cell": cell}, seed, 600, 5) for seed in SEEDS]
            steps = ", ".join(str(r["steps"]) for r in rows)
            worst = ", ".join(f"{r['worst']:.3f}" for r in rows)
            print(
                f"{cell:<5} {label:<12} {steps:<27} {median(rows, 'steps'):>6g}  {median(rows, 'seconds'):>10.3f}  "
                f"{worst:<32} {median(rows, 'one'):>7.4f}  {median(rows, 'cold'):>8.3f}",
                flush=True,
            )
    print("\nlstm, 2,000 steps: worst after (each seed); one pass and cold start at the end (each seed)")
    for label, settings in candidates:
        rows = [run(text, settings, seed, 2000, 25) for seed in SEEDS]
        print(
            f"{label}: worst {[round(r['worst'], 3) for r in rows]}, one {[round(r['one'], 4) for r in rows]}, "
            f"cold {[round(r['cold'], 3) for r in rows]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
