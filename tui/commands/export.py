"""`lstm-tui export`: a saved model as PyTorch nn.LSTM + nn.Linear weights in a .safetensors file."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK
from .options import PROG, Parser, add_version, new_parser


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} export",
        usage=f"{PROG} export CHECKPOINT OUT.safetensors",
        description="Write a saved model's weights as safetensors under PyTorch's own names, so that\n"
        "torch.nn.LSTM(V, H, L) and torch.nn.Linear(H, V) load them with load_state_dict:\n"
        "lstm.weight_ih_l<k>, lstm.weight_hh_l<k>, lstm.bias_ih_l<k>, lstm.bias_hh_l<k>, readout.weight,\n"
        "readout.bias. The input is one-hot over the vocabulary, which the metadata holds as 'vocab'\n"
        "(a JSON list of the characters in id order), with 'config' and 'lstm_tui_version'.",
        epilog="examples:\n"
        "  lstm-tui export hamlet.lstm.npz hamlet.safetensors\n"
        "  lstm-tui import hamlet.safetensors back.npz       # and back\n\n"
        "The README shows the PyTorch lines that load an export and generate from it.",
    )
    add_version(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a model saved by lstm-tui (.npz)")
    p.add_argument("out", metavar="OUT.safetensors", help="the file to write (replaced if it exists)")
    return p


def run(args: argparse.Namespace) -> int:
    from tui.pytorch.weights import export_checkpoint

    path = export_checkpoint(args.checkpoint, args.out)
    print(f"exported {args.checkpoint} to {path}", file=sys.stderr)
    return EXIT_OK
