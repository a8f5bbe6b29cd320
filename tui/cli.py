"""The `lstm-tui` command line: argument parsing, the headless commands, and exit codes.

    lstm-tui [CORPUS] [options]           open the interface and train (the default command)
    lstm-tui train [CORPUS] [options]     train without the interface; progress on stderr
    lstm-tui sample CHECKPOINT [options]  stream generated text to stdout
    lstm-tui bench [options]              measure training speed (tui.bench)
    lstm-tui inspect CHECKPOINT [options] colour a text by one LSTM unit (tui.inspect_cmd)

Everything is parsed and validated (corpus, settings, checkpoint to resume) before any screen is
drawn, so bad input ends with exit code 2 and one line `lstm-tui: error: ...`. This module imports
Textual only on the interactive path, lazily: the headless commands start fast and run where no
terminal exists.

Exit codes: 0 success; 1 training diverged or the model could not be saved; 2 bad usage or bad
input; 130 interrupted (Ctrl+C); 143 terminated (SIGTERM); 129 hang-up (SIGHUP).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

import core
from core import corpus as corpus_io
from core.checkpoint import load as load_checkpoint
from core.sampling import check_settings
from core.trainer import TrainConfig, best_path

PROG = "lstm-tui"
# Subcommands whose module, imported only when asked for, provides add_arguments(parser) and
# run(args) -> exit code; each is listed only when its module is installed.
DELEGATED = {
    "bench": ("tui.bench", "[options]", "measure training and generation speed"),
    "inspect": ("tui.inspect_cmd", "CHECKPOINT [opts]", "colour a text by what one LSTM unit does"),
}
COMMANDS = ("train", "sample", *DELEGATED)
DEFAULTS = TrainConfig()
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Progress: a live line is redrawn at most this often; plain lines are written at most this often.
LIVE_EVERY_S = 0.1
PLAIN_EVERY_S = 2.0
# After a hang-up the interface gets this long to save, then this long to shut down normally.
HANGUP_SAVE_S = 60.0
HANGUP_GRACE_S = 1.0
# The final summary shows at most this many characters of the evaluation text.
SUMMARY_CHARS = 900
SUMMARY_WIDTH = 72


class UsageError(Exception):
    """Bad usage found by argparse; turned into one `lstm-tui: error:` line and exit code 2."""


class Stopped(Exception):
    """A signal asked a headless command to stop; carries the exit code to return."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


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


def _parser(prog: str, usage: str | None, description: str, epilog: str = "") -> Parser:
    return Parser(
        prog=prog,
        usage=usage,
        description=description,
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """The options shared by the interface and `train`. Defaults are None so that, when resuming,
    only the options actually given override the checkpoint's settings."""
    d = DEFAULTS
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
    model.add_argument("--hidden", type=positive_int, metavar="H", help=f"units per LSTM layer (default: {d.hidden})")
    model.add_argument("--layers", type=positive_int, metavar="L", help=f"stacked LSTM layers (default: {d.layers})")
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"floating-point precision (default: {d.dtype})")
    train = p.add_argument_group("training")
    train.add_argument(
        "--seq-len", type=positive_int, metavar="T", help=f"steps of backprop through time (default: {d.seq_len})"
    )
    train.add_argument(
        "--batch", type=positive_int, metavar="B", help=f"parallel streams per step (default: {d.batch})"
    )
    train.add_argument("--lr", type=positive_float, metavar="LR", help=f"learning rate (default: {d.lr:g})")
    train.add_argument("--optimizer", choices=("adam", "sgd", "adagrad"), help=f"update rule (default: {d.optimizer})")
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
        "--seed", type=nonneg_int, metavar="S", help=f"seeds weights, dropout and sampling (default: {d.seed})"
    )
    train.add_argument(
        "--eval-every",
        type=nonneg_int,
        metavar="N",
        help=f"steps between evaluations, 0 = never (default: {d.eval_every})",
    )
    train.add_argument(
        "--eval-chars",
        type=_eval_chars,
        metavar="N",
        help=f"characters of the evaluation text read per evaluation (default: {d.eval_chars})",
    )
    files = p.add_argument_group("files")
    files.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="where the model is saved (default: ./<corpus name>.lstm.npz in the current directory, "
        "or the --resume file); when part of the text is held out, the weights with the best "
        "validation loss also go to <name>.best.npz beside it",
    )
    files.add_argument(
        "--save-every",
        type=nonneg_int,
        metavar="N",
        help=f"steps between automatic saves, 0 = only when training ends (default: {d.save_every})",
    )
    files.add_argument(
        "--resume",
        metavar="PATH",
        help="continue training the model saved in PATH (give the same CORPUS it was trained on)",
    )


def _eval_chars(text: str) -> int:
    return _whole(text, 2)


def _version_line() -> str:
    return f"{PROG} {core.__version__} (numpy {np.__version__}, python {sys.version.split()[0]})"


def _commands_epilog() -> str:
    extra = "".join(
        f"\n  {f'{PROG} {name} {usage}':<36}{what}"
        for name, (module, usage, what) in DELEGATED.items()
        if _available(module)
    )
    return (
        "commands:\n"
        "  lstm-tui [CORPUS] [options]         open the interface and train (this command)\n"
        "  lstm-tui train [CORPUS] [options]   train without the interface; progress on stderr\n"
        "  lstm-tui sample CHECKPOINT [opts]   stream text generated by a saved model to stdout"
        f"{extra}\n"
        "  (each has --help; to train on a file named 'train' or 'sample', write ./train)\n\n"
        "examples:\n"
        "  lstm-tui                            learn the bundled soliloquy in the interface\n"
        "  lstm-tui mybook.txt --hidden 256    learn your own text; saved to ./mybook.lstm.npz\n"
        "  lstm-tui train --steps 500          headless; prints ground truth vs. predictions\n"
        "  lstm-tui sample hamlet.lstm.npz --prime 'to be' --temperature 0.5\n\n"
        "exit codes: 0 ok, 1 training diverged or saving failed, 2 bad usage or input, 130 interrupted"
    )


def app_parser() -> Parser:
    p = _parser(
        PROG,
        usage=f"{PROG} [CORPUS] [options]\n       {PROG} {{{','.join(COMMANDS)}}} ... (see below)",
        description="Watch a character-level LSTM, written in pure NumPy, learn a text in your terminal.\n"
        "Opens the interface and starts training; quitting (ctrl+q) saves the model.",
        epilog=_commands_epilog(),
    )
    p.add_argument("--version", action="version", version=_version_line())
    _add_training_options(p)
    return p


def train_parser() -> Parser:
    p = _parser(
        f"{PROG} train",
        usage=f"{PROG} train [CORPUS] [options]",
        description="Train without the interface. Progress goes to stderr (a live line on a terminal,\n"
        "plain periodic lines otherwise); at the end the model is saved and a summary compares the\n"
        "evaluation text with the model's predictions. Ctrl+C or SIGTERM stop training and save.",
        epilog="examples:\n"
        "  lstm-tui train --steps 300\n"
        "  lstm-tui train mybook.txt --hidden 256 --layers 2 --steps 5000 --save-every 500\n"
        "  lstm-tui train --resume hamlet.lstm.npz --steps 200 --lr 3e-3\n"
        "  lstm-tui train --steps 1000 --json > log.jsonl\n\n"
        "exit codes: 0 ok, 1 training diverged (last finite weights saved) or saving failed,\n"
        "2 bad usage or input, 130 Ctrl+C (model saved), 143 SIGTERM (model saved)",
    )
    p.add_argument("--version", action="version", version=_version_line())
    _add_training_options(p)
    out = p.add_argument_group("output")
    out.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per evaluation on stdout (step, epoch, elapsed_s, train_loss, "
        "val_loss, accuracy, chars_per_s, ...; losses in nats per character); the summary then goes to stderr",
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr, only the result")
    return p


def sample_parser() -> Parser:
    p = _parser(
        f"{PROG} sample",
        usage=f"{PROG} sample CHECKPOINT [options]",
        description="Stream text generated by a saved model to stdout, one character at a time.\n"
        "The prime is printed first, then the model's continuation.",
        epilog="examples:\n"
        "  lstm-tui sample hamlet.lstm.npz\n"
        "  lstm-tui sample hamlet.lstm.npz --prime 'to be' --length 200 --temperature 0.5 --seed 1\n"
        "  lstm-tui sample hamlet.lstm.npz --temperature 0      # greedy: always the same text",
    )
    p.add_argument("--version", action="version", version=_version_line())
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a model saved by lstm-tui (.npz)")
    p.add_argument(
        "--prime",
        default="",
        metavar="TEXT",
        help="text to start from; characters the model never saw are skipped with a warning "
        "(default: none: the first character is drawn at random)",
    )
    p.add_argument(
        "--length", type=positive_int, default=500, metavar="N", help="characters to generate (default: 500)"
    )
    p.add_argument(
        "--temperature",
        type=nonneg_float,
        default=1.0,
        metavar="T",
        help="below 1 safer, above 1 wilder; 0 always takes the most likely character (default: 1.0)",
    )
    p.add_argument("--top-k", type=positive_int, metavar="K", help="draw only among the K most likely characters")
    p.add_argument(
        "--top-p",
        type=probability,
        metavar="P",
        help="draw only among the most likely characters whose probabilities add up to P (0 < P <= 1)",
    )
    p.add_argument(
        "--seed", type=nonneg_int, metavar="S", help="seed for reproducible samples (default: different every run)"
    )
    return p


# ------------------------------------------------------- delegated subcommands (lazy)
def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def cmd_delegated(name: str, argv: Sequence[str]) -> int:
    """`lstm-tui bench` and the like: the module parses its own options and runs."""
    module_name, usage, _ = DELEGATED[name]
    if not _available(module_name):
        raise core.LstmTuiError(f"'{PROG} {name}' is not part of this installation")
    module = importlib.import_module(module_name)
    doc = (module.__doc__ or "").strip().splitlines()
    p = _parser(f"{PROG} {name}", usage=None, description=doc[0] if doc else "")
    module.add_arguments(p)
    args = p.parse_args(argv)
    return int(module.run(args) or 0)


# ------------------------------------------------------------- building a trainer
def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the user gave on the command line (steps handled by the caller)."""
    names = "hidden layers seq_len batch lr optimizer clip dropout seed eval_every eval_chars save_every dtype"
    return {n: getattr(args, n) for n in names.split() if getattr(args, n) is not None}


def _load_corpus(args: argparse.Namespace) -> tuple[corpus_io.Corpus, str]:
    """The corpus named on the command line (or the bundled one) and a label for reports."""
    if args.corpus is None:
        path = corpus_io.bundled_path()
        label = f"{path.name} (bundled)"
    else:
        path = Path(args.corpus)
        label = str(path)
        if not path.exists():
            guess = difflib.get_close_matches(args.corpus, COMMANDS, n=1, cutoff=0.75)
            hint = f" (did you mean '{PROG} {guess[0]}'?)" if guess else ""
            raise core.CorpusError(f"no such file: {path}{hint}")
    text = corpus_io.load(path, encoding=args.encoding, lowercase=args.lowercase, val_fraction=args.val_fraction)
    return text, label


def _check_writable(path: Path) -> None:
    """Raise CheckpointError early if the checkpoint could never be written at `path`."""
    if path.is_dir():
        raise core.CheckpointError(f"--checkpoint {path} is a directory; give a file name such as {path}/model.npz")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise core.CheckpointError(f"cannot save the model to {path}: {folder} is not a writable directory")


def default_checkpoint(corpus_name: str) -> Path:
    """./<corpus stem>.lstm.npz in the current directory."""
    stem = Path(corpus_name).stem or "model"
    return Path(f"{stem}.lstm.npz")


def build_trainer(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[core.Trainer, str]:
    """Load and check everything the command line names; the ready Trainer and the corpus label."""
    overrides = _config_overrides(args)
    resumed_step = 0
    if args.resume is not None:
        ck = load_checkpoint(args.resume)  # a clear CheckpointError if missing or corrupt
        resumed_step = int(ck.meta.get("step", 0))
        trained_on = (ck.meta.get("corpus") or {}).get("name")
        if args.corpus is None and trained_on and trained_on != corpus_io.bundled_path().name:
            raise core.CheckpointError(
                f"{args.resume} was trained on {trained_on}; give that text too: "
                f"{PROG} {'train ' if args.command == 'train' else ''}{trained_on} --resume {args.resume}"
            )
    text, label = _load_corpus(args)
    steps = args.steps if args.steps is not None else 0
    controls = core.Controls()
    if args.resume is not None:
        checkpoint = Path(args.checkpoint) if args.checkpoint else Path(args.resume)
        _check_writable(checkpoint)
        total = resumed_step + steps if steps else 0
        trainer = core.Trainer.resume(
            args.resume, text, checkpoint=checkpoint, controls=controls, steps=total, **overrides
        )
    else:
        config = TrainConfig(steps=steps, **overrides)
        checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint(text.name)
        _check_writable(checkpoint)
        if checkpoint.exists():
            say(
                f"note: {checkpoint} exists and will be replaced when this run saves "
                f"(to continue training it instead: --resume {checkpoint})"
            )
        trainer = core.Trainer(text, config, checkpoint=checkpoint, controls=controls)
    return trainer, label


def describe(trainer: core.Trainer, label: str) -> list[str]:
    """What is about to be trained, for the start of a run."""
    text, cfg = trainer.corpus, trainer.config
    mc = trainer.model.config
    lines = [
        f"corpus: {label}: {text.size:,} characters, {text.vocab.size} distinct; {text.note}",
        f"model: {mc.layers} layer{'s' if mc.layers > 1 else ''} x {mc.hidden} hidden, "
        f"{mc.num_params():,} parameters ({mc.dtype}); {cfg.optimizer} lr {trainer.optimizer.lr:g}, "
        f"clip {cfg.clip:g}, dropout {cfg.dropout:g}, seed {cfg.seed}",
    ]
    shape = f"batch {trainer.batch} x seq-len {trainer.seq_len}"
    if trainer.shrunk:
        shape += (
            f" (asked for batch {cfg.batch} x seq-len {cfg.seq_len}; "
            f"the training text has only {len(text.train_ids):,} characters)"
        )
    lines.append(f"windows: {shape}")
    if trainer.step_count:
        lines.append(f"resumed at step {trainer.step_count:,} (epoch {trainer.epoch:.2f})")
    return lines


# -------------------------------------------------------------- interactive (app)
def cmd_app(args: argparse.Namespace) -> int:
    """Open the interface on a validated trainer; save on quit; print where the model went."""
    notes: list[str] = []
    trainer, label = build_trainer(args, notes.append)
    # Textual reads keys from stdin and draws on stderr.
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise core.LstmTuiError(f"the interface needs a terminal; to train without one use '{PROG} train'")
    for note in notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    try:
        from tui.app import make_app
    except ModuleNotFoundError as e:
        if e.name in ("tui.app", "textual"):
            raise core.LstmTuiError(
                f"the interface is not available in this installation ({e.name} is missing); "
                f"'{PROG} train' trains without it"
            ) from None
        raise
    app = make_app(trainer, corpus_label=label)
    old_handlers, seen = _quit_app_on_signals(app)
    try:
        app.run()
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    saved = getattr(app, "saved_path", None)
    if saved:
        print(f"model saved to {saved}", file=sys.stderr)
    else:
        print(f"{PROG}: the model was not saved", file=sys.stderr)
    if seen:
        return 128 + seen[0]
    return int(getattr(app, "return_code", None) or 0)


def _exit_after_save(app: Any, code: int) -> None:
    """After a hang-up, end the process once the model is saved. The terminal is gone, and
    Textual's shutdown can block forever writing to it; nothing is left to restore."""
    deadline = time.monotonic() + HANGUP_SAVE_S
    while getattr(app, "saved_path", None) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(HANGUP_GRACE_S)  # a normal shutdown that can still finish ends the process first
    os._exit(code)


def _quit_app_on_signals(app: Any) -> tuple[dict[int, Any], list[int]]:
    """SIGTERM and SIGHUP quit the interface the way ctrl+q does (saving the model and restoring
    the terminal) instead of killing it mid-screen. A second signal kills as usual."""
    import asyncio

    seen: list[int] = []
    old: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if seen:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        seen.append(signum)
        try:
            loop = asyncio.get_running_loop()  # the interface's loop, running in this thread
        except RuntimeError:
            raise KeyboardInterrupt from None  # not running yet (or any more): stop plainly
        loop.call_soon_threadsafe(app.call_later, app.action_quit)
        if signum == getattr(signal, "SIGHUP", None):
            threading.Thread(target=_exit_after_save, args=(app, 128 + signum), daemon=True).start()

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    return old, seen


# -------------------------------------------------------------------- headless train
def emit(stream: TextIO, text: str, end: str = "\n") -> bool:
    """Write and flush; False instead of an exception when the stream is gone (a closed pipe, a
    hung-up terminal), so that losing an output never costs the model."""
    try:
        stream.write(text + end)
        stream.flush()
        return True
    except (OSError, ValueError):
        return False


class Progress:
    """Progress on stderr: a live redrawn line on a terminal, plain periodic lines otherwise."""

    def __init__(self, stream: TextIO, quiet: bool):
        self.stream = stream
        self.quiet = quiet
        self.live = not quiet and stream.isatty()
        self.drawn = False
        self.last = -math.inf

    def _write(self, text: str) -> None:
        if not emit(self.stream, text, end=""):
            self.quiet, self.live = True, False  # the stream is gone: stop talking, keep training

    def message(self, text: str) -> None:
        """A line that stays (clears the live line first)."""
        self.clear()
        self._write(text + "\n")

    def clear(self) -> None:
        if self.drawn:
            self.drawn = False
            self._write("\r\x1b[K")

    def finish(self) -> None:
        """Leave the live line on screen as the last word on progress."""
        if self.drawn:
            self.drawn = False
            self._write("\n")

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            return shutil.get_terminal_size((80, 24)).columns

    def update(self, text: str, force: bool = False) -> None:
        """Show `text` if enough time has passed since the last update (or when forced)."""
        if self.quiet:
            return
        now = time.monotonic()
        if not force and now - self.last < (LIVE_EVERY_S if self.live else PLAIN_EVERY_S):
            return
        self.last = now
        if self.live:
            self._write("\r\x1b[K" + text[: max(20, self._width() - 1)])
            self.drawn = self.live
        else:
            self._write(text + "\n")


def _bar(done: int, total: int, width: int = 12) -> str:
    frac = min(1.0, done / total) if total else 0.0
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {int(frac * 100):3d}%"  # 100% only when done


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _visible(text: str) -> str:
    """One display cell per character: newline, tab and other controls made visible."""
    return "".join(
        "↵" if ch == "\n" else "→" if ch == "\t" else "·" if (ch < " " or "\x7f" <= ch < "\xa0") else ch for ch in text
    )


def summary_lines(ev: core.Evaluation, on_validation: bool) -> list[str]:
    """Ground truth against the model's predictions, as the original notebook printed them,
    aligned in rows with a caret under every wrong prediction."""
    n = min(ev.n, SUMMARY_CHARS)
    truth, pred = _visible(ev.truth[:n]), _visible(ev.predicted[:n])
    where = "held-out validation text" if on_validation else "training text (there is no validation split)"
    shown = f"the first {n:,} of {ev.n:,}" if n < ev.n else f"all {n:,}"
    lines = [
        f"The model's prediction of each next character, teacher-forced on {shown} characters",
        f"of the {where}; ^ marks a wrong prediction:",
    ]
    for start in range(0, n, SUMMARY_WIDTH):
        t, p = truth[start : start + SUMMARY_WIDTH], pred[start : start + SUMMARY_WIDTH]
        marks = "".join(" " if a == b else "^" for a, b in zip(t, p, strict=True)).rstrip()
        lines += [f"  truth  {t}", f"  model  {p}"] + ([f"         {marks}"] if marks else [])
    lines.append(
        f"Accuracy: {ev.accuracy:.1%} ({int(ev.correct.sum()):,} of {ev.n:,} characters); "
        f"loss {ev.loss:.4f} nats/char ({ev.bits_per_char:.3f} bits/char, perplexity {ev.perplexity:.2f})"
    )
    return lines


def _install_stop_handlers(controls: core.Controls, progress: Progress) -> tuple[dict[int, Any], list[int]]:
    """Ctrl+C, SIGTERM and SIGHUP stop training at the next step boundary so the model is saved.
    A second Ctrl+C quits at once without saving. Returns the old handlers and the signal seen."""
    seen: list[int] = []
    old: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if seen and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not seen:
            seen.append(signum)
            controls.stop()
            if signum == signal.SIGINT:
                why = "Ctrl+C: stopping and saving (Ctrl+C again to quit without saving)"
            else:
                why = f"{signal.Signals(signum).name}: stopping and saving"
            try:
                progress.message(f"{PROG}: {why}")
            except (OSError, ValueError):
                pass  # stderr gone (hang-up): still save

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    return old, seen


def cmd_train(args: argparse.Namespace) -> int:
    """Headless training: progress on stderr, --json lines on stdout, a summary, the saved model."""
    progress = Progress(sys.stderr, args.quiet)
    trainer, label = build_trainer(args, lambda s: progress.message(f"{PROG}: {s}"))
    cfg = trainer.config
    out = sys.stdout
    report_to = sys.stderr if args.json else sys.stdout
    if not args.quiet:
        for line in describe(trainer, label):
            progress.message(line)
        budget = f"for {cfg.steps - trainer.step_count:,} steps" if cfg.steps else "until Ctrl+C (or --steps N)"
        progress.message(f"training {budget}; the model is saved to {trainer.checkpoint}")
    old_handlers, seen = _install_stop_handlers(trainer.controls, progress)
    chars_per_s = 0.0
    status = ""
    json_ok = True  # False once stdout is gone (say `| head -1`): training goes on and saves
    diverged: core.DivergedReport | None = None
    try:
        for r in trainer.run():
            if isinstance(r, core.StepReport):
                chars_per_s = r.chars_per_s
                head = f"{_bar(r.step, cfg.steps)} {r.step:,}/{cfg.steps:,}" if cfg.steps else f"step {r.step:,}"
                last = trainer.last_eval
                val = f"  val {last.val_loss:.3f}  acc {last.accuracy:.0%}" if last else ""
                status = (
                    f"{head}  loss {r.smooth_loss:.3f}{val}  {r.chars_per_s:,.0f} chars/s  "
                    f"{_clock(r.elapsed_s)}  epoch {r.epoch:.1f}"
                )
                progress.update(status, force=cfg.steps > 0 and r.step == cfg.steps)
            elif isinstance(r, core.EvalReport):
                if args.json and json_ok:
                    record = {
                        "step": r.step,
                        "epoch": round(r.epoch, 4),
                        "elapsed_s": round(trainer.elapsed_s, 3),
                        "train_loss": _finite(r.train_loss),
                        "val_loss": _finite(r.val_loss),
                        "accuracy": r.accuracy,
                        "chars_per_s": round(chars_per_s, 1),
                        "val_bits_per_char": _finite(r.evaluation.bits_per_char),
                        "on_validation": r.on_validation,
                        "best": r.best,
                        "lr": trainer.optimizer.lr,
                    }
                    json_ok = json_ok and emit(out, json.dumps(record))
                if not progress.live and status:
                    progress.update(status)
            elif isinstance(r, core.SaveReport):
                if r.error:
                    progress.message(f"{PROG}: warning: {r.error}")
            elif isinstance(r, core.DivergedReport):
                diverged = r
                break
        progress.finish()
        saved = trainer.save()
    except core.CheckpointError as e:
        progress.clear()
        emit(sys.stderr, f"{PROG}: error: {e}; the model was not saved")
        return EXIT_FAILED
    except KeyboardInterrupt:
        progress.clear()
        emit(sys.stderr, f"{PROG}: interrupted; the model was not saved")
        return EXIT_INTERRUPTED
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
    if diverged is not None:
        emit(
            sys.stderr,
            f"{PROG}: error: training diverged at step {diverged.step} (loss or gradient became non-finite); "
            f"the last finite weights were saved to {saved}; try a lower --lr (now {trainer.optimizer.lr:g})",
        )
        return EXIT_FAILED
    try:
        ev = trainer.last_eval if trainer.last_eval and trainer.last_eval.step == trainer.step_count else None
        ev = ev or trainer.evaluate()
        lines = ["", *summary_lines(ev.evaluation, ev.on_validation)]
        took = f"{trainer.step_count:,} steps ({trainer.epoch:.2f} epochs) in {trainer.elapsed_s:.1f} s"
        lines.append(f"Trained {took}; {chars_per_s:,.0f} chars/s.")
        best = best_path(saved)
        if best.exists() and trainer.corpus.split:
            lines.append(f"Best validation weights: {best}")
        emit(report_to, "\n".join(lines))
    except KeyboardInterrupt:
        pass
    finally:
        emit(sys.stderr, f"model saved to {saved}")
    if seen:
        return 128 + seen[0]
    return EXIT_OK


# --------------------------------------------------------------------------- sample
def cmd_sample(args: argparse.Namespace) -> int:
    """Stream generated characters to stdout, flushing each one so the text appears as it comes."""
    check_settings(args.temperature, args.top_k, args.top_p)
    ck = load_checkpoint(args.checkpoint)
    ids, skipped = ck.vocab.encode_known(args.prime)
    if skipped:
        shown = ", ".join(repr(ch) for ch in skipped[:10]) + (", ..." if len(skipped) > 10 else "")
        print(
            f"{PROG}: warning: skipped {len(skipped)} prime character{'s' if len(skipped) > 1 else ''} "
            f"the model never saw: {shown}",
            file=sys.stderr,
        )
    rng = np.random.default_rng(args.seed)
    out = sys.stdout
    stream = core.generate(ck.model, ids, args.length, rng, args.temperature, args.top_k, args.top_p)
    last = ""
    try:
        if len(ids):
            last = ck.vocab.decode(ids)
            out.write(last)
            out.flush()
        for i in stream:
            last = ck.vocab.chars[i]
            out.write(last)
            out.flush()
        if out.isatty() and not last.endswith("\n"):
            out.write("\n")
        out.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at /dev/null so the
        # interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, out.fileno())
        os.close(devnull)
    return EXIT_OK


# ----------------------------------------------------------------------------- main
def _quiet_encoding_errors() -> None:
    """A terminal that cannot show a character gets '?' instead of a crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):
                pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `lstm-tui` script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in COMMANDS else None
    _quiet_encoding_errors()
    try:
        if command in DELEGATED:
            return cmd_delegated(command, args_list[1:])
        if command == "sample":
            return cmd_sample(sample_parser().parse_args(args_list[1:]))
        if command == "train":
            args = train_parser().parse_args(args_list[1:])
            args.command = "train"
            return cmd_train(args)
        args = app_parser().parse_args(args_list)
        args.command = None
        return cmd_app(args)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except core.LstmTuiError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(f"{PROG}: error: out of memory; try a smaller --hidden, --layers, --batch or --seq-len", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as e:  # --help and --version end parsing this way; return their code instead
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)


if __name__ == "__main__":
    sys.exit(main())
