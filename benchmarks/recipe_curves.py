"""Learning curves for the recipe study: one setting, the whole validation part scored every N steps.

Curves are recorded against optimizer steps, which a busy machine cannot distort (the same seed
and settings give the same numbers however loaded the machine is); divide by a step's measured
time (`lstm-tui bench`, benchmarks/README.md) to read them against time. Each line is JSON:
step, epoch, smoothed training loss, the validation loss of the weights and, with --average, of
their moving average, and the learning rate.

    python benchmarks/recipe_curves.py TEXT --hidden 256 --layers 2 --lr 0.01 --steps 4000
    python benchmarks/recipe_curves.py TEXT --hidden 256 --layers 2 --lr 0.01 --average 0.998
    python benchmarks/recipe_curves.py TEXT --hidden 256 --layers 2 --lr 0.01 --cut 0.5 --patience 2

(`--cut F --patience P`: multiply the learning rate by F after P evaluations with no new best,
the rule TrainConfig.lr_decay applies; here every --every steps.) Results: results/recipe/.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import TrainConfig, Trainer  # noqa: E402
from core import corpus as corpus_io  # noqa: E402
from core.evaluate import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--average", type=float, default=0.0, help="also score a moving average of the weights")
    ap.add_argument("--cut", type=float, default=1.0, help="learning-rate cut when validation stalls (1 = off)")
    ap.add_argument("--patience", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--every", type=int, default=200, help="steps between evaluations")
    a = ap.parse_args()
    threadpool_limits(limits=1, user_api="blas")
    text = corpus_io.load(a.text)
    config = TrainConfig(
        hidden=a.hidden, layers=a.layers, batch=a.batch, seq_len=a.seq_len, lr=a.lr, dropout=a.dropout,
        average=a.average, eval_every=0,
    )  # fmt: skip
    trainer = Trainer(text, config)
    best, stale = math.inf, 0
    while trainer.step_count < a.steps:
        trainer.train_step()
        if trainer.step_count % a.every:
            continue
        raw = evaluate(trainer.model, text.val_ids, text.vocab).loss
        scored = raw
        record = {"step": trainer.step_count, "epoch": round(trainer.epoch, 3), "train": round(trainer.smooth_loss, 4),
                  "val": round(raw, 4), "lr": trainer.optimizer.lr}  # fmt: skip
        if trainer.average is not None:
            scored = evaluate(trainer.run_model(), text.val_ids, text.vocab).loss
            record["val_average"] = round(scored, 4)
        if scored < best - 1e-3:
            best, stale = scored, 0
        else:
            stale += 1
            if a.cut < 1 and stale >= a.patience:
                trainer.optimizer.lr *= a.cut
                stale = 0
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
