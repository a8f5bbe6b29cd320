"""`lstm-tui export`: a saved model as the weights of its PyTorch twin, in a .safetensors file."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK
from .options import PROG, Parser, add_version, new_parser, torch_twins


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} export",
        usage=f"{PROG} export CHECKPOINT OUT.safetensors",
        description="Write a saved model's weights as safetensors under PyTorch's own names, so that the\n"
        f"PyTorch module each model declares loads them with load_state_dict: {torch_twins()}.\n"
        "An LSTM's tensors are lstm.weight_ih_l<k>, lstm.weight_hh_l<k>, lstm.bias_ih_l<k>,\n"
        "lstm.bias_hh_l<k> (gru., rnn. for the others), readout.weight and readout.bias. The input is\n"
        "one-hot over the vocabulary, which the metadata holds as 'vocab' (a JSON list of the\n"
        "characters in id order), with 'config' (its 'cell' names the model) and 'lstm_tui_version'.",
        epilog="examples:\n"
        "  lstm-tui export hamlet.lstm.npz hamlet.safetensors\n"
        "  lstm-tui import hamlet.safetensors back.npz       # and back\n\n"
        "docs/pytorch.md shows the PyTorch lines that load an export and generate from it.",
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
