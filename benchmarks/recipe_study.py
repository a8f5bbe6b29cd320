"""Side by side against PyTorch on a real text: how much each learns in the same wall time.

One run of this script is one pair, started together on this 2-core machine:

- ours: `lstm-tui train TEXT [OURS...]` as a user runs it (one BLAS thread; this machine's two
  OpenBLAS overrides unset), stopped with Ctrl+C (SIGINT) after SECONDS, which saves;
- PyTorch: the classic char-rnn / torch-rnn recipe (2x256 nn.LSTM, B=32, T=100, Adam 2e-3,
  clip 5; --torch-dropout on every layer's output as char-rnn does), one thread. It is scored
  on the whole validation part every --torch-eval-every seconds of its own training time,
  with the scoring time not counted against it, and keeps its best.

Then our best-model file (`.best.npz`) is loaded into nn.LSTM + nn.Linear (the export's mapping,
tui/pytorch/weights.py) and PyTorch scores it on the whole validation part (the last tenth), read
as one sequence from a zero state: the number compared is PyTorch's own. What lstm-tui itself
reported for that model is printed beside it.

    python benchmarks/recipe_study.py TEXT --seconds 600 --label defaults
    python benchmarks/recipe_study.py TEXT --seconds 600 --label 2x256 -- --hidden 256 --layers 2
    python benchmarks/recipe_study.py TEXT --seconds 600 --label dropout --torch-dropout 0.3 -- \\
        --hidden 256 --layers 2 --dropout 0.3

Needs the torch extra. Prints one JSON line and a Markdown table row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from core import checkpoint as ckpt_io  # noqa: E402
from core import corpus as corpus_io  # noqa: E402
from core.batches import Batches  # noqa: E402


class TorchCharRNN(nn.Module):
    """The textbook PyTorch model: one-hot input, nn.LSTM, dropout on the top output, nn.Linear."""

    def __init__(self, vocab: int, hidden: int, layers: int, dropout: float = 0.0):
        super().__init__()
        self.vocab = vocab
        self.lstm = nn.LSTM(vocab, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.readout = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(F.one_hot(x, self.vocab).float(), state)
        return self.readout(self.drop(out)), state


@torch.inference_mode()
def torch_score(model: TorchCharRNN, ids: np.ndarray) -> float:
    """Mean nats per character of `ids` (n+1,) read as one sequence from a zero state."""
    was = model.training
    model.eval()
    x = torch.from_numpy(ids[:-1].astype(np.int64)).view(-1, 1)
    y = torch.from_numpy(ids[1:].astype(np.int64))
    logits, _ = model(x)
    model.train(was)
    return float(F.cross_entropy(logits.view(-1, model.vocab), y))


def score_ours_in_torch(path: Path, val_ids: np.ndarray) -> tuple[float, dict]:
    ck = ckpt_io.load(path)
    cfg = ck.model.config
    model = TorchCharRNN(cfg.vocab_size, cfg.hidden, cfg.layers)
    tensors = type(ck.model).to_torch(ck.model.params, cfg)
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
    model.load_state_dict(state, strict=True)
    return torch_score(model, val_ids), ck.meta


def run_torch(text: str, seconds: float, dropout: float, eval_every: float, out: Path) -> None:
    """The PyTorch side, in its own process: train for `seconds` of training time; best whole-val score."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    c = corpus_io.load(text)
    model = TorchCharRNN(c.vocab.size, 256, 2, dropout)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = Batches(c.train_ids, 32, 100)
    state = None
    trained, next_eval, best, curve = 0.0, eval_every, math.inf, []
    while trained < seconds:
        t0 = time.perf_counter()
        w = batches.next()
        if state is not None and 0 in w.resets:
            for s in state:
                s[:, torch.from_numpy(w.resets[0])] = 0.0
        logits, state = model(torch.from_numpy(w.x.astype(np.int64)), state)
        loss = F.cross_entropy(logits.view(-1, c.vocab.size), torch.from_numpy(w.y.astype(np.int64)).view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        state = tuple(s.detach() for s in state)
        trained += time.perf_counter() - t0
        if trained >= next_eval or trained >= seconds:
            next_eval += eval_every
            val = torch_score(model, c.val_ids)
            best = min(best, val)
            curve.append((round(trained, 1), round(val, 4)))
    out.write_text(json.dumps({"best": best, "curve": curve, "epochs": batches.epoch}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--label", default="")
    ap.add_argument("--torch-dropout", type=float, default=0.0)
    ap.add_argument("--torch-eval-every", type=float, default=30.0)
    ap.add_argument("--torch-side", metavar="OUT", help=argparse.SUPPRESS)  # internal: run the PyTorch side
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    ours = argv[cut + 1 :]  # options for lstm-tui train, after --
    if a.torch_side:
        run_torch(a.text, a.seconds, a.torch_dropout, a.torch_eval_every, Path(a.torch_side))
        return
    work = Path(tempfile.mkdtemp(prefix="recipe-study-"))
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OPENBLAS_NUM_THREADS"] = "1"
    torch_out = work / "torch.json"
    torch_proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            a.text,
            "--seconds",
            str(a.seconds),
            "--torch-dropout",
            str(a.torch_dropout),
            "--torch-eval-every",
            str(a.torch_eval_every),
            "--torch-side",
            str(torch_out),
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    ckpt = work / "ours.npz"
    cmd = [sys.executable, "-m", "tui", "train", a.text, "--checkpoint", str(ckpt), "--json", *ours]
    ours_proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    try:
        ours_proc.wait(timeout=a.seconds)
    except subprocess.TimeoutExpired:
        ours_proc.send_signal(signal.SIGINT)  # saves, then exits 130
    stdout, stderr = ours_proc.communicate()
    wall = time.monotonic() - t0
    torch_proc.wait()
    records = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    chose = next((line for line in stderr.splitlines() if "chose" in line), "")
    c = corpus_io.load(a.text)
    best_file = ckpt.with_name("ours.best.npz")
    ours_torch, meta = score_ours_in_torch(best_file, c.val_ids)
    t = json.loads(torch_out.read_text())
    result = {
        "label": a.label,
        "ours_args": " ".join(ours) or "(none)",
        "seconds": a.seconds,
        "ours_wall_s": round(wall, 1),
        "ours_best_scored_by_torch": round(ours_torch, 4),
        "ours_best_reported": round(float(meta.get("best_val") or math.nan), 4),
        "ours_best_step": meta.get("step"),
        "ours_epochs": round(records[-1]["epoch"], 2) if records else None,
        "ours_evals": len(records),
        "ours_model": f"{meta['train']['layers']}x{meta['train']['hidden']} B={meta['train']['batch']} "
        f"T={meta['train']['seq_len']} lr={meta['train']['lr']:g} avg={meta['train'].get('average', 0)}",
        "torch_best": round(t["best"], 4),
        "torch_epochs": round(t["epochs"], 2),
        "torch_dropout": a.torch_dropout,
        "difference": round(ours_torch - t["best"], 4),
        "ours_curve": [(r["elapsed_s"], r["val_loss"]) for r in records],
        "torch_curve": t["curve"],
        "chose": chose,
    }
    print(json.dumps(result))
    print(
        f"| {a.label} | {result['ours_model']} | {ours_torch:.3f} | {result['ours_best_reported']:.3f} | "
        f"{t['best']:.3f} | {result['difference']:+.3f} |"
    )


if __name__ == "__main__":
    main()
