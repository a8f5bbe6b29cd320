"""The recipe sweep: several `lstm-tui train` settings, each given the same CPU time, two at a time.

recipe_study.py runs one setting against PyTorch in wall time. This script compares our own
candidate settings with each other, more cheaply: each run is `lstm-tui train TEXT --json
[OPTIONS]` as a user runs it (one BLAS thread, this machine's two OpenBLAS overrides unset) and
is stopped with SIGINT when its process has used SECONDS of CPU time, so that runs sharing the
machine, or a busy machine, do not shortchange one of them. On a 2-core machine run two
settings at a time (the default); more would share cores and distort nothing but the wall time.

Each setting is LABEL=OPTIONS, for example:

    python benchmarks/recipe_sweep.py TEXT --seconds 600 "defaults=" "lr 0.01=--lr 0.01"

Prints, and appends to --out, one JSON line per setting: the best validation loss the run
reported (the whole validation part, scored honestly; the final weights are scored when it
stops), the number of evaluations, the epochs trained and the curve of evaluations.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import checkpoint as ckpt_io  # noqa: E402


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process `pid` (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(text: str, options: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["OPENBLAS_NUM_THREADS"] = "1"
    work = Path(tempfile.mkdtemp(prefix="recipe-sweep-"))
    cmd = [sys.executable, "-m", "tui", "train", text, "--checkpoint", str(work / "m.npz"), "--json"]
    with open(work / "out.jsonl", "wb") as out, open(work / "err.txt", "wb") as err:
        proc = subprocess.Popen([*cmd, *shlex.split(options)], env=env, cwd=ROOT, stdout=out, stderr=err)
    return proc, work


def result(label: str, options: str, work: Path, seconds: float) -> dict:
    records = [json.loads(line) for line in (work / "out.jsonl").read_text().splitlines() if line.startswith("{")]
    evals = [r for r in records if r.get("val_loss") is not None]
    best_file = work / "m.best.npz"
    best = ckpt_io.load(best_file).meta.get("best_val") if best_file.exists() else None
    chose = next((line for line in (work / "err.txt").read_text().splitlines() if "chose" in line), "")
    return {
        "label": label,
        "options": options or "(none)",
        "cpu_seconds": seconds,
        "best_val": round(best, 4) if best is not None else None,
        "evals": len(evals),
        "epochs": round(records[-1]["epoch"], 2) if records else None,
        "curve": [(round(r["epoch"], 2), round(r["val_loss"], 4)) for r in evals],
        "chose": chose,
    }


def runs(text: str, settings: list[str], seconds: float, parallel: int, prefix: str = ""):
    """Run each LABEL=OPTIONS setting (OPTIONS after `prefix`), `parallel` at a time, each stopped
    with SIGINT once its process has used `seconds` of CPU time; yield (label, options, work folder)
    as each one ends."""
    todo = [s.partition("=")[::2] for s in settings]
    running: list[tuple[str, str, subprocess.Popen[bytes], Path]] = []
    while todo or running:
        while todo and len(running) < parallel:
            label, options = todo.pop(0)
            options = f"{prefix} {options}".strip()
            running.append((label, options, *start(text, options)))
        time.sleep(1)
        for run in list(running):
            label, options, proc, work = run
            used = cpu_seconds(proc.pid)
            if proc.poll() is None and used is not None and used < seconds:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # saves, scores the final weights, exits 130
            proc.wait()
            running.remove(run)
            yield label, options, work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text")
    ap.add_argument("settings", nargs="+", metavar="LABEL=OPTIONS")
    ap.add_argument("--seconds", type=float, default=600, help="CPU seconds per run (default: 600)")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (default: 2, one per core here)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recipe_sweep.jsonl"))
    a = ap.parse_args()
    for label, options, work in runs(a.text, a.settings, a.seconds, a.parallel):
        line = json.dumps(result(label, options, work, a.seconds))
        print(line, flush=True)
        with open(a.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
