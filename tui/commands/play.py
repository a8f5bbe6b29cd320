"""`lstm-tui play CHECKPOINT` (and `lstm-tui CHECKPOINT`): the generation screen on a saved model.

No training: a seed, the temperature, top-k and top-p, the text the model writes, the likeliest
next characters, the inside view and the help, on the weights in the file. Everything is checked
(the settings, the file, the text) before any screen is drawn; Textual is imported only after.
"""

from __future__ import annotations

import argparse
import codecs
import sys
from pathlib import Path

import core
from core.checkpoint import load as load_checkpoint
from core.sampling import TEMPERATURE, check_settings

from . import ARCHIVE_MAGIC
from .common import interface, run_interface
from .options import PROG, Parser, add_version, new_parser, nonneg_float, positive_int, probability

T_MAX = 2.0  # the screen's temperature goes from 0 to this (tui.widgets.generate_panel)
LENGTH = 600  # characters per generation (tui.apps.base.GENERATE_CHARS)


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} play",
        usage=f"{PROG} play CHECKPOINT [options]\n       {PROG} CHECKPOINT [options]",
        description="Open the generation screen on a saved model, without training it: type a seed and\n"
        "watch the model continue it; change the temperature, top-k and top-p and see the likeliest\n"
        "next characters follow; look inside (f4). The file is only read. 'lstm-tui CHECKPOINT' does\n"
        "the same when the file is a saved model (told by its first bytes, not its name).",
        epilog="examples:\n"
        "  lstm-tui play hamlet.lstm.npz\n"
        "  lstm-tui hamlet.lstm.npz --prime 'to be' --temperature 0.5 --top-k 5\n\n"
        "exit codes: 0 ok, 2 bad usage or input (no such file, not a checkpoint, no terminal)",
    )
    add_version(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a model saved by lstm-tui (.npz)")
    p.add_argument(
        "--prime",
        metavar="TEXT",
        help="the seed the screen starts with (default: the first words of the model's text)",
    )
    p.add_argument(
        "--temperature",
        type=nonneg_float,
        default=TEMPERATURE,
        metavar="T",
        help=f"the temperature it starts at, 0 to {T_MAX:g}: below 1 safer, above 1 wilder, 0 always the "
        f"likeliest character (default: {TEMPERATURE:g}, the model as it is, as sample draws)",
    )
    p.add_argument("--top-k", type=positive_int, metavar="K", help="draw only among the K likeliest characters")
    p.add_argument(
        "--top-p",
        type=probability,
        metavar="P",
        help="draw only among the likeliest characters whose probabilities add up to P (0 < P <= 1)",
    )
    p.add_argument(
        "--length", type=positive_int, default=LENGTH, metavar="N", help=f"characters per generation ({LENGTH})"
    )
    p.add_argument(
        "--corpus",
        metavar="FILE",
        help="the text the model was trained on, for the inside view and the first seed (default: found "
        "where the run read it, beside the checkpoint or here; else the model's own writing)",
    )
    p.add_argument("--encoding", default="utf-8", help="the text's encoding (default: utf-8)")
    return p


def run(args: argparse.Namespace) -> int:
    """Check the settings, the model and its text, then open the screen."""
    from tui.plain import follow

    check_settings(args.temperature, args.top_k, args.top_p)
    if args.temperature > T_MAX:
        raise core.ConfigError(f"the screen's temperature goes from 0 to {T_MAX:g}, got {args.temperature:g}")
    path = Path(args.checkpoint)
    ck = load_saved_model(path)
    text, where = follow.find_corpus(ck, path, args.corpus, args.encoding)
    if not (sys.stdin.isatty() and sys.stderr.isatty()):  # Textual reads keys from stdin and draws on stderr
        raise core.LstmTuiError(f"'{PROG} play' needs a terminal; '{PROG} sample {path}' prints text without one")
    make_app = interface("tui.apps.play", "make_app", f"; '{PROG} sample {path}' prints text without it")
    app = make_app(
        path,
        ck,
        text,
        where,
        prime=args.prime,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        length=args.length,
    )
    return run_interface(app, saves=False)


def load_saved_model(path: Path) -> core.Checkpoint:
    """The checkpoint at `path`; a one-line CheckpointError for anything else, naming a text as one."""
    try:
        return load_checkpoint(path)
    except core.CheckpointError:
        if _looks_like_text(path):
            raise core.CheckpointError(
                f"{path} is a text, not a saved model: '{PROG} {path}' trains a model on it"
            ) from None
        raise


def _looks_like_text(path: Path) -> bool:
    """Whether the file starts as a text does: UTF-8 without NUL bytes, and not an archive."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if not head or head.startswith(ARCHIVE_MAGIC) or b"\0" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # (a character may be cut at the end)
    except UnicodeDecodeError:
        return False
    return True
