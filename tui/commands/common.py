"""What the commands share beyond option parsing: building a trainer from the options, progress
and summaries on a terminal or a pipe, and the handlers that turn signals into a clean stop.

Imports neither Textual nor the commands: the headless commands use it.

Exit codes: 0 success; 1 training diverged or the model could not be saved; 2 bad usage or bad
input; 130 interrupted (Ctrl+C); 143 terminated (SIGTERM); 129 hang-up (SIGHUP).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import core
from core import corpus as corpus_io
from core import recipe
from core.checkpoint import load as load_checkpoint
from core.config import TrainConfig
from core.engine import EngineFactory, NumpyEngineFactory
from core.evaluate import COLD_BLOCK

from ..plain import threads
from . import COMMANDS, opens_a_model
from .options import PROG

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


# ------------------------------------------------------------- building a trainer
def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields the user gave on the command line (steps handled by the caller)."""
    names = "cell hidden layers seq_len batch lr lr_decay average optimizer clip dropout seed eval_every eval_chars"
    names += " save_every"
    names += " dtype init_state"
    names += " heads block bias weight_decay beta2 warmup schedule min_lr"
    names += " windows reset_prob"
    return {n: getattr(args, n) for n in names.split() if getattr(args, n) is not None}


def load_corpus(args: argparse.Namespace) -> tuple[corpus_io.Corpus, str]:
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
        if opens_a_model(args.corpus):
            raise core.CorpusError(
                f"{path} is a saved model, not a text: '{PROG} play {path}' opens it, "
                f"'--resume {path}' trains it further"
            )
    text = corpus_io.load(path, encoding=args.encoding, lowercase=args.lowercase, val_fraction=args.val_fraction)
    return text, label


def check_writable(path: Path) -> Path | None:
    """Raise CheckpointError early if the checkpoint could never be written at `path`; the first
    folder on its way that does not exist yet (the save creates it), or None."""
    if path.is_dir():
        raise core.CheckpointError(f"--checkpoint {path} is a directory; give a file name such as {path}/model.npz")
    folder, missing = path.parent, None
    while not folder.exists() and folder != folder.parent:
        folder, missing = folder.parent, folder
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise core.CheckpointError(f"cannot save the model to {path}: {folder} is not a writable directory")
    return missing


def folder_note(path: Path, missing: Path | None) -> str | None:
    """The note for a checkpoint whose folder does not exist yet (None when it does)."""
    if missing is None:
        return None
    return f"note: the folder {path.parent} does not exist; it is created when the model is first saved to {path}"


def default_checkpoint(corpus_name: str, cell: str) -> Path:
    """./<corpus stem>.<model>.npz in the current directory: hamlet.lstm.npz, book.gru.npz."""
    stem = Path(corpus_name).stem or "model"
    return Path(f"{stem}.{cell}.npz")


def choose_recipe(text: corpus_io.Corpus, given: dict[str, Any], measure: bool = True) -> recipe.Recipe:
    """The settings for this text (core.recipe), around those given on the command line. The
    machine's speed is measured on one thread with one BLAS thread (tui.plain.threads), as the
    recipe's defaults were fitted; more threads, when the measurement at the start chooses them,
    only make the chosen model train faster. With `measure` False (the torch engine, whose speed
    is not this CPU's, and whose torchrun processes must all choose the same model) the reference
    speed is used instead."""
    from ..plain.threads import limit_threads

    flops = None if measure else recipe.REFERENCE_FLOPS
    with limit_threads():
        return recipe.choose(len(text.train_ids), text.vocab.size, given, flops=flops)


def distributed_rank() -> int | None:
    """This process's rank when launched by torchrun with more than one process, else None."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return int(os.environ.get("RANK", "0") or 0)
    return None


def engine(args: argparse.Namespace) -> EngineFactory:
    """The engine factory of --engine (core's NumPy engine, on the threads chosen once the trainer
    exists: choose_threads); PyTorch is imported only when asked for."""
    name = getattr(args, "engine", None) or "numpy"
    device = getattr(args, "device", None)
    if name != "torch":
        if device is not None:
            raise core.LstmTuiError(f"--device {device} needs --engine torch (the numpy engine runs on the CPU)")
        if distributed_rank() is not None:
            raise core.LstmTuiError("under torchrun, train with --engine torch (the numpy engine is one process)")
        return NumpyEngineFactory(1)
    if distributed_rank() is not None and args.command != "train":
        raise core.LstmTuiError(f"under torchrun, use '{PROG} train --engine torch' (the interface is one process)")
    try:
        from tui.pytorch.engine import torch_engine
    except ImportError as e:
        if (e.name or "").split(".")[0] != "torch":
            raise
        raise core.LstmTuiError(
            "--engine torch needs PyTorch, which is not installed: pip install 'lstm-tui[torch]'"
        ) from None
    return torch_engine(device)


def build_trainer(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[core.Trainer, str]:
    """Load and check everything the command line names; the ready Trainer and the corpus label.
    `say` gets the notes for the user: what was chosen and why, what a resumed run carried over,
    and every file the run will write or replace that held something before."""
    factory = engine(args)
    overrides = config_overrides(args)
    saved_threads = None
    if args.resume is not None:
        ck = load_checkpoint(args.resume)  # a clear CheckpointError if missing or corrupt
        saved_threads = {"threads": ck.meta.get("threads"), "wavefront": ck.meta.get("wavefront")}
        trained_on = (ck.meta.get("corpus") or {}).get("name")
        if args.corpus is None and trained_on and trained_on != corpus_io.bundled_path().name:
            raise core.CheckpointError(
                f"{args.resume} was trained on {trained_on}; give that text too: "
                f"{PROG} {'train ' if args.command == 'train' else ''}{trained_on} --resume {args.resume}"
            )
    text, label = load_corpus(args)
    steps = args.steps if args.steps is not None else 0
    seconds = getattr(args, "seconds", None) or 0.0
    controls = core.Controls()
    if args.resume is not None:
        checkpoint = Path(args.checkpoint) if args.checkpoint else Path(args.resume)
        missing = check_writable(checkpoint)
        trainer = core.Trainer.resume(
            args.resume,
            text,
            checkpoint=checkpoint,
            controls=controls,
            engine=factory,
            steps=steps,
            seconds=seconds,
            **overrides,
        )
        notes = resume_notes(trainer)
    else:
        chosen = choose_recipe(text, overrides, measure=isinstance(factory, NumpyEngineFactory))
        config = TrainConfig(steps=steps, seconds=seconds, **chosen.settings)  # checked before anything is said
        checkpoint = Path(args.checkpoint) if args.checkpoint else default_checkpoint(text.name, config.cell)
        missing = check_writable(checkpoint)
        trainer = core.Trainer(text, config, checkpoint=checkpoint, controls=controls, engine=factory)
        notes = [chosen.reason]
    choose_threads(trainer, args, notes.append, saved_threads, factory=factory)  # measured now, said in turn
    notes += [n for n in (folder_note(checkpoint, missing), *file_notes(trainer, args.resume)) if n]
    for note in notes:  # said once everything has been checked: bad input stays one line
        say(note)
    return trainer, label


def resume_notes(trainer: core.Trainer) -> list[str]:
    """What a resumed run carried over and what starts afresh, and what it continues on."""
    r = trainer.resumed
    if r is None:
        return []
    origin = f" (imported from {r.imported_from})" if r.imported_from else ""
    line = f"resumed {r.path}{origin} at step {r.step:,}: carried over {_words(r.carried)}"
    if r.fresh:
        line += f"; starting afresh: {_words(r.fresh)}"
    lines = [line]
    if r.warmup_steps:
        lr = trainer.optimizer.lr
        lines.append(
            f"note: {r.path} holds no optimizer state, so the learning rate warms up from {lr / r.warmup_steps:.2g} "
            f"to {lr:g} over the next {r.warmup_steps} steps (a full rate at once would undo much of what it learned)"
        )
    if r.trained_on:
        lines.append(
            f"note: {r.path} was trained on {r.trained_on}; it continues on {trainer.corpus.name} (fine-tuning): "
            "its streams start afresh and its scores start over"
        )
    if r.text_chars < r.model_chars:
        lines.append(
            f"note: {trainer.corpus.name} uses {r.text_chars} of the model's {r.model_chars} characters; "
            "it is read with the model's vocabulary"
        )
    return lines


def _words(items: tuple[str, ...]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def file_notes(trainer: core.Trainer, resumed_from: str | None = None, checkpoint: bool = True) -> list[str]:
    """A line for every file this run will replace that holds something now (the checkpoint too
    unless `checkpoint` is False), and for a best-model file under another name than usual (core.best)."""
    notes = []
    path = trainer.checkpoint
    own = resumed_from is not None and path is not None and _same_file(path, Path(resumed_from))
    if checkpoint and path is not None and path.exists() and not own:
        notes.append(
            f"note: {path} exists and will be replaced when this run saves "
            f"(to continue training it instead: --resume {path})"
        )
    plan = trainer.best_plan
    if plan is None:
        return notes
    for path, what in plan.passed:
        notes.append(f"note: {path} holds {what}, and is kept; this run keeps its best weights in {plan.path}")
    held = plan.held
    if held is not None and not held.own:
        notes.append(
            f"note: {plan.path} holds another run's model of this text (val {held.val_loss:.3f} @{held.step:,}); "
            "this run replaces it only with a lower validation loss"
        )
    return notes


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def files_line(trainer: core.Trainer) -> str:
    """Where this run saves: its checkpoint, and its best weights when text is held out."""
    line = f"the model is saved to {trainer.checkpoint}"
    plan = trainer.best_plan
    if plan is not None:
        line += f", its best weights on the validation text to {plan.path}"
        if plan.held is not None:
            line += f" (now val {plan.held.val_loss:.3f} @{plan.held.step:,}: replaced only by a lower loss)"
    return line


def score(ev: core.EvalReport | None) -> str:
    """An evaluation as the progress lines show it, one-pass and cold-start, with the step it belongs
    to: 'val 1.970 cold 2.012 @436'."""
    if ev is None:
        return ""
    sample = f" ({ev.chars // 1000}k sample)" if ev.sample and ev.chars >= 1000 else " (sample)" if ev.sample else ""
    cold = f" cold {ev.cold_loss:.3f}" if ev.cold_loss is not None else ""
    return f"val {ev.val_loss:.3f}{cold} @{ev.step:,}{sample}"


def choose_threads(
    trainer: core.Trainer,
    args: argparse.Namespace,
    say: Callable[[str], None],
    saved: Any = None,
    budget_s: float = threads.CALIBRATE_S,
    who: str = "",
    factory: EngineFactory | None = None,
) -> threads.Choice:
    """The thread count `trainer` trains with (--threads, or measured now: tui.plain.threads), set
    on its engine together with the BLAS limit it needs, and said in one line (after `who`). `saved`:
    the count a resumed checkpoint trained on (the line says how to repeat it exactly, if it differs)."""
    choice = threads.choose(trainer, getattr(args, "threads", None), budget_s, bool(getattr(args, "wavefront", False)))
    threads.apply(trainer, choice, factory)
    line = who + choice.line()
    if isinstance(saved, dict) and isinstance(trainer.engine, core.NumpyEngine):
        n, wave = saved.get("threads"), bool(saved.get("wavefront"))
        if isinstance(n, int) and (n, wave) != (choice.threads, choice.wavefront):
            again = f"--threads {n}" + (" --wavefront" if wave else "")
            how = f"{n}{' as a wavefront' if wave else ''}"
            line += f"; the checkpoint trained on {how}: {again} would continue it bit for bit"
    say(line)
    return choice


def eval_record(r: core.EvalReport, trainer: core.Trainer, chars_per_s: float) -> dict[str, Any]:
    """The JSON record of one evaluation (`train --json`, `race --json`, `--log`); losses in nats/char."""
    return {
        "step": r.step,
        "epoch": round(r.epoch, 4),
        "elapsed_s": round(trainer.elapsed_s, 3),
        "train_loss": finite(r.train_loss),
        "val_loss": finite(r.val_loss),
        "val_cold_loss": finite(r.cold_loss) if r.cold_loss is not None else None,
        "val_chars": r.chars,
        "val_sample": r.sample,
        "accuracy": r.accuracy,
        "chars_per_s": round(chars_per_s, 1),
        "val_bits_per_char": finite(r.evaluation.bits_per_char),
        "on_validation": r.on_validation,
        "best": r.best,
        "final": r.final,
        "lr": trainer.optimizer.lr,
    }


def optimizer_text(trainer: core.Trainer) -> str:
    """The update rule and the rate's schedule in a few words: "adam lr 0.01", "adamw lr 0.001
    (decay 0.1, beta2 0.99), warm-up 100 steps, cosine to 0.0001 over 2,000 steps"."""
    cfg = trainer.config
    text = f"{cfg.optimizer} lr {trainer.base_lr:g}"
    if cfg.weight_decay:
        text = f"adamw lr {trainer.base_lr:g} (decay {cfg.weight_decay:g}"
        text += f", beta2 {cfg.beta2:g})" if cfg.beta2 != 0.999 else ")"
    elif cfg.optimizer == "adam" and cfg.beta2 != 0.999:
        text += f" (beta2 {cfg.beta2:g})"
    if cfg.warmup:
        text += f", warm-up {cfg.warmup:,} steps"
    if cfg.schedule == "cosine":
        span = " or ".join(
            ([f"{cfg.steps:,} steps"] if cfg.steps else []) + ([f"{cfg.seconds:g} s"] if cfg.seconds else [])
        )
        floor = f"cosine to {cfg.lr * cfg.min_lr:g}"
        text += f", {floor} over {span}" if span else ", no cosine (the run has no end: give --steps or --seconds)"
    return text


def describe(trainer: core.Trainer, label: str) -> list[str]:
    """What is about to be trained, for the start of a run."""
    text, cfg = trainer.corpus, trainer.config
    mc = trainer.model.config
    lines = [
        f"corpus: {label}: {text.size:,} characters, {text.vocab.size} distinct; {text.note}",
        f"model: {trainer.model.title}, {trainer.model.shape_text(mc)}, "
        f"{trainer.model.num_params(mc):,} parameters ({mc.dtype}); {optimizer_text(trainer)}, "
        f"clip {cfg.clip:g}, dropout {cfg.dropout:g}, seed {cfg.seed}",
    ]
    shape = f"batch {trainer.batch} x seq-len {trainer.seq_len}"
    if trainer.shrunk:
        shape += (
            f" (asked for batch {cfg.batch} x seq-len {cfg.seq_len}; "
            f"the training text has only {len(text.train_ids):,} characters)"
        )
    if cfg.windows == "random":
        shape += ", each at a random place, read from a blank state"
    elif cfg.reset_prob:
        shape += f", state carried; each starts blank with chance {cfg.reset_prob:g}"
    else:
        shape += ", state carried"
    lines.append(f"windows: {shape}")
    engine_line = trainer.engine.describe()
    if engine_line is not None:
        lines.append(f"engine: {engine_line}")
    return lines


# ------------------------------------------------------- progress and summaries
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


def bar(done: int, total: int, width: int = 12) -> str:
    frac = min(1.0, done / total) if total else 0.0
    filled = int(frac * width)
    return f"[{'#' * filled}{'.' * (width - filled)}] {int(frac * 100):3d}%"  # 100% only when done


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def visible(text: str) -> str:
    """One display cell per character: newline, tab and other controls made visible."""
    return "".join(
        "↵" if ch == "\n" else "→" if ch == "\t" else "·" if (ch < " " or "\x7f" <= ch < "\xa0") else ch for ch in text
    )


def summary_lines(ev: core.Evaluation, on_validation: bool, step: int | None = None) -> list[str]:
    """Ground truth against the model's predictions, as the original notebook printed them,
    aligned in rows with a caret under every wrong prediction."""
    n = min(ev.n, SUMMARY_CHARS)
    truth, pred = visible(ev.truth[:n]), visible(ev.predicted[:n])
    where = "held-out validation text" if on_validation else "training text (there is no validation split)"
    shown = f"the first {n:,} of {ev.n:,}" if n < ev.n else f"all {n:,}"
    model = f"The model's (at step {step:,})" if step is not None else "The model's"
    lines = [
        f"{model} prediction of each next character, teacher-forced on {shown} characters",
        f"of the {where}; ^ marks a wrong prediction:",
    ]
    for start in range(0, n, SUMMARY_WIDTH):
        t, p = truth[start : start + SUMMARY_WIDTH], pred[start : start + SUMMARY_WIDTH]
        marks = "".join(" " if a == b else "^" for a, b in zip(t, p, strict=True)).rstrip()
        lines += [f"  truth  {t}", f"  model  {p}"] + ([f"         {marks}"] if marks else [])
    lines.append(
        f"Accuracy: {ev.accuracy:.1%} ({round(ev.accuracy * ev.n):,} of {ev.n:,} characters); "
        f"loss {ev.loss:.4f} nats/char ({ev.bits_per_char:.3f} bits/char, perplexity {ev.perplexity:.2f})"
    )
    if ev.cold is not None:
        lines.append(cold_line(ev.cold))
    return lines


def cold_line(cold: core.Evaluation) -> str:
    """The cold-start score in a line: the loss read in blocks from a blank state, and its warm-up."""
    at = cold.by_position
    warm = ""
    if at is not None and len(at) >= 16:
        warm = f"; {at[:8].mean():.3f} over a block's first 8 characters, {at[-1]:.3f} at its last"
    block = len(at) if at is not None else COLD_BLOCK
    return (
        f"Cold start (each {block}-character block read from a blank state): loss {cold.loss:.4f} nats/char "
        f"({cold.bits_per_char:.3f} bits/char){warm}"
    )


# ------------------------------------------------------------------- signals
def install_stop_handlers(controls: core.Controls, progress: Progress) -> tuple[dict[int, Any], list[int]]:
    """Ctrl+C, SIGTERM and SIGHUP stop training at the next step boundary so the model is saved.
    After Ctrl+C the weights the run ends with are scored first (to keep them as the best model if
    they are); SIGTERM and SIGHUP, which may come from a machine shutting down, save without that.
    A second Ctrl+C quits at once without saving. Returns the old handlers and the signal seen."""
    seen: list[int] = []
    old: dict[int, Any] = {}

    def handler(signum: int, _frame: Any) -> None:
        if seen and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not seen:
            seen.append(signum)
            if signum == signal.SIGINT:
                controls.stop()
                why = "Ctrl+C: stopping, scoring the final weights and saving (Ctrl+C again to quit without saving)"
            else:
                controls.stop(evaluate=False)
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


def exit_after_save(app: Any, code: int, saves: bool = True) -> None:
    """After a hang-up, end the process once the model is saved (if the app saves on quit). The
    terminal is gone, and Textual's shutdown can block forever writing to it; nothing is left to
    restore."""
    deadline = time.monotonic() + (HANGUP_SAVE_S if saves else 0.0)
    while getattr(app, "saved_path", None) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(HANGUP_GRACE_S)  # a normal shutdown that can still finish ends the process first
    os._exit(code)


def interface(module: str, name: str, without: str = "") -> Any:
    """`name` from the interface module `module`, imported now (Textual with it); a one-line
    LstmTuiError, ending with `without` (what works instead), if this installation lacks it."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as e:
        if e.name in (module, "textual"):
            raise core.LstmTuiError(
                f"the interface is not available in this installation ({e.name} is missing)" + without
            ) from None
        raise


def restore_handlers(old: dict[int, Any]) -> None:
    """Put back the signal handlers that install_stop_handlers or quit_app_on_signals replaced."""
    for sig, h in old.items():
        signal.signal(sig, h)


def run_interface(app: Any, saves: bool = True) -> int:
    """Run `app` with SIGTERM and SIGHUP quitting it as ctrl+q does (quit_app_on_signals); the
    exit code: 128 + the signal that quit it, else the app's own."""
    old_handlers, seen = quit_app_on_signals(app, saves)
    try:
        app.run()
    finally:
        restore_handlers(old_handlers)
    if seen:
        return 128 + seen[0]
    return int(getattr(app, "return_code", None) or 0)


def quit_app_on_signals(app: Any, saves: bool = True) -> tuple[dict[int, Any], list[int]]:
    """SIGTERM and SIGHUP quit the interface the way ctrl+q does (saving the model, if `saves`,
    and restoring the terminal) instead of killing it mid-screen. A second signal kills as usual."""
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
            threading.Thread(target=exit_after_save, args=(app, 128 + signum, saves), daemon=True).start()

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            old[sig] = signal.signal(sig, handler)
    return old, seen
