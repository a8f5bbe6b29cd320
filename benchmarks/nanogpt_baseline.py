"""nanoGPT's shakespeare_char CPU recipe in PyTorch, given a budget of CPU seconds: the baseline.

The recipe (config/train_shakespeare_char.py with its README's CPU overrides; benchmarks/
gpt_recipe.py's NANOGPT_CPU): 4 layers, 4 heads, width 128, block 64, batch 12, no dropout, no
biases; AdamW at 1e-3 with betas (0.9, 0.99) and decay 0.1 on the 2-D parameters only (nanoGPT's
configure_optimizers); gradients clipped to norm 1; a 100-step linear warm-up, then a cosine down
to 1e-4 at lr_decay_iters = max_iters. The model is nanoGPT's (tui/pytorch/bench.py's TorchGPT);
the batches nanoGPT's get_batch (12 windows of 65 characters at random offsets of the training
text). One thread (torch.set_num_threads(1), and one BLAS thread through threadpoolctl).

Fitted to the time: the budget is --seconds of CPU time of the training steps alone (batches,
forward, backward, clipping, the optimizer; time.process_time). The steps that fit it are
estimated from the speed of steps 10..59 (the first ten warm the process up), and that estimate
becomes max_iters = lr_decay_iters, so the cosine ends where the budget does. Training stops at
max_iters or when the budget is spent, whichever comes first (`stopped_by`).

The text is split as lstm-tui splits it (core.corpus.load: the last 10% validates; nanoGPT's
prepare.py puts its cut within a character of the same place), so the scores below are those
`lstm-tui eval` gives a model on the same validation part: every one of its len(val) - 1 targets
scored exactly once, mean nats per character.

- `cold`: nanoGPT's estimate_loss made exhaustive and deterministic. The validation ids are cut
  into consecutive blocks of 64 (x = val[64k : 64k+64], y = val[64k+1 : 64k+65], the last block
  shorter), each read from a blank context. `cold_by_position[t]` is the mean loss at position t
  of the blocks (the context a prediction had is t + 1 characters); `cold_first8` the mean of
  positions 0..7, `cold_pos63` position 63's.
- `one_pass`: the sliding-window one-pass score of core.evaluate for the GPT: windows of the block
  sliding by half a block (core.models.gpt.context_windows), each a blank context, keeping the
  predictions that generation makes, so that every position after the first block has between 32
  and 64 characters of context.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/nanogpt_baseline.py \\
        tinyshakespeare.txt --seconds 600 --json benchmarks/results/nanogpt_baseline.json

Prints one JSON line (the text's path recorded by its file name). Needs the torch extra.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gpt_recipe import NANOGPT_CPU, NanoBatches  # noqa: E402  (nanoGPT's recipe and get_batch)

from core import corpus as corpus_io  # noqa: E402
from core.models.gpt import context_windows  # noqa: E402
from tui.pytorch.bench import TorchGPT, nanogpt_adamw  # noqa: E402

R = NANOGPT_CPU
MIN_LR = R["lr"] * R["min_lr"]  # 1e-4: nanoGPT's min_lr = learning_rate / 10
SETTLE = 10  # steps that warm the process up before the speed is measured
MEASURE = 50  # steps whose speed sets max_iters


def get_lr(it: int, max_iters: int) -> float:
    """nanoGPT's get_lr: linear warm-up, then a cosine from lr to min_lr over lr_decay_iters = max_iters."""
    warmup, lr = R["warmup"], R["lr"]
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > max_iters:
        return MIN_LR
    ratio = (it - warmup) / max(1, max_iters - warmup)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - MIN_LR)


@torch.inference_mode()
def losses(net: TorchGPT, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-position losses (W, T) in nats of targets y (W, T) after ids x (W, T), each row a blank context."""
    logits = net(torch.from_numpy(x.astype(np.int64)))  # (W, T, V)
    V = logits.shape[-1]
    out = F.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y.astype(np.int64)).reshape(-1), reduction="none")
    return out.view(x.shape).double().numpy()


def cold_score(net: TorchGPT, val: np.ndarray, block: int, group: int = 256) -> dict[str, Any]:
    """The validation text in consecutive blocks, each from a blank context: its mean loss, and the mean
    at each position of the blocks."""
    n = len(val) - 1  # targets
    full = n // block
    total = np.zeros(block)  # (T,) summed loss at each position
    count = np.zeros(block, np.int64)  # (T,) positions scored there
    for k in range(0, full, group):
        starts = np.arange(k, min(full, k + group)) * block  # (W,)
        pos = starts[:, None] + np.arange(block)[None, :]  # (W, T)
        ell = losses(net, val[pos], val[pos + 1])
        total += ell.sum(axis=0)
        count += len(starts)
    tail = n - full * block
    if tail:
        start = full * block
        ell = losses(net, val[None, start : start + tail], val[None, start + 1 : start + tail + 1])
        total[:tail] += ell[0]
        count[:tail] += 1
    assert count.sum() == n
    by_position = total / count
    return {
        "cold": float(total.sum() / n),
        "cold_first8": float(total[:8].sum() / count[:8].sum()),
        "cold_pos63": float(by_position[63]),
        "cold_by_position": [round(float(v), 4) for v in by_position],
        "cold_blocks": int(full + (tail > 0)),
    }


def one_pass_score(net: TorchGPT, val: np.ndarray, block: int, group: int = 256) -> float:
    """The validation text read in context_windows (the block, sliding by half a block), each from a
    blank context, keeping each position's prediction once: the mean loss."""
    n = len(val) - 1
    plan = context_windows(n, block)
    total, scored = 0.0, 0
    for i in range(0, len(plan), group):
        part = plan[i : i + group]
        for T in sorted({stop - start for start, stop, _ in part}):
            same = [w for w in part if w[1] - w[0] == T]
            starts = np.array([w[0] for w in same])  # (W,)
            skip = np.array([w[2] - w[0] for w in same])  # (W,) predictions before `first` are kept elsewhere
            pos = starts[:, None] + np.arange(T)[None, :]  # (W, T)
            ell = losses(net, val[pos], val[pos + 1])
            keep = np.arange(T)[None, :] >= skip[:, None]
            total += float(ell[keep].sum())
            scored += int(keep.sum())
    assert scored == n
    return total / n


def train(net: TorchGPT, batches: NanoBatches, seconds: float) -> dict[str, Any]:
    """nanoGPT's training loop for `seconds` of CPU time, its schedule fitted to that time."""
    opt = nanogpt_adamw(net, R["lr"], R["weight_decay"], R["beta2"])
    cpu = 0.0  # CPU seconds of the training steps
    wall0 = time.perf_counter()
    max_iters = 0  # unknown until the speed is measured: the warm-up does not depend on it
    speed_from = per_step = 0.0
    curve: list[list[float]] = []  # [step, cpu seconds, mean training loss of the last 100 steps]
    recent: list[float] = []
    it = 0
    stopped_by = "budget"
    while True:
        if it == SETTLE:
            speed_from = cpu
        if it == SETTLE + MEASURE:
            per_step = (cpu - speed_from) / MEASURE
            max_iters = it + int((seconds - cpu) / per_step)
        if max_iters and it >= max_iters:
            stopped_by = "max_iters"
            break
        if cpu >= seconds:
            break
        t0 = time.process_time()
        lr = get_lr(it, max_iters or 10**9)
        for group in opt.param_groups:
            group["lr"] = lr
        window = batches.next()  # (T, B) ids
        x = torch.from_numpy(np.ascontiguousarray(window.x.T).astype(np.int64))  # (B, T)
        y = torch.from_numpy(np.ascontiguousarray(window.y.T).astype(np.int64))
        logits = net(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), R["clip"])
        opt.step()
        recent.append(loss.item())
        cpu += time.process_time() - t0
        it += 1
        if it % 100 == 0:
            curve.append([it, round(cpu, 1), round(sum(recent) / len(recent), 4)])
            recent = []
    return {
        "steps": it,
        "max_iters": max_iters,
        "stopped_by": stopped_by,
        "estimated_step_ms": round(1000 * per_step, 2) if max_iters else None,
        "final_lr": get_lr(it - 1, max_iters or 10**9),
        "cpu_seconds": round(cpu, 2),
        "wall_seconds": round(time.perf_counter() - wall0, 2),
        "train_curve": curve,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--seconds", type=float, default=600.0, help="CPU seconds of training (default 600)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="write the result here too")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    text = corpus_io.load(a.text)
    block, B = R["block"], R["batch"]
    torch.manual_seed(a.seed)
    net = TorchGPT(text.vocab.size, R["hidden"], R["layers"], R["heads"], block, bias=R["bias"])
    batches = NanoBatches(text.train_ids, B, block, a.seed)
    with threadpool_limits(limits=1, user_api="blas"):
        net.train()
        run = train(net, batches, a.seconds)
        net.eval()
        t0 = time.process_time()
        cold = cold_score(net, text.val_ids, block)
        one_pass = one_pass_score(net, text.val_ids, block)
        eval_cpu = time.process_time() - t0
    argv = [Path(a.text).name if arg == a.text else arg for arg in sys.argv[1:]]
    result = {
        "benchmark": "nanogpt_baseline",
        "text": Path(a.text).name,
        "split": {"train": int(text.n_train), "val": len(text.val_ids), "note": text.note},
        "recipe": R,
        "seed": a.seed,
        "budget_cpu_seconds": a.seconds,
        **{k: v for k, v in run.items() if k != "train_curve"},
        "chars_per_cpu_second": round(run["steps"] * B * block / run["cpu_seconds"]),
        "chars_per_wall_second": round(run["steps"] * B * block / run["wall_seconds"]),
        "epochs": round(run["steps"] * B * block / len(text.train_ids), 3),
        "cold": round(cold["cold"], 4),
        "cold_first8": round(cold["cold_first8"], 4),
        "cold_pos63": round(cold["cold_pos63"], 4),
        "one_pass": round(one_pass, 4),
        "cold_blocks": cold["cold_blocks"],
        "cold_by_position": cold["cold_by_position"],
        "eval_cpu_seconds": round(eval_cpu, 1),
        "train_curve": run["train_curve"],
        "threads": {"torch": torch.get_num_threads(), "blas": 1},
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "command": "python benchmarks/nanogpt_baseline.py " + " ".join(argv),
    }
    assert math.isfinite(result["cold"]) and math.isfinite(result["one_pass"])
    line = json.dumps(result)
    print(line, flush=True)
    if a.json:
        Path(a.json).write_text(line + "\n")


if __name__ == "__main__":
    main()
