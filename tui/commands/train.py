"""`lstm-tui train`: train without the interface; progress on stderr, a summary and the saved model."""

from __future__ import annotations

import argparse
import io
import json
import sys
from typing import TextIO

import core

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
    files_line,
    install_stop_handlers,
    restore_handlers,
    score,
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
    from ..plain.threads import limit_threads

    progress = Progress(sys.stderr, args.quiet)
    limit_threads()  # for the whole process
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
        progress.message(f"training {budget}; {files_line(trainer)}")
    old_handlers, seen = install_stop_handlers(trainer.controls, progress)
    chars_per_s = 0.0
    status = ""
    json_ok = True  # False once stdout is gone (say `| head -1`): training goes on and saves
    diverged: core.DivergedReport | None = None
    last_step: core.StepReport | None = None
    best_failed = False
    try:
        for r in trainer.run():
            if isinstance(r, core.StepReport):
                chars_per_s = r.chars_per_s
                last_step = r
                status = status_line(trainer, r)
                progress.update(status, force=cfg.steps > 0 and r.step == cfg.steps)
            elif isinstance(r, core.EvalReport):
                if last_step is not None:  # the line shows the newest score, with its step
                    status = status_line(trainer, last_step)
                    if r.final:
                        progress.update(status, force=True)
                if (args.json and json_ok) or log is not None:
                    record = eval_record(r, trainer, chars_per_s)
                    line = json.dumps(record)
                    if args.json and json_ok:
                        json_ok = emit(out, line)
                    if log is not None and not emit(log, line):
                        progress.message(f"{PROG}: warning: cannot write to {args.log} any more; training goes on")
                        close_log(log)
                        log = None
                if not progress.live and status and not r.final:
                    progress.update(status)
            elif isinstance(r, core.SaveReport):
                if r.error:
                    progress.message(f"{PROG}: warning: {r.error}")
                    if r.kind == "best":
                        best_failed = True
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
        last, full = trainer.last_eval, len(trainer.eval_ids) - 1
        ev = last if last is not None and last.step == trainer.step_count and last.chars == full else None
        if ev is None:  # evaluations off (--eval-every 0), a signal that saved at once, or no step taken
            ev = trainer.evaluate()  # the weights as they ended, scored for the summary...
            for r in trainer.keep_best(ev):  # ...and kept as the best model if they beat the file
                if r.error:
                    emit(sys.stderr, f"{PROG}: warning: the best weights were not saved: {r.error}")
                    best_failed = True
            if ev.best:
                saved = trainer.save()  # (its record of the best score, too)
        lines = ["", *summary_lines(ev.evaluation, ev.on_validation, ev.step)]
        lines.append(trained_line(trainer))
        best = best_line(trainer, ev, best_failed)
        if best:
            lines.append(best)
        emit(report_to, "\n".join(lines))
    except KeyboardInterrupt:
        pass
    finally:
        emit(sys.stderr, f"model saved to {saved}")
    if seen:
        return 128 + seen[0]
    return EXIT_OK


def status_line(trainer: core.Trainer, r: core.StepReport) -> str:
    """The progress line: step, smoothed loss, the newest score with the step it belongs to, speed."""
    steps = trainer.config.steps
    head = f"{bar(r.step, steps)} {r.step:,}/{steps:,}" if steps else f"step {r.step:,}"
    last = trainer.last_eval
    val = f"  {score(last)}  acc {last.accuracy:.0%}" if last else ""
    speed = f"{r.chars_per_s:,.0f} chars/s"
    return f"{head}  loss {r.smooth_loss:.3f}{val}  {speed}  {clock(r.elapsed_s)}  epoch {r.epoch:.1f}"


def trained_line(trainer: core.Trainer) -> str:
    """How much this process trained and how fast (a resumed run's earlier steps are not counted)."""
    steps, secs = trainer.session_steps, trainer.session_s
    if trainer.resumed is None:
        took = f"{steps:,} steps ({trainer.epoch:.2f} epochs)"
    else:
        took = f"{steps:,} steps (to step {trainer.step_count:,}, {trainer.epoch:.2f} epochs in all)"
    return f"Trained {took} in {secs:.1f} s; {trainer.session_chars_per_s:,.0f} chars/s."


def best_line(trainer: core.Trainer, final: core.EvalReport, failed: bool) -> str | None:
    """Where the best weights on the validation text are, and whether this run's are them."""
    plan = trainer.best_plan
    if plan is None or failed:
        return None
    held = plan.held
    if held is None:
        return f"No best-model file was written to {plan.path}: no full evaluation of trained weights."
    if held.own:
        return f"Best validation weights: {plan.path} (val {held.val_loss:.3f} @{held.step:,})"
    return (
        f"Best validation weights: {plan.path} keeps another run's model (val {held.val_loss:.3f} @{held.step:,}); "
        f"this run's best did not beat it (val {min(trainer.best_val, final.val_loss):.3f})"
    )


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
