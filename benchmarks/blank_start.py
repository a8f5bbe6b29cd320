"""How training reads the text, measured the way users use the model: one pass and from a blank state.

Each candidate is `lstm-tui train TEXT --threads 1 [OPTIONS]` as a user runs it (one BLAS thread,
this machine's two OpenBLAS overrides unset), stopped with SIGINT once its process has used SECONDS
of CPU time (benchmarks/recipe_sweep.py: two runs at a time on a 2-core machine, neither
shortchanged). Its best-model file is then measured in this process:

- one_pass: the whole validation part read as one sequence from a fresh state (core.evaluate);
- cold: the whole validation part in consecutive 64-character blocks, each from a blank state
  (nanoGPT's shakespeare_char score over every block); cold_first8 and cold_pos63 are its loss at
  a block's first 8 positions and at its last: the warm-up from a blank state;
- greedy: 200 characters continued greedily (temperature 0) from typical seeds of the text (speaker
  names, common words, single capitals, and nothing at all) and how many of them fall into a run of
  5 or more identical characters other than a space (`degenerate`), with the first few shown.

The candidates (LABEL=OPTIONS; the default is the recipe's choice for a text this long):

    carried         --windows carried: streams carry their state; blank only at the start and a wrap
    reset-0.1       --reset-prob 0.1: carried, each window starts blank with chance 0.1
    random          --windows random: every window at a random place, from a blank state

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE nice -n 10 python benchmarks/blank_start.py \\
        tinyshakespeare.txt --seconds 600 --out benchmarks/results/blank_start.jsonl \\
        "carried=--windows carried" "reset-0.1=--reset-prob 0.1" "random=--windows random"

Prints, and appends to --out, one JSON line per candidate.

With --short, the same question on the bundled soliloquy (a short text has no validation part, so
both scores read the whole text): for each --reset-prob in 0 and 0.1 and seeds 0-4, the steps until
the one-pass loss is under 0.1 (what `lstm-tui bench` times against the notebook) and both scores
after 300 steps, one BLAS thread, in this process:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/blank_start.py --short \
        --out benchmarks/results/blank_start.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recipe_sweep import result, runs  # noqa: E402

from core import corpus as corpus_io  # noqa: E402
from core.checkpoint import load as load_checkpoint  # noqa: E402
from core.evaluate import evaluate  # noqa: E402
from core.sampling import generate, prime_for  # noqa: E402

CAPITALS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
WORDS = ["ROMEO:", "JULIET:", "KING", "KING RICHARD III:", "First Citizen:", "MENENIUS:", "the ", "And ", "What "]
GREEDY_CHARS = 200
RUN = 5  # a run of this many identical non-space characters is a degenerate continuation


def longest_run(text: str) -> tuple[str, int]:
    """The longest run of one repeated character other than a space: (character, length)."""
    best, cur, prev = ("", 0), 0, ""
    for ch in text:
        cur = cur + 1 if ch == prev else 1
        prev = ch
        if ch != " " and cur > best[1]:
            best = (ch, cur)
    return best


def greedy(model, vocab, seeds: list[str]) -> dict:
    """Greedy continuations of `seeds` (those the vocabulary can spell)."""
    out, bad = [], []
    for seed in seeds:
        ids, skipped = vocab.encode_known(seed)
        if skipped:
            continue
        rng = np.random.default_rng(0)
        text = vocab.decode(list(generate(model, prime_for(vocab, ids), GREEDY_CHARS, rng, temperature=0.0)))
        ch, n = longest_run(text)
        out.append(seed)
        if n >= RUN:
            bad.append({"seed": seed, "run": ch * n, "text": text[:80]})
    return {"seeds": len(out), "degenerate": len(bad), "examples": bad[:5]}


def measure(best_file: Path, text: corpus_io.Corpus) -> dict:
    ck = load_checkpoint(best_file)
    with threadpool_limits(1):
        ev = evaluate(ck.model, text.val_ids, ck.vocab, cold=True)
        cold = ev.cold
        assert cold is not None and cold.by_position is not None
        at = cold.by_position
        g = greedy(ck.model, ck.vocab, WORDS + CAPITALS + [""])
    return {
        "one_pass": round(ev.loss, 4),
        "cold": round(cold.loss, 4),
        "cold_first8": round(float(at[:8].mean()), 4),
        "cold_pos63": round(float(at[-1]), 4),
        "greedy": g,
    }


def short_text(out: str | None) -> None:
    """Random resets on the soliloquy: how fast it is learned, and how it then reads from blank."""
    from core.config import TrainConfig
    from core.trainer import Trainer

    c = corpus_io.load(corpus_io.bundled_path())
    for p in (0.0, 0.1):
        steps, one, cold = [], [], []
        for seed in range(5):
            with threadpool_limits(1):
                t = Trainer(c, TrainConfig(eval_every=0, seed=seed, reset_prob=p))
                reached = None
                for s in range(1, 301):
                    t.train_step()
                    if reached is None and s % 5 == 0 and evaluate(t.model, c.ids, c.vocab).loss < 0.1:
                        reached = s
                ev = evaluate(t.model, c.ids, c.vocab, cold=True)
            steps.append(reached)
            one.append(round(ev.loss, 4))
            cold.append(round(ev.cold.loss, 4) if ev.cold is not None else None)
        line = json.dumps(
            {"label": f"soliloquy reset-prob {p:g}", "steps_to_0.1": steps, "one_pass_at_300": one, "cold_at_300": cold}
        )
        print(line, flush=True)
        if out:
            with open(out, "a") as f:
                f.write(line + "\n")


def main() -> None:
    if "--short" in sys.argv:
        out = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
        short_text(out)
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("settings", nargs="+", metavar="LABEL=OPTIONS")
    ap.add_argument("--seconds", type=float, default=600, help="CPU seconds per run (default: 600)")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (default: 2, one per core here)")
    ap.add_argument("--out", help="append the JSON lines here too")
    a = ap.parse_args()
    text = corpus_io.load(a.text)
    for label, options, work in runs(a.text, a.settings, a.seconds, a.parallel, prefix="--threads 1"):
        record = result(label, options, work, a.seconds)
        best = work / "m.best.npz"
        if best.exists():
            record.update(measure(best, text))
        line = json.dumps(record)
        print(line, flush=True)
        if a.out:
            with open(a.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
