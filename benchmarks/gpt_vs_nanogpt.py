"""Our GPT against nanoGPT's, trained the same way: the validation loss after the same steps.

nanoGPT's CPU recipe (config/train_shakespeare_char.py with its README's CPU overrides: 4 layers,
4 heads, width 128, block 64, batch 12, no dropout, no biases; AdamW at 1e-3 with decay 0.1 and
betas (0.9, 0.99), clip 1, 100 warm-up steps, a cosine to 1e-4 over 2,000 steps) on tinyshakespeare
(the first 90% to train on, the last 10% to validate, as nanoGPT's prepare.py splits it), twice:

- ours: lstm-tui's Trainer (`--cell gpt` with these settings: its model, AdamW, schedule and
  clipping), in NumPy;
- PyTorch: nanoGPT's model (tui/pytorch/bench.py's TorchGPT: nanoGPT's modules and names) with
  nanoGPT's AdamW groups, clip_grad_norm_ and get_lr.

Both start from the same weights (ours, loaded into nanoGPT's model by the export's names) and read
the same batches in the same order: nanoGPT's get_batch (B windows of block + 1 characters at
random offsets of the training text), drawn once from one NumPy generator and given to both. Both
are scored the same way every --eval-every steps, by the same code on the same windows:

- `val`: the whole validation text in one pass, each position predicted with the context that
  generation gives it (core.evaluate: windows of the block, sliding by half a block);
- `val_blocks`: nanoGPT's estimate_loss, made deterministic: the mean loss of every position of
  --eval-windows fixed windows of the block drawn from the validation text.

One thread each, in one process; budgets in steps, so machine load does not change the result.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 \\
        python benchmarks/gpt_vs_nanogpt.py tinyshakespeare.txt --json benchmarks/results/gpt_vs_nanogpt.json

Needs the torch extra.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpt_recipe import NANOGPT_CPU, NanoBatches  # noqa: E402  (nanoGPT's recipe and get_batch)

from core import corpus as corpus_io  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.models.gpt import CharGPT, context_windows  # noqa: E402
from core.schedule import lr_factor  # noqa: E402
from core.trainer import Trainer  # noqa: E402
from tui.pytorch.bench import TorchGPT, nanogpt_adamw  # noqa: E402


@torch.inference_mode()
def torch_logits(net: TorchGPT, x: np.ndarray) -> np.ndarray:
    """Logits (T, W, V) for ids (T, W), as our forward gives them."""
    idx = torch.from_numpy(np.ascontiguousarray(x.T).astype(np.int64))
    return net(idx).numpy().transpose(1, 0, 2)


def ours_logits(model: CharGPT, x: np.ndarray) -> np.ndarray:
    return model.forward(x, ())[0]


def mean_loss(logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Summed nats of targets y (m,) under logits (m, V), and m."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].sum()), len(y)


def score(logits_of, ids: np.ndarray, block: int, windows: np.ndarray) -> dict[str, float]:
    """`val`: the whole text, each position in generation's context (context_windows, batched by
    64 windows); `val_blocks`: every position of the fixed windows `windows` (starts)."""
    n = len(ids) - 1
    total, count = 0.0, 0
    plan = context_windows(n, block)
    for i in range(0, len(plan), 64):
        group = plan[i : i + 64]
        for T in sorted({stop - start for start, stop, _ in group}):
            part = [w for w in group if w[1] - w[0] == T]
            starts = np.array([w[0] for w in part])
            skip = np.array([w[2] - w[0] for w in part])
            pos = starts[None, :] + np.arange(T)[:, None]  # (T, W)
            logits = logits_of(ids[pos])  # (T, W, V)
            keep = np.arange(T)[:, None] >= skip[None, :]
            s, m = mean_loss(logits[keep], ids[pos + 1][keep])
            total, count = total + s, count + m
    assert count == n
    pos = windows[None, :] + np.arange(block)[:, None]  # (T, W)
    logits = logits_of(ids[pos])
    s, m = mean_loss(logits.reshape(-1, logits.shape[-1]), ids[pos + 1].reshape(-1))
    return {"val": total / count, "val_blocks": s / m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--steps", type=int, default=2000, help="nanoGPT's max_iters for this recipe (default 2000)")
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-windows", type=int, default=200, help="windows of the block for val_blocks")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="write the results here too")
    a = ap.parse_args()
    torch.set_num_threads(1)
    text = corpus_io.load(a.text, val_fraction=0.1)
    cfg = TrainConfig(**NANOGPT_CPU, steps=a.steps, seed=a.seed, eval_every=0, lr_decay=1.0)
    block = cfg.block
    eval_starts = np.random.default_rng(a.seed + 1).integers(0, len(text.val_ids) - block - 1, a.eval_windows)

    trainer = Trainer(text, cfg)
    trainer.batches = NanoBatches(text.train_ids, cfg.batch, cfg.seq_len, a.seed + 2)  # type: ignore[assignment]
    net = TorchGPT(text.vocab.size, cfg.hidden, cfg.layers, cfg.heads, block)
    tensors = CharGPT.to_torch(trainer.model.params, trainer.model.config)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)  # the same start
    opt = nanogpt_adamw(net, cfg.lr, cfg.weight_decay, cfg.beta2)
    same_start = score(lambda x: ours_logits(trainer.model, x), text.val_ids, block, eval_starts)

    curve: list[dict[str, float]] = []
    seconds = {"ours": 0.0, "torch": 0.0}

    def evaluate(step: int) -> None:
        ours = score(lambda x: ours_logits(trainer.model, x), text.val_ids, block, eval_starts)
        net.eval()
        theirs = score(lambda x: torch_logits(net, x), text.val_ids, block, eval_starts)
        net.train()
        row = {
            "step": step,
            **{f"ours_{k}": v for k, v in ours.items()},
            **{f"torch_{k}": v for k, v in theirs.items()},
        }
        curve.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    with threadpool_limits(limits=1, user_api="blas"):
        evaluate(0)
        for step in range(a.steps):
            t0 = time.process_time()
            trainer.train_step()
            seconds["ours"] += time.process_time() - t0
            window = trainer.batches.last  # the batch ours just read
            t0 = time.process_time()
            lr = cfg.lr * lr_factor(cfg, step)  # nanoGPT's get_lr(step)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = torch.from_numpy(np.ascontiguousarray(window.x.T).astype(np.int64))
            targets = torch.from_numpy(np.ascontiguousarray(window.y.T).astype(np.int64))
            logits = net(idx)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), cfg.clip)
            opt.step()
            seconds["torch"] += time.process_time() - t0
            if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
                evaluate(step + 1)

    last = curve[-1]
    result = {
        "text": Path(a.text).name,
        "recipe": NANOGPT_CPU,
        "steps": a.steps,
        "seed": a.seed,
        "eval_windows": a.eval_windows,
        "start": same_start,
        "ours_val": last["ours_val"],
        "torch_val": last["torch_val"],
        "difference_val": last["ours_val"] - last["torch_val"],
        "ours_val_blocks": last["ours_val_blocks"],
        "torch_val_blocks": last["torch_val_blocks"],
        "difference_val_blocks": last["ours_val_blocks"] - last["torch_val_blocks"],
        "cpu_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "curve": curve,
    }
    assert math.isfinite(result["difference_val"])
    print(
        f"after {a.steps} steps: validation loss ours {last['ours_val']:.4f}, nanoGPT's {last['torch_val']:.4f} "
        f"(difference {result['difference_val']:+.4f}); on {a.eval_windows} whole blocks ours "
        f"{last['ours_val_blocks']:.4f}, nanoGPT's {last['torch_val_blocks']:.4f} "
        f"({result['difference_val_blocks']:+.4f}); CPU seconds of training ours {seconds['ours']:.0f}, "
        f"nanoGPT's {seconds['torch']:.0f}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
