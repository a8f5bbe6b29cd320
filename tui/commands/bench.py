"""`lstm-tui bench`: measure training and generation speed. The work is in tui.bench.measure."""

from __future__ import annotations

import argparse

from .options import PROG, Parser, new_parser


def build_parser() -> Parser:
    from tui.bench import measure as bench

    doc = (bench.__doc__ or "").strip().splitlines()
    p = new_parser(f"{PROG} bench", usage=None, description=doc[0] if doc else "")
    bench.add_arguments(p)
    return p


def run(args: argparse.Namespace) -> int:
    from tui.bench import measure as bench

    return int(bench.run(args) or 0)
