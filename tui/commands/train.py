"""`lstm-tui train`: train without the interface; progress on stderr, a summary and the saved model."""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import TextIO

import core
from core.trainer import best_path

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Progress,
    bar,
    build_trainer,
    clock,
    describe,
    distributed_rank,
    emit,
    eval_record,
    install_stop_handlers,
    restore_handlers,
    summary_lines,
)
from .options import PROG, Parser, add_training_options, add_version, new_parser


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} train",
        usage=f"{PROG} train [CORPUS] [options]",
        description="Train without the interface. Progress goes to stderr (a live line on a terminal,\n"
        "plain periodic lines otherwise); at the end the model is saved and a summary compares the\n"
        "evaluation text with the model's predictions. Ctrl+C or SIGTERM stop training and save.",
        epilog="examples:\n"
        "  lstm-tui train --steps 300\n"
        "  lstm-tui train mybook.txt --hidden 256 --layers 2 --steps 5000 --save-every 500\n"
        "  lstm-tui train --resume hamlet.lstm.npz --steps 200 --lr 3e-3\n"
        "  lstm-tui train --steps 1000 --json > log.jsonl\n"
        "  lstm-tui train book.txt --save-every 200 --log book.lstm.npz.jsonl   # for lstm-tui watch\n\n"
        "exit codes: 0 ok, 1 training diverged (last finite weights saved) or saving failed,\n"
        "2 bad usage or input, 130 Ctrl+C (model saved), 143 SIGTERM (model saved)",
    )
    add_version(p)
    add_training_options(p)
    p.set_defaults(command="train")  # build_trainer words its hints for this command
    out = p.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per evaluation on stdout (step, epoch, elapsed_s, train_loss, "
        "val_loss, accuracy, chars_per_s, ...; losses in nats per character); the summary then goes to stderr",
    )
    out.add_argument(
        "--log",
        metavar="FILE",
        help="append the --json records to FILE too, a line each, flushed as they come; "
        "'lstm-tui watch' reads <checkpoint>.jsonl beside the checkpoint to draw a finer curve",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr, only the result")
    return p


def run(args: argparse.Namespace) -> int:
    """Headless training: progress on stderr, --json lines on stdout, a summary, the saved model."""
    if distributed_rank():  # not rank 0 of a torchrun launch: train in step with it, silently
        return follow(args)
    progress = Progress(sys.stderr, args.quiet)
    notes: list[str] = []
    trainer, label = build_trainer(args, notes.append)
    log = open_log(args.log) if args.log else None  # before any output: a bad path is bad input
    for note in notes:
        progress.message(f"{PROG}: {note}")
    cfg = trainer.config
    out = sys.stdout
    report_to = sys.stderr if args.json else sys.stdout
    if not args.quiet:
        for line in describe(trainer, label):
            progress.message(line)
        budget = f"for {cfg.steps - trainer.step_count:,} steps" if cfg.steps else "until Ctrl+C (or --steps N)"
        progress.message(f"training {budget}; the model is saved to {trainer.checkpoint}")
    old_handlers, seen = install_stop_handlers(trainer.controls, progress)
    chars_per_s = 0.0
    status = ""
    json_ok = True  # False once stdout is gone (say `| head -1`): training goes on and saves
    diverged: core.DivergedReport | None = None
    try:
        for r in trainer.run():
            if isinstance(r, core.StepReport):
                chars_per_s = r.chars_per_s
                head = f"{bar(r.step, cfg.steps)} {r.step:,}/{cfg.steps:,}" if cfg.steps else f"step {r.step:,}"
                last = trainer.last_eval
                val = f"  val {last.val_loss:.3f}  acc {last.accuracy:.0%}" if last else ""
                status = (
                    f"{head}  loss {r.smooth_loss:.3f}{val}  {r.chars_per_s:,.0f} chars/s  "
                    f"{clock(r.elapsed_s)}  epoch {r.epoch:.1f}"
                )
                progress.update(status, force=cfg.steps > 0 and r.step == cfg.steps)
            elif isinstance(r, core.EvalReport):
                if (args.json and json_ok) or log is not None:
                    record = eval_record(r, trainer, chars_per_s)
                    line = json.dumps(record)
                    if args.json and json_ok:
                        json_ok = emit(out, line)
                    if log is not None and not emit(log, line):
                        progress.message(f"{PROG}: warning: cannot write to {args.log} any more; training goes on")
                        close_log(log)
                        log = None
                if not progress.live and status:
                    progress.update(status)
            elif isinstance(r, core.SaveReport):
                if r.error:
                    progress.message(f"{PROG}: warning: {r.error}")
            elif isinstance(r, core.DivergedReport):
                diverged = r
                break
        progress.finish()
        saved = trainer.save()
    except core.CheckpointError as e:
        progress.clear()
        emit(sys.stderr, f"{PROG}: error: {e}; the model was not saved")
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.clear()
        emit(sys.stderr, f"{PROG}: interrupted; the model was not saved")
        return EXIT_INTERRUPTED
    finally:
        restore_handlers(old_handlers)
        close_log(log)
    if diverged is not None:
        emit(
            sys.stderr,
            f"{PROG}: error: training diverged at step {diverged.step} (loss or gradient became non-finite); "
            f"the last finite weights were saved to {saved}; try a lower --lr (now {trainer.optimizer.lr:g})",
        )
        return EXIT_FAILED
    try:
        ev = trainer.last_eval if trainer.last_eval and trainer.last_eval.step == trainer.step_count else None
        if ev is None:
            ev = trainer.evaluate()  # the weights as they ended, scored for the summary...
            if ev.best and ev.on_validation:  # ...and kept if no evaluation during the run beat them
                try:
                    trainer.save(best_path(saved))
                    saved = trainer.save()  # (its record of the best score, too)
                except core.CheckpointError as e:
                    emit(sys.stderr, f"{PROG}: warning: the best weights were not saved: {e}")
        lines = ["", *summary_lines(ev.evaluation, ev.on_validation)]
        took = f"{trainer.step_count:,} steps ({trainer.epoch:.2f} epochs) in {trainer.elapsed_s:.1f} s"
        lines.append(f"Trained {took}; {chars_per_s:,.0f} chars/s.")
        best = best_path(saved)
        if best.exists() and trainer.corpus.split:
            lines.append(f"Best validation weights: {best}")
        emit(report_to, "\n".join(lines))
    except KeyboardInterrupt:
        pass
    finally:
        emit(sys.stderr, f"model saved to {saved}")
    if seen:
        return 128 + seen[0]
    return EXIT_OK


def follow(args: argparse.Namespace) -> int:
    """A rank other than 0 under torchrun: the same run in step with rank 0, which alone evaluates,
    prints and saves. Signals stop it as they stop rank 0 (all ranks stop after the same step)."""
    trainer, _ = build_trainer(args, lambda _note: None)
    old_handlers, seen = install_stop_handlers(trainer.controls, Progress(io.StringIO(), quiet=True))
    try:
        for r in trainer.run():
            if isinstance(r, core.DivergedReport):
                return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        restore_handlers(old_handlers)
    return 128 + seen[0] if seen else EXIT_OK


def open_log(path: str) -> TextIO:
    """The --log file, opened to append (created if missing); a clear error if it cannot be."""
    try:
        return open(path, "a", encoding="utf-8")  # closed by close_log
    except OSError as e:
        raise core.LstmTuiError(f"cannot write the log {path}: {e.strerror or e}") from None


def close_log(log: TextIO | None) -> None:
    """Close the log if open (ignoring a failure: the records already written were flushed)."""
    if log is not None:
        try:
            log.close()
        except OSError:
            pass
