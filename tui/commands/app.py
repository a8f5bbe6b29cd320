"""`lstm-tui [CORPUS] [options]`, the default command: open the interface and train.

Everything is parsed and validated (corpus, settings, checkpoint to resume) before any screen is
drawn. Textual is imported only here, and only after that validation.
"""

from __future__ import annotations

import argparse
import sys

import core

from . import COMMANDS, DEFAULT, available
from .common import build_trainer, interface, run_interface
from .options import PROG, Parser, add_training_options, add_version, new_parser


def _commands_epilog() -> str:
    listed = [("", DEFAULT)] + [(name, c) for name, c in COMMANDS.items() if available(c)]
    lines = "".join(
        f"\n  {f'{PROG} {name} {c.usage}' if name else f'{PROG} {c.usage}':<36}{c.summary}" for name, c in listed
    )
    return (
        f"commands:{lines}\n"
        "  (each has --help; to train on a file named 'train' or 'sample', write ./train)\n\n"
        "examples:\n"
        "  lstm-tui                            learn the bundled soliloquy in the interface\n"
        "  lstm-tui mybook.txt --hidden 256    learn your own text; saved to ./mybook.lstm.npz\n"
        "  lstm-tui train --steps 500          headless; prints ground truth vs. predictions\n"
        "  lstm-tui sample hamlet.lstm.npz --prime 'to be' --temperature 0.5\n"
        "  lstm-tui hamlet.lstm.npz            a saved model (told by its first bytes): 'play', no training\n\n"
        "exit codes: 0 ok, 1 training diverged or saving failed, 2 bad usage or input, 130 interrupted"
    )


def build_parser() -> Parser:
    p = new_parser(
        PROG,
        usage=f"{PROG} [CORPUS] [options]\n       {PROG} {{{','.join(COMMANDS)}}} ... (see below)",
        description="Watch a character-level LSTM, written in pure NumPy, learn a text in your terminal.\n"
        "Opens the interface and starts training; quitting (ctrl+q) saves the model.",
        epilog=_commands_epilog(),
    )
    add_version(p)
    add_training_options(p)
    p.set_defaults(command=None)
    return p


def run(args: argparse.Namespace) -> int:
    """Open the interface on a validated trainer; save on quit; print where the model went."""
    notes: list[str] = []
    trainer, label = build_trainer(args, notes.append)
    # Textual reads keys from stdin and draws on stderr.
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise core.LstmTuiError(f"the interface needs a terminal; to train without one use '{PROG} train'")
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)  # also shown in the interface, for its log
    make_app = interface("tui.apps.train", "make_app", f"; '{PROG} train' trains without it")
    app = make_app(trainer, corpus_label=label, notes=notes)
    code = run_interface(app)
    saved = getattr(app, "saved_path", None)
    if saved:
        print(f"model saved to {saved}", file=sys.stderr)
    else:
        print(f"{PROG}: the model was not saved", file=sys.stderr)
    return code
