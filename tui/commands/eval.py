"""`lstm-tui eval`: score a saved model on a text (its validation text by default)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import core
from core import corpus as corpus_io
from core.checkpoint import Checkpoint
from core.checkpoint import load as load_checkpoint
from core.evaluate import COLD_BLOCK, evaluate

from ..plain import threads
from .common import EXIT_OK, emit
from .options import PROG, Parser, add_version, eval_chars, new_parser, positive_int


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} eval",
        usage=f"{PROG} eval CHECKPOINT [TEXT] [options]",
        description="Score a saved model on a text, each character predicting the next, two ways:\n"
        "one pass (the text read as one sequence from a fresh state) and cold start (the text cut\n"
        "into 64-character blocks, each read from a blank state, as a typed seed is read; nanoGPT's\n"
        "shakespeare_char score). Loss in nats and bits per character, perplexity, greedy accuracy,\n"
        "the cold-start loss by position in a block (the warm-up from a blank state) and the number\n"
        "of characters scored. Without TEXT, the validation part of the text the model was trained\n"
        "on (found where the run read it, beside the checkpoint or here). Characters the model\n"
        "never saw are left out and counted, not an error.",
        epilog="examples:\n"
        "  lstm-tui eval book.lstm.best.npz                 its own validation part\n"
        "  lstm-tui eval book.lstm.npz chapter2.txt --json\n"
        "  lstm-tui eval hamlet.lstm.npz --chars 200",
    )
    add_version(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a model saved by lstm-tui (.npz)")
    p.add_argument("text", nargs="?", metavar="TEXT", help="a text file to score (default: see above)")
    p.add_argument("--encoding", default="utf-8", help="TEXT's encoding (default: utf-8)")
    p.add_argument(
        "--chars", type=eval_chars, default=0, metavar="N", help="score only the first N characters (default: all)"
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="split the text's streams over N threads, one BLAS thread each (default: one per core; "
        "a text read as one stream uses one)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def _training_validation_text(path: Path, ck: Checkpoint) -> tuple[np.ndarray, str]:
    """The ids of the validation part of the text `ck` was trained on (the whole text when it
    had none), and a label; a one-line error when that text cannot be found."""
    from tui.plain import follow  # the watcher already knows where to look for a run's text

    text, where = follow.find_corpus(ck, path)
    if text is None:
        raise core.CorpusError(f"{where}; or give the text to score: {PROG} eval {path} TEXT")
    part = "validation part" if text.split else "whole text (it had no validation part)"
    return text.val_ids, f"{where}, {part}"


def by_position_lines(at: np.ndarray, per_line: int = 8) -> list[str]:
    """The cold-start loss at each position of a block, `per_line` to a line: '   0-7   2.512 ...'."""
    lines = []
    for a in range(0, len(at), per_line):
        b = min(len(at), a + per_line)
        lines.append(f"  {a:>4}-{b - 1:<4}" + " ".join(f"{v:6.3f}" for v in at[a:b]))
    return lines


def run(args: argparse.Namespace) -> int:
    path = Path(args.checkpoint)
    ck = load_checkpoint(path)  # a clear CheckpointError if missing or corrupt
    skipped = 0
    unknown: list[str] = []
    if args.text is None:
        ids, label = _training_validation_text(path, ck)
    else:
        raw = corpus_io.read_text(args.text, args.encoding)
        text = raw.replace("\r\n", "\n").replace("\r", "\n")  # as the corpus was read for training
        ids, unknown = ck.vocab.encode_known(text)
        skipped = len(text) - len(ids)
        label = args.text
        if len(ids) < 2:
            raise core.CorpusError(
                f"{args.text} has {len(ids)} character{'s' if len(ids) != 1 else ''} the model knows; "
                "at least 2 are needed to score it"
            )
    total = len(ids) - 1
    if args.chars:
        ids = ids[: args.chars + 1]
    n = args.threads or threads.available_cores()
    if n > 1:
        threads.limit_threads()  # one BLAS thread per call: the threads are the parallelism
    ev = evaluate(ck.model, ids, ck.vocab, threads=n, cold=True)
    cold = ev.cold
    assert cold is not None and cold.by_position is not None
    at = cold.by_position
    record = {
        "checkpoint": str(path),
        "text": label,
        "loss": ev.loss,
        "bits_per_char": ev.bits_per_char,
        "perplexity": ev.perplexity,
        "accuracy": ev.accuracy,
        "cold_loss": cold.loss,
        "cold_bits_per_char": cold.bits_per_char,
        "cold_accuracy": cold.accuracy,
        "cold_block": COLD_BLOCK,
        "cold_by_position": [round(float(v), 6) for v in at],
        "chars": ev.n,
        "sample": ev.n < total,
        "skipped": skipped,
        "skipped_distinct": unknown,
    }
    if args.json:
        emit(sys.stdout, json.dumps(record, ensure_ascii=False))
        return EXIT_OK
    what = f"the first {ev.n:,} of {total:,}" if ev.n < total else f"{ev.n:,}"
    lines = [
        f"{label}: {what} characters scored",
        f"  loss        {ev.loss:.4f} nats/char",
        f"  bits/char   {ev.bits_per_char:.4f}",
        f"  perplexity  {ev.perplexity:.3f}",
        f"  accuracy    {ev.accuracy:.2%} (greedy, teacher-forced)",
        f"cold start: each {COLD_BLOCK}-character block read from a blank state",
        f"  loss        {cold.loss:.4f} nats/char ({cold.bits_per_char:.4f} bits/char, "
        f"perplexity {cold.perplexity:.3f}, accuracy {cold.accuracy:.2%})",
        "  by position since the blank state (nats/char):",
        *by_position_lines(at),
    ]
    if skipped:
        shown = "".join(unknown[:10]) + ("…" if len(unknown) > 10 else "")
        lines.append(f"  skipped     {skipped:,} characters the model never saw ({len(unknown)} distinct: {shown!r})")
    emit(sys.stdout, "\n".join(lines))
    return EXIT_OK
