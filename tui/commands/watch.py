"""`lstm-tui watch CHECKPOINT`: the interface on a run that another process trains."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import core

from .common import interface, run_interface
from .options import PROG, Parser, add_version, new_parser


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} watch",
        usage=f"{PROG} watch CHECKPOINT [options]",
        description="Open the interface on a run that another process trains (a headless 'lstm-tui train\n"
        "--save-every N', another session, a machine sharing the folder). The screen reads the\n"
        "checkpoint again each time it is saved, and CHECKPOINT.jsonl beside it if the run writes one\n"
        "(train --log). It never writes anything: quitting (ctrl+q) leaves the run untouched.",
        epilog="examples:\n"
        "  nohup lstm-tui train book.txt --save-every 200 --log book.lstm.npz.jsonl > train.out 2>&1 &\n"
        "  lstm-tui watch book.lstm.npz\n"
        "  lstm-tui watch /shared/runs/book.lstm.npz --corpus ~/book.txt\n\n"
        "A checkpoint that does not exist yet is waited for (a run writes its first save after a while).\n\n"
        "exit codes: 0 ok, 2 bad usage or input (not a checkpoint; no such checkpoint without a terminal),\n"
        "130 Ctrl+C",
    )
    add_version(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the checkpoint the run saves to (.npz)")
    p.add_argument(
        "--corpus",
        metavar="FILE",
        help="the text the run learns, for the truth-vs-prediction panel (default: the file the "
        "checkpoint names, looked for beside it and in the current directory)",
    )
    p.add_argument("--encoding", default="utf-8", help="the text's encoding (default: utf-8)")
    p.add_argument(
        "--log",
        metavar="FILE",
        help="the run's 'train --log' file, for a curve finer than the saves (default: "
        "CHECKPOINT.jsonl, read if it exists or appears)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Check the checkpoint (and the text), then open the watching screen."""
    from tui.plain import follow as watch

    path = Path(args.checkpoint)
    terminal = sys.stdin.isatty() and sys.stderr.isatty()  # Textual reads keys from stdin and draws on stderr
    if terminal and not os.path.lexists(path):  # the run has not saved yet: wait for its first save
        if args.corpus is not None and not Path(args.corpus).is_file():
            raise core.CorpusError(f"no such file: {args.corpus}")  # said now, not after the wait
        print(f"{PROG}: waiting for {path}: the run writes it at its first save (ctrl+c stops)", file=sys.stderr)
        first = watch.wait_for(path)
    else:
        first = watch.load(path)  # a one-line CheckpointError if missing or not a checkpoint
    corpus, note = watch.find_corpus(first, path, args.corpus, args.encoding)
    log = Path(args.log) if args.log else Path(f"{path}.jsonl")
    if not terminal:
        raise core.LstmTuiError(f"'{PROG} watch' needs a terminal; '{PROG} sample {path}' prints text without one")
    watch_app = interface("tui.apps.watch", "WatchApp")
    return run_interface(watch_app(path, first, corpus, note, log), saves=False)
