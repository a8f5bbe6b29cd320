"""`lstm-tui inspect`: colour a text by what one LSTM unit does. The work is in tui.inspect_cmd."""

from __future__ import annotations

import argparse

from .options import PROG, Parser, new_parser


def build_parser() -> Parser:
    from tui import inspect_cmd

    doc = (inspect_cmd.__doc__ or "").strip().splitlines()
    p = new_parser(f"{PROG} inspect", usage=None, description=doc[0] if doc else "")
    inspect_cmd.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from tui import inspect_cmd

    return int(inspect_cmd.run(args) or 0)
