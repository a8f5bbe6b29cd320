"""Option parsing shared by every command: the parser class, number types and the training options.

Imports neither Textual nor the commands, so any command (and tui.cli) can use it cheaply.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from typing import NoReturn

import numpy as np

import core
from core import corpus as corpus_io
from core import recipe
from core.batches import WINDOWS
from core.config import EVAL_INTERVAL, EVAL_MIN_CHARS, SCHEDULES, TrainConfig
from core.models import MODELS
from core.models.base import INIT_STATES

PROG = "lstm-tui"
DEFAULTS = TrainConfig()


class UsageError(Exception):
    """Bad usage found by argparse; turned into one `lstm-tui: error:` line and exit code 2."""


# ------------------------------------------------------------------ argument types
def _number(text: str, kind: str) -> float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite {kind}, got {text!r}")
    return value


def _whole(text: str, minimum: int) -> int:
    kind = "a whole number" + (f" >= {minimum}" if minimum else " >= 0")
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        f = _number(text, kind)  # accept 1e3, reject 2.5
        if f != int(f):
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        value = int(f)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (accepts 1_000 and 1e3)."""
    return _whole(text, 1)


def nonneg_int(text: str) -> int:
    """A whole number >= 0."""
    return _whole(text, 0)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite number >= 0."""
    value = _number(text, "a number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    value = _number(text, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def probability(text: str) -> float:
    """A number in (0, 1]."""
    value = _number(text, "a number in (0, 1]")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def _unit_interval(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, "a number in [0, 1]")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def eval_chars(text: str) -> int:
    """0 (all of it), or a whole number >= 2 (a character to read and one to predict)."""
    value = _whole(text, 0)
    if value == 1:
        raise argparse.ArgumentTypeError("expected 0 (the whole text) or a whole number >= 2, got 1")
    return value


# ------------------------------------------------------------------------ parsers
class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2 (raised, so tests can run main())."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks; option help starts at column 30, lines at most 100 wide."""

    def __init__(self, prog: str) -> None:
        width = min(100, shutil.get_terminal_size((100, 24)).columns - 2)
        super().__init__(prog, max_help_position=30, width=width)


def new_parser(prog: str, usage: str | None, description: str, epilog: str = "") -> Parser:
    """A parser with the command line's error handling and help layout."""
    return Parser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def version_line() -> str:
    return f"{PROG} {core.__version__} (numpy {np.__version__}, python {sys.version.split()[0]})"


def add_version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action="version", version=version_line())


def models_help() -> str:
    """Each registered model with its one-line summary: 'lstm (long short-term memory, ...), gru (...)'."""
    return ", ".join(f"{name} ({cls.summary})" for name, cls in MODELS.items())


def torch_twins() -> str:
    """Each model's PyTorch twin: 'lstm: nn.LSTM + nn.Linear, gru: ...'."""
    return ", ".join(f"{name}: {cls.torch_class} + nn.Linear" for name, cls in MODELS.items())


def add_cell_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--cell: the model (default None, so a resumed run keeps its own)."""
    p.add_argument(
        "--cell",
        choices=tuple(MODELS),
        metavar="MODEL",
        help=f"the model: {models_help()} (default: {DEFAULTS.cell})",
    )


# How the defaults that are fitted to the text read in --help (core.recipe chooses them).
FITTED = f"for a text under {recipe.TINY_CHARS:,} characters; longer texts get"


def add_training_options(p: argparse.ArgumentParser, race: bool = False) -> None:
    """The options shared by the interface, `train` and `race`. Defaults are None so that, when
    resuming, only the options actually given override the checkpoint's settings. `race` leaves
    out what a race does not take (--cell, --resume, --engine, --device: they are refused with a
    hint, unlisted) and gives the race's own defaults."""
    d = DEFAULTS
    tiny, large = recipe.TINY, recipe.LARGE_SHAPE
    p.add_argument(
        "corpus",
        nargs="?",
        metavar="CORPUS",
        help="a UTF-8 text file to learn (default: the bundled Hamlet soliloquy, 866 characters)",
    )
    text = p.add_argument_group("text")
    text.add_argument("--encoding", default="utf-8", help="the corpus's encoding (default: utf-8)")
    text.add_argument("--lowercase", action="store_true", help="lowercase the corpus before learning it")
    text.add_argument(
        "--val-fraction",
        type=fraction,
        default=corpus_io.DEFAULT_VAL_FRACTION,
        metavar="F",
        help="hold out this last fraction of the text for validation; texts too short to spare "
        "500 characters on each side train and evaluate on the whole text (default: %(default)s)",
    )
    model = p.add_argument_group("model (fixed once trained)")
    if race:
        model.add_argument("--cell", help=argparse.SUPPRESS)  # refused with a hint: races take --cells
    else:
        add_cell_option(model)
    sized = "the largest size this machine trains over the text in minutes, at most 2 parameters a character"
    model.add_argument(
        "--hidden",
        type=positive_int,
        metavar="H",
        help=f"units per layer, a GPT's width (default: {tiny['hidden']} {FITTED} {sized}, as the 'chose' line says)",
    )
    model.add_argument(
        "--layers",
        type=positive_int,
        metavar="L",
        help=f"stacked layers (default: {tiny['layers']} {FITTED} a number fitted with --hidden)",
    )
    model.add_argument(
        "--heads",
        type=positive_int,
        metavar="N",
        help="a GPT's attention heads per layer; they must divide --hidden (default: fitted, about --hidden / 32)",
    )
    model.add_argument(
        "--block",
        type=positive_int,
        metavar="N",
        help="a GPT's context in characters: the longest text it reads at once, and the longest --seq-len "
        "(default: fitted, 64 on most texts)",
    )
    model.add_argument(
        "--bias",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a GPT with biases in its linear maps and LayerNorms (default: none, as nanoGPT's small recipes)",
    )
    model.add_argument(
        "--init-state",
        choices=INIT_STATES,
        help="what a recurrent cell's stream starts from when it starts blank (at the start of the text, "
        "after a wrap, in evaluation and generation): zeros, or a state per layer learned with the other "
        f"weights (not for a GPT{', which the race leaves at zeros' if race else ''}; no PyTorch export) "
        f"(default: {d.init_state})",
    )
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"floating-point precision (default: {d.dtype})")
    train = p.add_argument_group("training")
    train.add_argument(
        "--seq-len",
        type=positive_int,
        metavar="T",
        help=f"steps of backprop through time (default: {tiny['seq_len']} {FITTED} {large['seq_len']})",
    )
    train.add_argument(
        "--batch",
        type=positive_int,
        metavar="B",
        help=f"parallel streams per step (default: {tiny['batch']} {FITTED} {large['batch']})",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        metavar="LR",
        help=f"learning rate (default: {recipe.lr_for(128):g} up to 128 units, {recipe.lr_for(256):g} above)",
    )
    decay = "1: the race keeps the rate constant" if race else f"{d.lr_decay:g}"
    train.add_argument(
        "--lr-decay",
        type=probability,
        metavar="F",
        help="multiply the learning rate by F when an evaluation sets no new best, down to 1/1000 of --lr; 1 = never "
        f"(default: {decay})",
    )
    train.add_argument(
        "--average",
        type=fraction,
        metavar="D",
        help="the model is a moving average of the weights, keeping D of it per step; 0 = the weights "
        "themselves (default: 0.998 for a text of 20,000 characters or more, else 0)",
    )
    train.add_argument("--optimizer", choices=("adam", "sgd", "adagrad"), help=f"update rule (default: {d.optimizer})")
    train.add_argument(
        "--weight-decay",
        type=nonneg_float,
        metavar="W",
        help="AdamW's decoupled weight decay of the matrices and embeddings (default: 0.1 for a GPT, else 0)",
    )
    train.add_argument(
        "--beta2", type=fraction, metavar="B", help="Adam's second-moment decay (default: 0.99 for a GPT, else 0.999)"
    )
    train.add_argument(
        "--warmup",
        type=nonneg_int,
        metavar="N",
        help="raise the learning rate linearly over the first N steps (default: 100 for a GPT, else 0)",
    )
    train.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="after the warm-up: constant, or cosine from --lr down to --min-lr x --lr over the run's --steps "
        "or --seconds; a run with neither keeps its rate (default: cosine for a GPT, else constant)",
    )
    train.add_argument(
        "--min-lr",
        type=_unit_interval,
        metavar="F",
        help=f"where the cosine ends, as a fraction of --lr (default: {d.min_lr:g})",
    )
    train.add_argument(
        "--windows",
        choices=WINDOWS,
        help="how training reads the text: 'carried' streams read on, carrying their state from window to "
        "window (the longest context); 'random' windows start anywhere from a blank state, as a typed seed "
        "does (default: random for a text of 20,000 characters or more, else carried)",
    )
    train.add_argument(
        "--reset-prob",
        type=_unit_interval,
        metavar="P",
        help="with carried windows, the chance that a stream starts a window from a blank state "
        f"(default: {recipe.RESET_PROB:g} for a short text; implies --windows carried)",
    )
    train.add_argument(
        "--clip", type=nonneg_float, metavar="C", help=f"max global gradient norm, 0 = off (default: {d.clip:g})"
    )
    train.add_argument(
        "--dropout", type=fraction, metavar="P", help=f"dropout on layer outputs in [0, 1) (default: {d.dropout:g})"
    )
    train.add_argument(
        "--steps",
        type=nonneg_int,
        metavar="N",
        help="optimizer steps to take in this run, 0 = until stopped (default: 0)",
    )
    train.add_argument(
        "--seconds",
        type=nonneg_float,
        metavar="S",
        help="seconds of training to take in this run (evaluations and pauses not counted), 0 = until "
        "stopped; with --steps, whichever comes first (default: 0)",
    )
    train.add_argument(
        "--seed", type=nonneg_int, metavar="S", help=f"seeds weights, dropout and sampling (default: {d.seed})"
    )
    train.add_argument(
        "--eval-every",
        type=nonneg_int,
        metavar="N",
        help="steps between evaluations, 0 = never (default: by characters trained, "
        f"{EVAL_INTERVAL}x the evaluation text, about a tenth of the time; early in a run the gaps start at "
        f"{EVAL_MIN_CHARS:,} characters and double, scoring a sample); a run also scores its final weights",
    )
    train.add_argument(
        "--eval-chars",
        type=eval_chars,
        metavar="N",
        help="score only the first N characters of the evaluation text; the score is then "
        "reported as a sample (default: 0, all of it)",
    )
    if race:  # refused with a hint (the race trains fresh models, with the numpy engine)
        for name in ("--engine", "--device", "--resume"):
            p.add_argument(name, help=argparse.SUPPRESS)
    else:
        add_engine_options(p)
    files = p.add_argument_group("files")
    files.add_argument(
        "--checkpoint",
        metavar="PATH",
        help=(
            "where the models are saved, one file per cell named after it: PATH hamlet.npz gives "
            "hamlet.lstm.npz, hamlet.gru.npz, ... (default: ./<corpus name>.npz)"
            if race
            else "where the model is saved (default: ./<corpus name>.<cell>.npz in the current directory, "
            "or the --resume file); when part of the text is held out, the weights with the best "
            "validation loss also go to <name>.best.npz beside it, unless that file holds a better "
            "model of the same text or a model of another text (then <name>.best.2.npz, ...)"
        ),
    )
    files.add_argument(
        "--save-every",
        type=nonneg_int,
        metavar="N",
        help=f"steps between automatic saves, 0 = only when training ends (default: {d.save_every})",
    )
    if not race:
        files.add_argument(
            "--resume",
            metavar="PATH",
            help="continue training the model saved in PATH: on the text it was trained on, or on another "
            "of its characters (fine-tuning); --steps counts the new steps",
        )


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """--engine and --device (train and the interface)."""
    engine = p.add_argument_group("engine")
    engine.add_argument(
        "--engine",
        choices=("numpy", "torch"),
        help="who does the arithmetic: numpy (lstm-tui's own, the default) or torch (PyTorch, "
        "pip install 'lstm-tui[torch]'; data-parallel when launched by torchrun); checkpoints are the "
        "same, so a run resumes with either",
    )
    add_thread_options(engine)
    engine.add_argument(
        "--device",
        choices=("cpu", "cuda", "mps"),
        help="with --engine torch: where to train (default: cuda when PyTorch sees a GPU, else cpu)",
    )


def add_thread_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--threads and --wavefront (train, the interface and race): the NumPy engine's threads."""
    p.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="split each training step's streams over N threads, each running NumPy's BLAS on one "
        "thread (default: measured at the start, about a second: the fewest threads within 5%% of "
        "the fastest; the choice is printed); a run repeats exactly for a given N",
    )
    p.add_argument(
        "--wavefront",
        action="store_true",
        help="with --threads N and a model of L >= 2 layers: run the layers as a wavefront, one thread "
        "per layer on N // L slices of the streams (without --threads the measurement decides)",
    )
