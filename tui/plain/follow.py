"""Following a run that another process trains: its checkpoint and its log, only ever read.

No Textual here: `tui.apps.watch` runs `Follower.poll()` and `LogTail.read()` in thread workers
and shows what they return, and `lstm-tui watch` checks its input with `load` before any screen
is drawn. Nothing in this module opens a file for writing.

A save is an atomic rename, so a checkpoint is read from one open file (core.checkpoint.read):
if the path is replaced meanwhile, the file read is still the whole one that was opened. A read
that fails (the file vanished, is truncated, is not a checkpoint) is reported once per version
of the file, and the caller keeps the last good model.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core import CharModel, Vocab, generate
from core import corpus as corpus_io
from core.checkpoint import Checkpoint, read
from core.config import TrainConfig
from core.errors import CheckpointError, LstmTuiError
from core.sampling import prime_for
from core.trainer import StepReport

from .curve import CurveFrame, LossCurve

GENERATED_CHARS = 480  # characters the model writes when its training text is not at hand


@dataclass(frozen=True)
class Stamp:
    """Which version of a file: replaced (new inode), rewritten (mtime, size)."""

    ino: int
    mtime_ns: int
    size: int

    @classmethod
    def of(cls, st: os.stat_result) -> Stamp:
        return cls(st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, eq=False)
class Loaded:
    """One good read of the checkpoint: the model and the run's counters when it was saved."""

    checkpoint: Checkpoint
    stamp: Stamp
    saved_at: float  # the file's modification time (seconds since the epoch): when the save arrived

    @property
    def model(self) -> CharModel:
        return self.checkpoint.model

    @property
    def vocab(self) -> Vocab:
        return self.checkpoint.vocab

    @property
    def meta(self) -> dict[str, Any]:
        return self.checkpoint.meta

    @property
    def step(self) -> int:
        return int(self.meta.get("step", 0))

    @property
    def elapsed_s(self) -> float:
        return float(self.meta.get("elapsed_s", 0.0))

    @property
    def chars_seen(self) -> int:
        return int(self.meta.get("chars_seen", 0))

    @property
    def config(self) -> TrainConfig:
        try:
            return TrainConfig.from_dict(self.meta.get("train") or {})
        except (TypeError, LstmTuiError):
            return TrainConfig()

    @property
    def loss_history(self) -> list[float]:
        return [float(v) for v in self.checkpoint.arrays.get("history/loss", np.zeros(0))]

    @property
    def val_history(self) -> list[tuple[int, float]]:
        steps = self.checkpoint.arrays.get("history/val_step", np.zeros(0, np.int64))
        losses = self.checkpoint.arrays.get("history/val_loss", np.zeros(0))
        return [(int(s), float(v)) for s, v in zip(steps, losses, strict=False)]

    @property
    def cold_history(self) -> list[float]:
        """The cold-start score of each evaluation in val_history (nan where it was not taken)."""
        return [float(v) for v in self.checkpoint.arrays.get("history/val_cold_loss", np.zeros(0))]

    def step_report(self, chars_per_s: float) -> StepReport:
        """The run as it was at this save, in the form the stats panel shows."""
        meta = self.meta
        history = self.checkpoint.arrays.get("history/loss", np.zeros(0))
        smooth = float(meta.get("smooth_loss", float("nan")))
        return StepReport(
            step=self.step,
            epoch=float(meta.get("epoch", 0.0)),
            loss=float(history[-1]) if len(history) else smooth,
            smooth_loss=smooth,
            chars_per_s=chars_per_s,
            lr=float(meta.get("optimizer_lr", self.config.lr)),
            grad_norm=float("nan"),
            elapsed_s=self.elapsed_s,
        )


@dataclass(frozen=True)
class Failed:
    """A read of the checkpoint that gave no model: why, in one line."""

    reason: str
    vanished: bool = False


def load(path: Path) -> Loaded:
    """Read the checkpoint at `path` once, from one open file; CheckpointError if it is not one."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise CheckpointError(f"no such checkpoint: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        st = os.fstat(f.fileno())
        return Loaded(read(f, path), Stamp.of(st), st.st_mtime)


def wait_for(path: Path, poll_s: float = 0.5, sleep: Callable[[float], object] = time.sleep) -> Loaded:
    """Read the checkpoint at `path` once it exists (a run writes its first save after a while),
    checking every `poll_s`. A file that appears and is not a checkpoint is a CheckpointError."""
    while True:
        try:
            return load(path)
        except CheckpointError:
            if os.path.lexists(path):
                raise
        sleep(poll_s)


class Follower:
    """Polls one checkpoint path: a new good read when the file changed, a failure once per version.

    Use from one thread at a time (the app runs one poll at a time).
    """

    def __init__(self, path: str | os.PathLike[str], first: Loaded | None = None) -> None:
        self.path = Path(path)
        self.stamp: Stamp | None = first.stamp if first is not None else None  # the version last read
        self._failure: tuple[Stamp | None, str] | None = None  # the failure last reported
        self.reads = 0  # checkpoint reads attempted
        self.read_at = 0.0  # time.monotonic() when the last read started
        self.read_s = 0.0  # how long it took

    def poll(self) -> Loaded | Failed | None:
        """What changed since the last poll: a Loaded model, a Failed read, or None (nothing new)."""
        try:
            stamp = Stamp.of(os.stat(self.path))
        except FileNotFoundError:
            return self._failed(None, f"{self.path} is gone", vanished=True)
        except OSError as e:
            return self._failed(None, f"cannot read {self.path}: {e.strerror or e}")
        if stamp == self.stamp:
            return None
        self.reads += 1
        self.read_at = time.monotonic()
        try:
            loaded = load(self.path)
        except CheckpointError as e:
            return self._failed(stamp, str(e), vanished=str(e).startswith("no such checkpoint"))
        except OSError as e:  # a failure of the read itself, not caught as a bad checkpoint
            return self._failed(stamp, f"cannot read {self.path}: {e.strerror or e}")
        finally:
            self.read_s = time.monotonic() - self.read_at
        self.stamp, self._failure = loaded.stamp, None
        return loaded

    def forget(self) -> None:
        """Read the file at the next poll even if it did not change."""
        self.stamp, self._failure = None, None

    def _failed(self, stamp: Stamp | None, reason: str, vanished: bool = False) -> Failed | None:
        """A failure, reported once for each version of the file (and once while it is missing)."""
        self.stamp = stamp
        if self._failure == (stamp, reason):
            return None
        self._failure = (stamp, reason)
        return Failed(reason, vanished)


class LogTail:
    """Reads the JSON lines a `train --log` appends, as they come; starts over if the file is replaced
    or truncated. Lines that are not JSON objects with a step are skipped."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.ino: int | None = None
        self.offset = 0
        self.partial = b""

    def read(self) -> tuple[list[dict[str, Any]], bool] | None:
        """(new records, whether they start over) or None when nothing changed or there is no log."""
        try:
            f = open(self.path, "rb")
        except OSError:
            return None
        with f:
            st = os.fstat(f.fileno())
            restart = st.st_ino != self.ino or st.st_size < self.offset
            if restart:
                self.ino, self.offset, self.partial = st.st_ino, 0, b""
            elif st.st_size == self.offset:
                return None
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()  # an unfinished last line waits for the rest
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
        return records, restart


def current_run(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the latest run in an appended log: from the last point the steps went back."""
    start = 0
    for i in range(1, len(records)):
        if records[i]["step"] <= records[i - 1]["step"]:  # a new run, or one resumed from an older save
            start = i
    return records[start:]


def _number(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def curve(loaded: Loaded, records: list[dict[str, Any]]) -> CurveFrame:
    """The loss curve: every step the checkpoint remembers, then the log's evaluations after it."""

    cfg = loaded.config
    losses = loaded.loss_history
    c = LossCurve.from_history(losses, loaded.val_history, loaded.step, cfg.smoothing)
    for r in current_run(records):
        if r["step"] <= loaded.step:
            continue
        train = _number(r, "train_loss")
        if train is not None:
            c.add(r["step"], train, train)  # the log has the smoothed loss at each evaluation
        val = _number(r, "val_loss")
        if val is not None:
            c.add_val(r["step"], val)
    return c.frame()


def newer_report(loaded: Loaded, records: list[dict[str, Any]]) -> StepReport | None:
    """The run's latest state from the log, if the log is ahead of the checkpoint."""
    run = current_run(records)
    if not run or run[-1]["step"] <= loaded.step:
        return None
    r = run[-1]
    loss = _number(r, "train_loss")
    return StepReport(
        step=r["step"],
        epoch=_number(r, "epoch") or 0.0,
        loss=loss if loss is not None else float("nan"),
        smooth_loss=loss if loss is not None else float("nan"),
        chars_per_s=_number(r, "chars_per_s") or 0.0,
        lr=_number(r, "lr") or loaded.config.lr,
        grad_norm=float("nan"),
        elapsed_s=_number(r, "elapsed_s") or 0.0,
    )


@dataclass(frozen=True)
class RunScore:
    """The run's own evaluation (what its log or checkpoint recorded), in the form the stats show."""

    step: int
    val_loss: float
    accuracy: float  # nan when only the checkpoint's history is at hand (it keeps losses only)
    on_validation: bool
    sample: bool = False  # scored on the start of the evaluation text only (--eval-chars)
    cold_loss: float | None = None  # the cold-start score, when the log or checkpoint has it


def run_score(loaded: Loaded, records: list[dict[str, Any]]) -> RunScore | None:
    """The run's latest evaluation of the weights up to this save: the log's record when it has
    one (with its accuracy), else the checkpoint's history. None before the first evaluation."""
    split = bool((loaded.meta.get("corpus") or {}).get("split", True))
    history = loaded.val_history
    best = history[-1] if history and history[-1][0] <= loaded.step else None
    for r in reversed(current_run(records)):
        val = _number(r, "val_loss")
        if r["step"] > loaded.step or val is None:
            continue
        if best is not None and best[0] > r["step"]:
            break  # the checkpoint knows a later one
        accuracy = _number(r, "accuracy")
        return RunScore(
            step=r["step"],
            val_loss=val,
            accuracy=accuracy if accuracy is not None else float("nan"),
            on_validation=bool(r.get("on_validation", split)),
            sample=bool(r.get("val_sample", False)),
            cold_loss=_number(r, "val_cold_loss"),
        )
    if best is None:
        return None
    cold = loaded.cold_history[len(history) - 1] if len(loaded.cold_history) == len(history) else math.nan
    return RunScore(
        step=best[0],
        val_loss=best[1],
        accuracy=float("nan"),
        on_validation=split,
        cold_loss=cold if math.isfinite(cold) else None,
    )


def speed(new: Loaded, old: Loaded | None) -> float:
    """Training characters per second: between the last two saves, else over the whole run."""
    if old is not None:
        d_chars, d_time = new.chars_seen - old.chars_seen, new.elapsed_s - old.elapsed_s
        if d_chars > 0 and d_time > 0:
            return d_chars / d_time
    return new.chars_seen / new.elapsed_s if new.elapsed_s > 0 else 0.0


# --------------------------------------------------------------------------- the text
def find_corpus(
    loaded: Loaded | Checkpoint, checkpoint: Path, given: str | None = None, encoding: str = "utf-8"
) -> tuple[corpus_io.Corpus | None, str]:
    """The text the model (a read of `checkpoint`) was trained on, split as it was, and a note on
    where it came from.

    `given` (watch --corpus) must be that text (CorpusError/CheckpointError otherwise); without it
    the file is looked for where the run read it, beside the checkpoint (by name), in the current
    directory, and among the bundled texts. (None, why) when it is not found.
    """
    info = loaded.meta.get("corpus") or {}
    name = info.get("name")
    if given is not None:
        text = corpus_io.load(given, encoding=encoding)
        found = _as_trained(text, loaded)
        if found is None:
            raise CheckpointError(
                f"{given} is not the text {checkpoint} was trained on"
                + (f" ({name}, {info.get('size', 0):,} characters)" if name else "")
            )
        return found, f"{given}"
    if not name:
        return None, "the checkpoint does not name its training text"
    candidates = [checkpoint.parent / name, Path(name)]
    if isinstance(info.get("path"), str):
        candidates.insert(0, Path(info["path"]))  # where the run read it, if this machine sees it
    try:
        bundled = corpus_io.bundled_path()
        if bundled.name == name:
            candidates.append(bundled)
    except LstmTuiError:
        pass
    for path in candidates:
        if not path.is_file():
            continue
        try:
            text = corpus_io.load(path, encoding=encoding)
        except LstmTuiError:
            continue
        found = _as_trained(text, loaded)
        if found is not None:
            return found, str(path)
    return (
        None,
        f"{name}, the training text, is not where the run read it, beside the checkpoint or here (give --corpus FILE)",
    )


def _as_trained(text: corpus_io.Corpus, loaded: Loaded | Checkpoint) -> corpus_io.Corpus | None:
    """`text` split as the run split it, or None if it is not the text the model learned."""
    info = loaded.meta.get("corpus") or {}
    if text.vocab != loaded.vocab:
        lower = corpus_io.from_text(text.text(), name=text.name, lowercase=True)  # trained with --lowercase?
        for candidate in (text, lower):
            try:  # (a model fine-tuned on a text that uses only some of its characters reads it so)
                read = candidate.with_vocab(loaded.vocab)
            except LstmTuiError:
                continue
            if info.get("size") in (None, read.size):
                text = read
                break
        else:
            return None
    if info.get("size") not in (None, text.size):
        return None
    n_train, split = info.get("n_train"), info.get("split")
    if isinstance(n_train, int) and isinstance(split, bool) and 0 < n_train <= text.size:
        text = replace(text, n_train=n_train, split=split)
    return text


def generated_corpus(loaded: Loaded | Checkpoint, length: int = GENERATED_CHARS) -> corpus_io.Corpus:
    """Text the model writes itself (temperature 0.8, a fixed seed), for the inside view to read
    when the training text is not at hand. Not evaluated against: it has no ground truth."""
    rng = np.random.default_rng(0)
    start = prime_for(loaded.vocab, np.zeros(0, np.int64))  # a newline
    ids = np.fromiter(generate(loaded.model, start, length, rng, 0.8), dtype=np.int64)
    return corpus_io.Corpus(
        name="text the model wrote",
        vocab=loaded.vocab,
        ids=ids,
        n_train=len(ids),
        split=False,
        note="written by the model at temperature 0.8",
    )
