"""`lstm-tui import`: a model's PyTorch weights in a .safetensors file as an lstm-tui checkpoint."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import LstmTuiError

from .common import EXIT_OK
from .options import PROG, Parser, add_version, new_parser, torch_twins


def build_parser() -> Parser:
    p = new_parser(
        f"{PROG} import",
        usage=f"{PROG} import IN.safetensors OUT.npz",
        description="Turn a .safetensors file of a model's PyTorch weights into an lstm-tui checkpoint\n"
        "that the interface, sample, inspect and --resume accept. The file may be an export or a model\n"
        f"trained in PyTorch ({torch_twins()}), its tensors named as an export\n"
        "names them (an LSTM's: lstm.weight_ih_l<k>, lstm.weight_hh_l<k>, lstm.bias_ih_l<k>,\n"
        "lstm.bias_hh_l<k>, readout.weight and readout.bias), and its vocabulary in the metadata as\n"
        "'vocab', a JSON list of the characters in id order. The tensors say which model it is.",
        epilog="examples:\n"
        "  lstm-tui import hamlet.safetensors hamlet.lstm.npz\n"
        "  lstm-tui import newer.safetensors hamlet.lstm.npz --force     replaces the file\n"
        "  lstm-tui sample hamlet.lstm.npz --prime 'to be'\n\n"
        "from PyTorch:  save_file(model.state_dict(), 'model.safetensors',\n"
        "                         metadata={'vocab': json.dumps(chars)})",
    )
    add_version(p)
    p.add_argument("source", metavar="IN.safetensors", help="the weights to import")
    p.add_argument("out", metavar="OUT.npz", help="the checkpoint to write (an existing file only with --force)")
    p.add_argument("--force", action="store_true", help="replace OUT.npz if it exists (it is left alone otherwise)")
    return p


def run(args: argparse.Namespace) -> int:
    """Import; an existing OUT.npz is refused (one line, exit 2) unless --force, and then named as replaced."""
    from tui.pytorch.weights import import_file

    out = Path(args.out)
    existed = out.is_file()
    if existed and not args.force:
        raise LstmTuiError(f"{out} exists; give --force to replace it, or another name")
    path = import_file(args.source, out)
    print(f"imported {args.source} to {path}" + (" (the file that was there is replaced)" if existed else ""),
          file=sys.stderr)  # fmt: skip
    return EXIT_OK
