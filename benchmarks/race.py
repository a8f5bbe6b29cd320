"""Race the models and report loss against steps AND against seconds (they cost different amounts
per step, and the race gives each the same share of the machine).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/race.py --steps 600 --eval-every 25
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/race.py tinyshakespeare.txt \\
        --seconds 75 --hidden 128 --eval-every 100 --eval-chars 20000 --lr-decay 1

Takes `lstm-tui race`'s options and builds the race with the same code (tui.commands.race.build_race,
each model with its own fitted settings, one BLAS thread as `race --headless` runs). With `--seconds S`
each model trains for S seconds (a GPT's cosine spans them) and the report stops once every model has
had S seconds of the race's clock, training and evaluation: an equal time for each. It writes nothing
but the report: a table of validation loss at the evaluation steps, a table at equal seconds, and a
text figure of validation loss against seconds. Checkpoints go to a temporary folder.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import tempfile
from collections import defaultdict

import numpy as np
from threadpoolctl import threadpool_limits

import core
from tui.commands.race import build_parser, build_race, racer_lines

MARKS = {"lstm": "L", "gru": "G", "rnn": "R", "gpt": "T"}


def main(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1, user_api="blas"):
        if args.checkpoint is None:
            args.checkpoint = os.path.join(tmp, "race.npz")
        notes: list[str] = []
        race, label = build_race(args, notes.append)
        # step, s, val (one pass), acc, cold (64-character blocks each from a blank state)
        evals: dict[str, list[tuple[int, float, float, float, float]]] = defaultdict(list)
        train: dict[str, list[tuple[int, float, float]]] = defaultdict(list)  # step, s, smoothed loss
        for rr in race.run():
            r = rr.report
            if isinstance(r, core.StepReport):
                train[rr.name].append((r.step, rr.race_s, r.smooth_loss))
                if args.seconds and min(race.seconds.values()) >= args.seconds:
                    race.controls.stop()  # an equal time for every model
            elif isinstance(r, core.EvalReport):
                cold = r.cold_loss if r.cold_loss is not None else math.nan
                evals[rr.name].append((r.step, rr.race_s, r.val_loss, r.accuracy, cold))
    first = next(iter(race.trainers.values()))
    mc = first.model.config
    print("$ python benchmarks/race.py " + " ".join(argv))
    print(f"race on {label}: {first.corpus.size:,} characters, V={first.corpus.vocab.size}")
    print("\n".join(racer_lines(race)))
    print("\n".join(notes))  # what was chosen for each model and why, threads included
    print(
        f"lr decay {first.config.lr_decay:g}, seed {first.config.seed}; evaluation: "
        + ("held-out validation text" if first.corpus.split else "the whole text (too short to split)")
        + (f", first {first.config.eval_chars:,} characters" if first.config.eval_chars else "")
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, 1 BLAS thread, {os.cpu_count()} CPUs "
        f"(load average at the end {load}: the machine is shared, so the seconds are noisy)"
    )
    print("time: each model's own share of the machine (training and evaluation), the clock the race schedules by\n")
    names = race.names
    print("## per model")
    print(
        f"{'cell':<5} {'params':>8} {'steps':>6} {'seconds':>8} {'ms/step':>8} {'final val':>9} {'cold':>6} {'acc':>5}"
    )
    for n in names:
        t = race.trainers[n]
        last = evals[n][-1]
        ms = 1000 * race.seconds[n] / max(1, t.step_count)
        print(
            f"{n:<5} {t.model.num_params(t.model.config):>8,} {t.step_count:>6,} {race.seconds[n]:>8.1f} {ms:>8.1f} "
            f"{last[2]:>9.3f} {last[4]:>6.3f} {last[3]:>5.0%}"
        )
    print("\n## validation loss (nats/char) against steps")
    steps = sorted({s for n in names for s, *_ in evals[n]})
    lasts = {evals[n][-1][0] for n in names}
    every = max(1, len(steps) // 24)  # at most about 24 rows, and each model's last evaluation
    steps = [s for i, s in enumerate(steps) if i % every == 0 or s in lasts]
    print(f"{'step':>6} " + " ".join(f"{n:>7}" for n in names))
    for s in steps:
        cells = []
        for n in names:
            at = [v for st, _, v, *_ in evals[n] if st == s]
            cells.append(f"{at[0]:>7.3f}" if at else f"{'':>7}")
        print(f"{s:>6} " + " ".join(cells))
    horizon = min(race.seconds[n] for n in names)  # every model was still racing until then
    print(f"\n## against seconds (up to {horizon:.1f} s, while every model still raced)")
    print(
        "at each time: each model's step, smoothed training loss, and its latest validation loss "
        "(one pass, and cold start)"
    )
    print(f"{'seconds':>7} " + " ".join(f"{n + ' step':>10} {'train':>6} {'val':>6} {'cold':>6}" for n in names))
    for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
        t = frac * horizon
        row = []
        for n in names:
            done = [x for x in train[n] if x[1] <= t]
            step, _, loss = done[-1] if done else (0, 0.0, math.log(first.corpus.vocab.size))
            vals = [(v, c) for _, s, v, _, c in evals[n] if s <= t]
            row.append(
                f"{step:>10,} {loss:>6.3f} "
                + (f"{vals[-1][0]:>6.3f} {vals[-1][1]:>6.3f}" if vals else f"{'-':>6} {'-':>6}")
            )
        print(f"{t:>7.1f} " + " ".join(row))
    keys = ", ".join(f"{MARKS.get(n, n[0])} {n}" for n in names)
    print(f"\n## validation loss against seconds, while every model raced ({keys})")
    points = {n: [(s, v) for _, s, v, *_ in evals[n]] for n in names}
    print("\n".join(figure(points, math.log(mc.vocab_size), horizon)))


def figure(
    series: dict[str, list[tuple[float, float]]], top: float, x_max: float, width: int = 64, height: int = 14
) -> list[str]:
    """A text plot of loss against seconds up to `x_max`: a letter per evaluation; the y axis is
    logarithmic from the lowest loss (at least 0.001) to `top` (ln V, a uniform guess)."""
    low = max(1e-3, min(v for pts in series.values() for s, v in pts if s <= x_max))
    span = math.log(top / low) or 1.0
    grid = [[" "] * width for _ in range(height)]
    for name, pts in series.items():
        for s, v in pts:
            if s > x_max:
                continue
            col = min(width - 1, int(s / x_max * (width - 1)))
            row = min(height - 1, max(0, round(math.log(top / max(v, low)) / span * (height - 1))))
            grid[row][col] = MARKS.get(name, name[0]) if grid[row][col] == " " else "*"
    lines = []
    for i, cells in enumerate(grid):
        y = top * math.exp(-span * i / (height - 1))
        lines.append(f"{y:6.3f} |" + "".join(cells))
    lines.append("       +" + "-" * width)
    lines.append(f"        0 s{'':>{width - 14}}{x_max:.1f} s")
    lines.append("        (log scale; * = two or more models at the same point)")
    return lines


if __name__ == "__main__":
    main(sys.argv[1:])
