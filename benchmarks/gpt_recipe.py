"""The GPT's fitted recipe against variants of it, each trained for the same CPU time.

What `--cell gpt` chooses on tinyshakespeare (core/recipe.py) is nanoGPT's CPU recipe: 4 layers of
width 128 with 4 heads, block 64, batch 12, AdamW at 1e-3 (decay 0.1, beta2 0.99), clip 1, a
100-step warm-up and a cosine to 1e-4 over the run. Each variant changes some of that and trains
for the same CPU time of its training steps (evaluations not counted), in this one process, one
variant after another, with one BLAS thread:

    nanogpt      the recipe, its cosine over the steps that fit the budget (2,000 steps: nanoGPT's
                 max_iters, with the default budget)
    open-ended   the same with no end given (the interface's run, until stopped): warm-up, then the
                 full rate, halved when an evaluation sets no new best (--lr-decay 0.5)
    open-average the open-ended run whose model is the moving average of the weights (0.998)
    lr-2e-3      the recipe at twice the rate
    batch-32     32 streams a step instead of 12 (fewer, larger steps)
    wider        4 layers of width 192 with 6 heads and a block of 128 (fewer steps)

A run whose length must be known (a cosine) gets the steps that fit the budget, from a timing of
its first steps (`--calibrate`); an open-ended run stops when its steps have used the budget.
The score is the whole validation part's one-pass loss (core.evaluate: every position in the
context generation gives it), of the run's model at its end and the best of its evaluations.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/gpt_recipe.py \\
        tinyshakespeare.txt --budget 150 >> benchmarks/results/gpt_recipe.jsonl

--budget defaults to the CPU time of nanoGPT's 2,000 steps here, measured first. Prints one JSON
line per variant.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import EvalReport, StepReport, TrainConfig, Trainer, recipe  # noqa: E402
from core import corpus as corpus_io  # noqa: E402

VARIANTS: dict[str, dict[str, Any]] = {
    "nanogpt": {},
    "open-ended": {"schedule": "constant", "open": True, "lr_decay": 0.5},
    "open-average": {"schedule": "constant", "open": True, "lr_decay": 0.5, "average": 0.998},
    "lr-2e-3": {"lr": 2e-3},
    "batch-32": {"batch": 32},
    "wider": {"hidden": 192, "heads": 6, "block": 128, "seq_len": 128},
}
NANOGPT_STEPS = 2000  # nanoGPT's max_iters for this recipe


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


def seconds_per_step(text: corpus_io.Corpus, settings: dict[str, Any], steps: int) -> float:
    """CPU seconds of one training step of these settings, over `steps` after 5 to warm up."""
    trainer = Trainer(text, TrainConfig(**{**settings, "eval_every": 0}))
    for _ in range(5):
        trainer.train_step()
    t0 = time.process_time()
    for _ in range(steps):
        trainer.train_step()
    return (time.process_time() - t0) / steps


def run(text: corpus_io.Corpus, label: str, base: dict[str, Any], budget: float, calibrate: int) -> dict[str, Any]:
    change = dict(VARIANTS[label])
    open_ended = change.pop("open", False)
    settings = {**base, **change}
    per_step = seconds_per_step(text, settings, calibrate)
    steps = 0 if open_ended else max(1, round(budget / per_step))
    cfg = TrainConfig(**{**settings, "steps": steps})
    if not open_ended:  # eight evaluations over the run, for the curve
        cfg = TrainConfig(**{**cfg.to_dict(), "eval_every": max(1, steps // 8)})
    trainer = Trainer(text, cfg)
    timed = TimedSteps(trainer)
    curve = []
    for r in trainer.run():
        if isinstance(r, EvalReport):
            curve.append((r.step, round(timed.cpu, 1), round(r.val_loss, 4), r.lr_cut))
        if isinstance(r, StepReport) and open_ended and timed.cpu >= budget:
            trainer.controls.stop()
    final = trainer.evaluate()
    best = min([v for _, _, v, _ in curve] + [final.val_loss])
    return {
        "label": label,
        "settings": {k: v for k, v in cfg.to_dict().items() if k in set(settings) | {"steps", "eval_every"}},
        "budget_cpu_s": round(budget, 1),
        "train_cpu_s": round(timed.cpu, 1),
        "calibrated_s_per_step": round(per_step, 4),
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
    ap.add_argument("--budget", type=float, default=0.0, help="CPU seconds of training per variant")
    ap.add_argument("--calibrate", type=int, default=40, help="steps timed to fit a cosine run to the budget")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    a = ap.parse_args()
    text = corpus_io.load(a.text)
    with threadpool_limits(limits=1, user_api="blas"):
        chosen = recipe.choose(len(text.train_ids), text.vocab.size, {"cell": "gpt"})
        base = dict(chosen.settings)
        budget = a.budget or NANOGPT_STEPS * seconds_per_step(text, base, a.calibrate)
        print(json.dumps({"chose": chosen.reason, "budget_cpu_s": round(budget, 1)}), flush=True)
        for label in a.variants.split(","):
            result = run(text, label, base, budget, a.calibrate)
            assert math.isfinite(result["final_val"])
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
