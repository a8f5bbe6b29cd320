"""`lstm-tui inspect`: colour a text by what one unit does, or show what one GPT attention head attends to.

Headless: imports only core and the renderer that never imports Textual (tui.plain.render), so it
works in any terminal and in pipes.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from core import checkpoint, corpus
from core.errors import ConfigError
from core.inside import (
    ALL_QUANTITIES,
    FEATURES,
    activations,
    attention,
    default_quantity,
    feature,
    has_attention,
    quantities,
    rank_units,
)

from ..plain.format import char_label
from ..plain.render import (
    SHADES,
    UNREAD,
    attention_ansi,
    attention_shades,
    attention_top,
    legend,
    render_ansi,
    render_plain,
    render_shades,
)
from .options import PROG, Parser, new_parser, nonneg_int, positive_int


def build_parser() -> Parser:
    doc = (__doc__ or "").strip().splitlines()
    p = new_parser(f"{PROG} inspect", usage=None, description=doc[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a model saved by lstm-tui")
    p.add_argument(
        "--text",
        metavar="FILE",
        help="text to read (default: the text the model was trained on, found as 'eval' finds it; "
        "else the bundled soliloquy)",
    )
    p.add_argument("--encoding", default="utf-8", help="encoding of --text (default: utf-8)")
    p.add_argument("--layer", type=positive_int, default=1, metavar="L", help="layer, from 1 (default: 1)")
    p.add_argument(
        "--unit", type=positive_int, default=None, metavar="U", help="unit in the layer, from 1 (default: 1)"
    )
    p.add_argument(
        "--head",
        type=positive_int,
        metavar="H",
        help="a GPT's attention head in the layer, from 1: show which earlier characters it attends to, "
        "each with its weight, instead of a unit",
    )
    p.add_argument(
        "--at",
        type=positive_int,
        metavar="N",
        help="with --head: the character whose attention to show, counted from 1 (default: the last one read)",
    )
    p.add_argument(
        "--top", type=positive_int, default=10, metavar="K", help="with --head: list the K heaviest (default: 10)"
    )
    p.add_argument(
        "--quantity",
        choices=ALL_QUANTITIES,
        default=None,
        help="what to show: an LSTM's input, forget or output gate, candidate, cell or hidden state; "
        "a GRU's reset or update gate, candidate or hidden state; an RNN's hidden state "
        "(default: the LSTM's cell, else the hidden state)",
    )
    p.add_argument(
        "--feature",
        choices=sorted(FEATURES),
        metavar="NAME",
        help=f"also rank the units that track this feature: {', '.join(sorted(FEATURES))}",
    )
    p.add_argument("--chars", type=positive_int, default=2000, metavar="N", help="read at most N characters (2000)")
    p.add_argument("--width", type=nonneg_int, default=0, metavar="W", help="wrap at W columns (default: terminal)")
    p.add_argument(
        "--plain",
        action="store_true",
        help="one line per character with its value, no colour (with --head: each character the head "
        "reads, heaviest first)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    """Print the text coloured by the chosen unit; 0 on success (errors raise LstmTuiError)."""
    ck = checkpoint.load(args.checkpoint)
    model = ck.model
    cfg = model.config
    if args.layer > cfg.layers:
        raise ConfigError(f"--layer {args.layer} is out of range: this model has {cfg.layers} layer(s)")
    if args.head is not None or args.at is not None:
        return _run_head(args, ck)
    if args.unit is None:
        args.unit = 1
    if args.unit > cfg.hidden:
        raise ConfigError(f"--unit {args.unit} is out of range: each layer has {cfg.hidden} units")
    has = quantities(cfg.cell)
    if not has:
        raise ConfigError(f"the {model.title} model has nothing to look inside: no gates or states to show")
    if args.quantity is None:
        args.quantity = default_quantity(cfg.cell)
    elif args.quantity not in has:
        raise ConfigError(f"--quantity {args.quantity}: a {model.title} has {', '.join(has)}")
    text, source = _text_to_read(args, ck)
    print(f"{PROG}: reading {source}", file=sys.stderr)
    ids, skipped = ck.vocab.encode_known(text)
    if skipped:
        shown = "".join(skipped[:10]) + ("…" if len(skipped) > 10 else "")
        print(
            f"{PROG}: warning: the model never saw {len(skipped)} of the text's characters ({shown!r}); "
            f"they are shown uncoloured ({UNREAD} under them) and not read",
            file=sys.stderr,
        )
    if len(ids) == 0:
        raise ConfigError("none of the text's characters are in the model's vocabulary")
    known = ck.vocab.decode(ids)
    acts = activations(model, ids, known)
    read = np.array([ch in ck.vocab for ch in text], dtype=bool)  # (n,) the characters the model read
    values = np.full(len(text), np.nan)  # (n,) NaN where a character was not read
    values[read] = acts.unit(args.quantity, args.layer - 1, args.unit - 1)
    if args.plain:
        print(render_plain(text, values))
    else:
        width = args.width or max(20, _terminal_width())
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(f"layer {args.layer} unit {args.unit} · {legend(args.quantity, values)}")
        print(
            render_ansi(text, values, args.quantity, width)
            if colour
            else render_shades(text, values, args.quantity, width)
        )
    if args.feature:
        print(f"\nunits whose {args.quantity} tracks '{args.feature}' (Pearson r):")
        for s in rank_units(acts, args.quantity, feature(args.feature, known), top=5):
            print(f"  layer {s.layer + 1} unit {s.unit + 1:<5} r = {s.r:+.3f}")
    sys.stdout.flush()
    return 0


def _run_head(args: argparse.Namespace, ck: checkpoint.Checkpoint) -> int:
    """Print which earlier characters one attention head attends to at one character of the text."""
    model, cfg = ck.model, ck.model.config
    if not has_attention(cfg.cell):
        option = "--head" if args.head is not None else "--at"
        article = "an" if model.title[:1] in tuple("AEFHILMNORSX") else "a"  # an LSTM, a GRU, an RNN
        raise ConfigError(
            f"{option}: {article} {model.title} has no attention heads (a GPT has); --unit U shows one of its units"
        )
    if args.head is None:
        raise ConfigError("--at N picks the character whose attention to show: give the head too (--head H)")
    if args.head > cfg.heads:
        raise ConfigError(f"--head {args.head} is out of range: each layer has {cfg.heads} head(s)")
    for name in ("unit", "quantity", "feature"):
        if getattr(args, name) is not None:
            raise ConfigError(f"--{name} is about units and --head shows an attention head: give one or the other")
    text, source = _text_to_read(args, ck)
    ids, skipped = ck.vocab.encode_known(text)
    if len(ids) == 0:
        raise ConfigError("none of the text's characters are in the model's vocabulary")
    known = ck.vocab.decode(ids)
    at = len(known) if args.at is None else args.at
    if at > len(known):
        raise ConfigError(f"--at {args.at} is past the end of the text: it has {len(known):,} characters to read")
    print(f"{PROG}: reading {source}", file=sys.stderr)
    if skipped:
        print(
            f"{PROG}: warning: the model never saw {len(skipped)} of the text's characters; they are left out, "
            "and --at counts the characters read",
            file=sys.stderr,
        )
    p = at - 1  # the position, from 0
    att = attention(model, ids[:at], known[:at])  # nothing after p changes what p attends to
    layer, head, start = args.layer - 1, args.head - 1, att.context(p)
    weights = att.row(layer, head, p)  # (p - start + 1,)
    if args.plain:
        order = att.top(layer, head, p, len(weights))
        print("\n".join(f"{w:.4f}\t{i + 1}\t{known[i]!r}" for i, w in order))
        sys.stdout.flush()
        return 0
    context = known[start:at]
    print(
        f"layer {args.layer}, head {args.head} of a {model.title} of {cfg.layers} layers x {cfg.heads} heads "
        f"(width {cfg.hidden}, block {cfg.block}), at character {at:,} of {len(known):,} "
        f"({char_label(known[p])}), which reads characters {start + 1:,} to {at:,}:"
    )
    width = args.width or max(20, _terminal_width())
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    print(attention_ansi(context, weights, width) if colour else attention_shades(context, weights, width))
    k = min(args.top, len(weights))
    print(f"\nthe {k} it attends to most (shades {SHADES!r}: weight / the largest):")
    for line in attention_top(known, att.top(layer, head, p, k), p):
        print(f"  {line}")
    sys.stdout.flush()
    return 0


def _text_to_read(args: argparse.Namespace, ck: checkpoint.Checkpoint) -> tuple[str, str]:
    """The characters to read (at most --chars of them) and where they came from, in a few words:
    --text, else the text the model was trained on (where `eval` finds it), else the soliloquy."""
    if args.text:
        text = corpus.read_text(args.text, args.encoding).replace("\r\n", "\n").replace("\r", "\n")
        return text[: args.chars], f"{_first(args.chars, len(text))} {args.text}"
    from ..plain.follow import find_corpus  # where `eval` and `watch` look for a run's text

    found, where = find_corpus(ck, Path(args.checkpoint))
    if found is not None:
        return found.text(0, args.chars), f"{_first(args.chars, found.size)} {where}, the text the model was trained on"
    bundled = corpus.bundled_path().read_text(encoding="utf-8")
    name = (ck.meta.get("corpus") or {}).get("name")
    why = f"{name}, its training text, was not found" if name else "the checkpoint does not name its training text"
    return bundled[: args.chars], f"{_first(args.chars, len(bundled))} the bundled soliloquy ({why}; --text FILE)"


def _first(n: int, size: int) -> str:
    return f"the first {n:,} characters of" if n < size else "all of"


def _terminal_width() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return 80
