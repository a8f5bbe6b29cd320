"""`lstm-tui race`: one model per cell (LSTM, GRU, RNN, GPT) on the same text, trained in turn.

Each model gets the settings fitted for it (core.recipe, as `train` would choose them for that
model: a GPT its own size, optimizer and schedule), around the options given, which apply to every
model; all get the same seed. Each is saved to its own checkpoint, named after its cell. The models
share the one training thread fairly in wall time (core.race): the one that has had the least time
goes next, so a cheap cell takes more steps in the same seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import core
from core.engine import NumpyEngineFactory
from core.models import MODELS
from core.race import Race, race_checkpoint
from core.trainer import TrainConfig

from ..plain import threads
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Progress,
    check_writable,
    choose_recipe,
    choose_threads,
    clock,
    config_overrides,
    emit,
    eval_record,
    file_notes,
    folder_note,
    install_stop_handlers,
    interface,
    load_corpus,
    optimizer_text,
    restore_handlers,
    run_interface,
    score,
)
from .options import PROG, Parser, UsageError, add_thread_options, add_training_options, add_version, new_parser

DEFAULT_CELLS = tuple(MODELS)


def cells_list(text: str) -> list[str]:
    """--cells: a comma-separated list of distinct cells, e.g. lstm,gru,rnn."""
    cells = [c.strip().lower() for c in text.split(",") if c.strip()]
    if not cells:
        raise argparse.ArgumentTypeError(f"expected cells such as lstm,gru,rnn, got {text!r}")
    unknown = [c for c in cells if c not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown cell {unknown[0]!r}; choose from {', '.join(MODELS)}")
    if len(set(cells)) != len(cells):
        raise argparse.ArgumentTypeError(f"each cell may race once, got {text!r}")
    return cells


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} race",
        usage=f"{PROG} race [CORPUS] [--cells lstm,gru,rnn,gpt] [options]",
        description="Train one model per cell on the same text, each with the settings fitted for it (the\n"
        "options given apply to all) and the same seed, and watch them learn side by side: the loss\n"
        "curves overlaid, a stats line, the predictions and generated text of each. The models take\n"
        "turns in one training thread, the one that has had the least time going next, so each gets\n"
        "the same share of the machine: a fair race in wall time. Each model is saved to its own\n"
        "checkpoint, named after its cell (hamlet.lstm.npz, hamlet.gpt.npz, ...), when the race ends\n"
        "or on ctrl+s.",
        epilog="examples:\n"
        "  lstm-tui race                                  every model on the soliloquy\n"
        "  lstm-tui race book.txt --cells lstm,gpt --seconds 300\n"
        "  lstm-tui race --cells lstm,gru,rnn --steps 100 --json > race.jsonl\n"
        "  lstm-tui race book.txt --cells lstm,rnn --hidden 128 --headless --steps 500\n"
        "  lstm-tui sample hamlet.gru.npz --prime 'to be'\n\n"
        "exit codes: 0 ok, 1 saving failed, 2 bad usage or input, 130 Ctrl+C (models saved),\n"
        "143 SIGTERM (models saved)",
    )
    add_version(p)
    add_training_options(p, race=True)
    add_thread_options(p.add_argument_group("threads"))
    p.set_defaults(command="race")
    p.add_argument(
        "--cells",
        type=cells_list,
        default=list(DEFAULT_CELLS),
        metavar="LIST",
        help=f"the cells to race, comma-separated (default: {','.join(DEFAULT_CELLS)})",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="no interface: one JSON object per evaluation on stdout, as 'train --json' prints, with a "
        '"cell" field and "race_s" (seconds the model has had); the summary goes to stderr',
    )
    out.add_argument(
        "--headless",
        action="store_true",
        help="no interface: a progress line on stderr, then a table of the models' results",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr (with --json or --headless)")
    return p


def build_race(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[Race, str]:
    """The race the command line asks for: one Trainer per cell, each with the settings fitted for it."""
    if args.cell is not None:
        raise UsageError(f"race takes --cells LIST (say --cells {args.cell}), not --cell (see '{PROG} race --help')")
    if args.resume is not None:
        raise UsageError(
            f"race starts fresh models; to continue one of them: {PROG} train --resume {args.resume} "
            f"(see '{PROG} race --help')"
        )
    if (getattr(args, "engine", None) or "numpy") != "numpy" or getattr(args, "device", None) is not None:
        raise UsageError(
            f"race trains with the numpy engine; --engine and --device are for train (see '{PROG} race --help')"
        )
    cells: list[str] = args.cells
    overrides = config_overrides(args)
    # No learning-rate cut unless asked for: it comes per evaluation, and evaluations come per
    # character trained, so a cheaper cell would be cut more often in the same seconds.
    overrides.setdefault("lr_decay", 1.0)
    text, label = load_corpus(args)
    base = Path(args.checkpoint) if args.checkpoint else Path(f"{Path(text.name).stem or 'model'}.npz")
    if base.is_dir() or not base.name:
        raise core.CheckpointError(f"--checkpoint {base} is a directory; give a file name such as {base}/race.npz")
    trainers, factories, notes = [], [], []
    folder = None
    for cell in cells:  # each model sized and trained as `train --cell CELL` would choose, for a fair race
        given = {**overrides, "cell": cell}
        if not MODELS[cell].state_names:  # --init-state is for the recurrent cells (a GPT carries no state)
            given.pop("init_state", None)
        chosen = choose_recipe(text, given)
        notes.append(f"{cell}: {chosen.reason}")
        path = Path(race_checkpoint(str(base), cell))
        folder = folder or folder_note(path, check_writable(path))
        if path.exists():
            notes.append(f"note: {path} exists and will be replaced when the race saves")
        config = TrainConfig(steps=args.steps or 0, seconds=args.seconds or 0.0, **{**chosen.settings, "cell": cell})
        factory = NumpyEngineFactory(1)
        trainer = core.Trainer(text, config, checkpoint=path, controls=core.Controls(), engine=factory)
        notes += file_notes(trainer, checkpoint=False)  # its best file (its checkpoint's note is above)
        trainers.append(trainer)
        factories.append(factory)
    if folder:
        notes.append(folder)
    budget = threads.CALIBRATE_S / len(cells)
    for cell, trainer, factory in zip(cells, trainers, factories, strict=True):  # each cell measures its own
        choose_threads(trainer, args, notes.append, budget_s=budget, who=f"{cell} ", factory=factory)
    for note in notes:  # said once every setting has been checked: bad input stays one line
        say(note)
    return Race(cells, trainers), label


def run(args: argparse.Namespace) -> int:
    """The race: headless (--json, --headless) or in the interface."""
    if args.json or args.headless:
        return run_headless(args)
    return run_app(args)


def racer_lines(race: Race) -> list[str]:
    """Each model's configuration, a line each: its size, windows and optimizer."""
    width = max(len(name) for name in race.names)
    lines = []
    for name, t in race.trainers.items():
        mc = t.model.config
        lines.append(
            f"  {name:<{width}}  {t.model.shape_text(mc)}, {t.model.num_params(mc):,} parameters; "
            f"batch {t.batch} x seq-len {t.seq_len}; {optimizer_text(t)}, clip {t.config.clip:g}"
        )
    return lines


def status_line(race: Race) -> str:
    """One line for all the models: cell, step, smoothed loss."""
    parts = []
    for name, t in race.trainers.items():
        val = f" {score(t.last_eval)}" if t.last_eval else ""
        parts.append(f"{name} {t.step_count:,} {t.smooth_loss:.3f}{val}")
    return "  |  ".join(parts)


def run_headless(args: argparse.Namespace) -> int:
    """Race without the interface: JSON records on stdout, or progress and a table."""
    from ..plain.threads import limit_threads

    progress = Progress(sys.stderr, args.quiet)
    limit_threads()  # for the whole process
    race, label = build_race(args, lambda s: progress.message(f"{PROG}: {s}"))
    first = next(iter(race.trainers.values()))
    cfg = first.config
    if not args.quiet:
        budget = " or ".join(
            ([f"{cfg.steps:,} steps"] if cfg.steps else []) + ([f"{cfg.seconds:g} s"] if cfg.seconds else [])
        )
        progress.message(
            f"race on {label}: {', '.join(race.names)}, seed {cfg.seed}; "
            + (f"{budget} each" if budget else "until Ctrl+C (or --steps N, --seconds S)")
        )
        for line in racer_lines(race):
            progress.message(line)
    old_handlers, seen = install_stop_handlers(race.controls, progress)
    speed = dict.fromkeys(race.names, 0.0)
    json_ok = True
    failed = False
    try:
        for rr in race.run():
            r = rr.report
            if isinstance(r, core.StepReport):
                speed[rr.name] = r.chars_per_s
                progress.update(status_line(race))
            elif isinstance(r, core.EvalReport):
                if args.json and json_ok:
                    record = {"cell": rr.name, **eval_record(r, race.trainers[rr.name], speed[rr.name])}
                    record["race_s"] = round(rr.race_s, 3)
                    json_ok = emit(sys.stdout, json.dumps(record))
                if not progress.live:
                    progress.update(status_line(race))
            elif isinstance(r, core.SaveReport) and r.error:
                progress.message(f"{PROG}: warning: {rr.name}: {r.error}")
            elif isinstance(r, core.DivergedReport):
                progress.message(f"{PROG}: {rr.name} left the race: {r.message}")
        progress.finish()
        for name, trainer in race.trainers.items():  # each model's score where it finished
            last = trainer.last_eval
            if race.finished.get(name) != "diverged" and (last is None or last.step != trainer.step_count):
                r = trainer.evaluate()
                if args.json and json_ok:
                    record = {"cell": name, **eval_record(r, trainer, speed[name])}
                    record["race_s"] = round(race.seconds[name], 3)
                    json_ok = emit(sys.stdout, json.dumps(record))
        saved = {}
        for name, trainer in race.trainers.items():
            try:
                saved[name] = str(trainer.save())
            except core.CheckpointError as e:
                emit(sys.stderr, f"{PROG}: error: {e}; the {name} model was not saved")
                failed = True
    except KeyboardInterrupt:
        progress.clear()
        emit(sys.stderr, f"{PROG}: interrupted; the models were not saved")
        return EXIT_INTERRUPTED
    finally:
        restore_handlers(old_handlers)
    emit(sys.stderr if args.json else sys.stdout, "\n".join(summary_table(race, saved)))
    if failed:
        return EXIT_FAILED
    if seen:
        return 128 + seen[0]
    return EXIT_OK


def summary_table(race: Race, saved: dict[str, str]) -> list[str]:
    """The result of each model: steps, time, losses, accuracy and where it went."""
    lines = [f"{'cell':<5} {'steps':>7} {'time':>7} {'train':>6} {'val':>6} {'bits/ch':>7} {'acc':>5}  saved to"]
    for name, t in race.trainers.items():
        ev = t.last_eval
        val = f"{ev.val_loss:6.3f}" if ev else "     -"
        bits = f"{ev.evaluation.bits_per_char:7.3f}" if ev else "      -"
        acc = f"{ev.accuracy:5.0%}" if ev else "    -"
        why = race.finished.get(name, "")
        note = " (diverged)" if why == "diverged" else ""
        lines.append(
            f"{name:<5} {t.step_count:>7,} {seconds(race.seconds[name]):>7} {t.smooth_loss:6.3f} {val} {bits} {acc}  "
            f"{saved.get(name, 'not saved')}{note}"
        )
    where = "held-out validation text" if first_split(race) else "training text (no validation split)"
    lines.append(f"val: loss on the {where}, nats/char; time: each model's share of the machine")
    return lines


def seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 600 else clock(s)


def first_split(race: Race) -> bool:
    return next(iter(race.trainers.values())).corpus.split


def run_app(args: argparse.Namespace) -> int:
    """Open the race screen; save every model on quit; print where they went."""
    notes: list[str] = []
    race, label = build_race(args, notes.append)
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise core.LstmTuiError(f"the race screen needs a terminal; without one use '{PROG} race --headless' or --json")
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    race_app = interface("tui.apps.race", "RaceApp", f"; '{PROG} race --headless' races without it")
    app = race_app(race, corpus_label=label, notes=notes)
    code = run_interface(app)
    saved = getattr(app, "saved_paths", None) or {}
    for name in race.names:
        where = saved.get(name)
        print(f"{name} model saved to {where}" if where else f"{PROG}: the {name} model was not saved", file=sys.stderr)
    return code
