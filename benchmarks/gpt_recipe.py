"""The GPT's fitted recipe against variants of it, each given the same training compute.

The base is nanoGPT's CPU recipe, which `--cell gpt` chose on tinyshakespeare before this study
(core/recipe.py now takes two of the variants' changes: twice the rate and the weight average): 4
layers of width 128 with 4 heads, block 64, batch 12, AdamW at 1e-3 (decay 0.1, beta2 0.99), clip 1,
a 100-step warm-up and a cosine to 1e-4 over the run. It runs for --steps (default 2,000,
nanoGPT's max_iters), and each variant changes some of that:

    nanogpt         the recipe, its cosine over its steps
    open-ended      no end given (the interface's run, until stopped): warm-up, then the full rate,
                    halved when an evaluation sets no new best (--lr-decay 0.5); stopped after the
                    same steps
    open-average    the open-ended run whose model is the moving average of the weights (0.998)
    average         the recipe (its cosine) whose model is the moving average of the weights
    lr-2e-3         the recipe at twice the rate
    random          the recipe reading nanoGPT's batches (get_batch: B windows at random offsets of
                    the text) instead of the trainer's B streams, each reading the text on
    random-average  both
    lr-2e-3-average      twice the rate, with the average
    open-lr-2e-3-average the open-ended run at twice the rate, with the average
    batch-32        32 streams a step instead of 12 (fewer, larger steps)
    wider           4 layers of width 192 with 6 heads and a block of 128 (fewer steps)

Equal compute: a variant of the recipe's shape takes the recipe's steps (the same arithmetic,
whatever the machine's load). A variant of another shape takes as many steps as fit the same CPU
time, by the ratio of the two shapes' step times, measured alternating in this process (the
median of --rounds rounds of 10 steps each). Evaluations are not counted. One BLAS thread.

The score is the whole validation part's one-pass loss (core.evaluate: every position in the
context generation gives it) of the run's model at its end, and the best of its evaluations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/gpt_recipe.py \\
        tinyshakespeare.txt \\
        --variants nanogpt,open-ended,open-average,average,lr-2e-3,random,random-average,batch-32,wider \\
        > benchmarks/results/gpt_recipe.jsonl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/gpt_recipe.py \\
        tinyshakespeare.txt --steps 4000 --variants average,lr-2e-3-average,open-lr-2e-3-average \\
        >> benchmarks/results/gpt_recipe.jsonl

Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import EvalReport, StepReport, TrainConfig, Trainer, recipe  # noqa: E402
from core import corpus as corpus_io  # noqa: E402
from core.batches import Window  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "nanogpt": {},
    "open-ended": {"schedule": "constant", "open": True, "lr_decay": 0.5},
    "open-average": {"schedule": "constant", "open": True, "lr_decay": 0.5, "average": 0.998},
    "average": {"average": 0.998},
    "lr-2e-3": {"lr": 2e-3},
    "random": {"random_windows": True},
    "random-average": {"random_windows": True, "average": 0.998},
    "lr-2e-3-average": {"lr": 2e-3, "average": 0.998},
    "open-lr-2e-3-average": {"schedule": "constant", "open": True, "lr_decay": 0.5, "lr": 2e-3, "average": 0.998},
    "batch-32": {"batch": 32},
    "wider": {"hidden": 192, "heads": 6, "block": 128, "seq_len": 128},
}


class NanoBatches:
    """nanoGPT's get_batch for the Trainer: B windows of T + 1 characters at random offsets."""

    def __init__(self, ids: np.ndarray, batch: int, seq_len: int, seed: int):
        self.ids, self.batch, self.seq_len = ids, batch, seq_len
        self.rng = np.random.default_rng(seed)
        self.chars_seen = 0
        self.pairs = len(ids) - 1
        self.positions = np.zeros(batch, np.int64)  # (only for checkpoints, which these runs do not write)

    @property
    def epoch(self) -> float:
        return self.chars_seen / self.pairs

    def next(self) -> Window:
        T = self.seq_len
        starts = self.rng.integers(0, len(self.ids) - T, self.batch)  # (B,) as torch.randint(len(data) - block)
        idx = starts[None, :] + np.arange(T)[:, None]  # (T, B)
        self.chars_seen += self.batch * T
        self.last = Window(x=self.ids[idx], y=self.ids[idx + 1], resets={})  # for a second model to read too
        return self.last


class TimedSteps:
    """Wraps a trainer's train_step to count the CPU time of its steps alone."""

    def __init__(self, trainer: Trainer):
        self.trainer, self.cpu = trainer, 0.0
        self._step = trainer.train_step
        trainer.train_step = self  # type: ignore[method-assign]

    def __call__(self) -> Any:
        t0 = time.process_time()
        report = self._step()
        self.cpu += time.process_time() - t0
        return report


SHAPE = ("hidden", "layers", "heads", "block", "seq_len", "batch")
# nanoGPT's CPU recipe (config/train_shakespeare_char.py with its README's CPU overrides), the base
# every variant changes: what core/recipe.py chose on tinyshakespeare before this study.
NANOGPT_CPU = {
    "cell": "gpt",
    "layers": 4,
    "heads": 4,
    "hidden": 128,
    "block": 64,
    "seq_len": 64,
    "batch": 12,
    "dropout": 0.0,
    "bias": False,
    "lr": 1e-3,
    "weight_decay": 0.1,
    "beta2": 0.99,
    "clip": 1.0,
    "warmup": 100,
    "schedule": "cosine",
    "min_lr": 0.1,
}


def step_ratio(text: corpus_io.Corpus, base: dict[str, Any], other: dict[str, Any], rounds: int) -> float:
    """How many steps of `other` take the CPU time of one of `base`: the median of per-round ratios,
    the two alternating (10 steps each, after 5 to warm up)."""
    a = Trainer(text, TrainConfig(**{**base, "eval_every": 0}))
    b = Trainer(text, TrainConfig(**{**other, "eval_every": 0}))
    for _ in range(5):
        a.train_step()
        b.train_step()
    ratios = []
    for _ in range(rounds):
        times = []
        for t in (a, b):
            t0 = time.process_time()
            for _ in range(10):
                t.train_step()
            times.append(time.process_time() - t0)
        ratios.append(times[0] / times[1])
    return statistics.median(ratios)


def run(text: corpus_io.Corpus, label: str, base: dict[str, Any], base_steps: int, rounds: int) -> dict[str, Any]:
    change = dict(VARIANTS[label])
    open_ended = change.pop("open", False)
    random_windows = change.pop("random_windows", False)
    settings = {**base, **change}
    same_shape = all(settings[k] == base[k] for k in SHAPE)
    ratio = 1.0 if same_shape else step_ratio(text, base, settings, rounds)
    steps = max(1, round(base_steps * ratio))
    cfg = TrainConfig(**{**settings, "steps": 0 if open_ended else steps})
    if not open_ended:  # eight evaluations over the run, for the curve
        cfg = TrainConfig(**{**cfg.to_dict(), "eval_every": max(1, steps // 8)})
    trainer = Trainer(text, cfg)
    if random_windows:
        trainer.batches = NanoBatches(text.train_ids, cfg.batch, cfg.seq_len, 2)  # type: ignore[assignment]
    timed = TimedSteps(trainer)
    curve = []
    for r in trainer.run():
        if isinstance(r, EvalReport):
            curve.append((r.step, round(timed.cpu, 1), round(r.val_loss, 4), r.lr_cut))
        if isinstance(r, StepReport) and open_ended and r.step >= steps:
            trainer.controls.stop()
    final = trainer.evaluate()
    best = min([v for _, _, v, _ in curve] + [final.val_loss])
    return {
        "label": label,
        "settings": {k: v for k, v in cfg.to_dict().items() if k in set(settings) | {"steps", "eval_every"}},
        "windows": "random" if random_windows else "streams",
        "steps_per_recipe_step": round(ratio, 3),
        "train_cpu_s": round(timed.cpu, 1),
        "steps": trainer.step_count,
        "epochs": round(trainer.epoch, 3),
        "final_val": round(final.val_loss, 4),
        "best_val": round(best, 4),
        "final_lr": trainer.optimizer.lr,
        "curve": curve,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--steps", type=int, default=2000, help="the recipe's steps (default: nanoGPT's 2,000)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds timing a shape against the recipe's")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    a = ap.parse_args()
    text = corpus_io.load(a.text)
    with threadpool_limits(limits=1, user_api="blas"):
        chosen = recipe.choose(len(text.train_ids), text.vocab.size, {"cell": "gpt"})
        base = dict(NANOGPT_CPU)
        print(json.dumps({"base": base, "recipe_now": chosen.reason, "recipe_steps": a.steps}), flush=True)
        for label in a.variants.split(","):
            result = run(text, label, base, a.steps, a.rounds)
            assert math.isfinite(result["final_val"])
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
