"""The best-model file: where a run keeps the weights that scored best on its validation text, and
when it may replace a file that is already there.

The rule:
- A run keeps its best weights beside its checkpoint: `run.npz` -> `run.best.npz`.
- The file records whose it is and what it scored: the run (an identifier a resumed run keeps),
  the validation loss and step, and a fingerprint of the text it was scored on (the vocabulary and
  every character of the evaluation text, so a different text, split or --eval-chars differs).
- Two scores are taken at each evaluation (core.evaluate): the one-pass score, which reads the
  validation text as one sequence, and the cold-start score, which reads it in 64-character blocks
  each from a blank state. The one-pass score chooses: it scores every character with all the
  context the model can use, which is what generating a long text asks. The file records the
  cold-start score of the same weights beside it, and every screen shows both. The defaults train
  in a way that makes the two fall together (core/recipe.py), so the weights with the best one-pass
  score are within a few thousandths of the best cold-start score too.
- A run replaces a best file only with a lower loss on the same evaluation text, whoever wrote it:
  a new run starting on `run.npz` never makes `run.best.npz` worse.
- A best file scored on another text (or with another vocabulary, or one that cannot be read) is
  never touched: the run keeps its own best under the next free name, `run.best.2.npz`,
  `run.best.3.npz`, ..., reusing one that holds a model of its own evaluation text.
- Only a full evaluation of a trained model counts: not the untrained weights of step 0, not an
  early evaluation of a sample of the text (core.trainer schedules those).

`plan` decides which file a run writes before it starts (so it can say so), and `Trainer` keeps to
it; `still_current` notices a file changed by another process meanwhile, so the plan is made again.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checkpoint as ckpt_io
from .errors import CheckpointError

# How many alternative names (run.best.2.npz ...) are tried before giving up.
MAX_NAMES = 99


def best_path(checkpoint: str | os.PathLike[str], n: int = 1) -> Path:
    """The n-th name for the best weights beside `checkpoint`: run.best.npz, run.best.2.npz, ..."""
    p = Path(checkpoint)
    tag = ".best" if n == 1 else f".best.{n}"
    return p.with_name(p.stem + tag + (p.suffix or ".npz"))


@dataclass(frozen=True)
class Identity:
    """What makes two best files comparable, and whose a file is."""

    run: str  # the run's identifier
    eval_text: str  # fingerprint of the evaluation text (core.corpus.fingerprint)
    # For files written before best files recorded a fingerprint: the text's name, size, split and
    # the evaluation's length, and the vocabulary.
    corpus: dict[str, Any]
    vocab: str
    eval_chars: int


@dataclass(frozen=True)
class Held:
    """The model a best file holds."""

    val_loss: float  # its validation loss, nats per character (inf when the file does not say)
    step: int
    own: bool  # written by this run (a resumed one)


@dataclass(frozen=True)
class Plan:
    """Where a run keeps its best weights, and what is there now."""

    path: Path
    held: Held | None  # the model the file holds now (None: no file yet)
    passed: tuple[tuple[Path, str], ...] = ()  # best files left alone, each with what it holds
    stamp: tuple[int, int, int] | None = None  # (inode, mtime_ns, size) of the file when planned

    @property
    def threshold(self) -> float:
        """A new model replaces the file only with a validation loss below this."""
        return self.held.val_loss if self.held is not None else math.inf


def stamp_of(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def record(
    identity: Identity, val_loss: float, step: int, chars: int, text: str, cold_loss: float | None = None
) -> dict[str, Any]:
    """What a best file records about itself (its meta's "best"): the one-pass score that chose it
    and, beside it, its cold-start score."""
    return {
        "run": identity.run,
        "eval_text": identity.eval_text,
        "val_loss": val_loss,
        "val_cold_loss": cold_loss,
        "step": step,
        "chars": chars,
        "text": text,
    }


def _comparable(meta: dict[str, Any], me: Identity) -> bool:
    """Was the model in a best file with this `meta` scored on the same text as this run's?"""
    best = meta.get("best")
    if isinstance(best, dict) and "eval_text" in best:
        return best["eval_text"] == me.eval_text
    corpus = meta.get("corpus") or {}  # written before best files recorded a fingerprint
    train = meta.get("train") or {}
    return (
        meta.get("vocab") == me.vocab
        and all(corpus.get(k) == me.corpus.get(k) for k in ("name", "size", "n_train", "split"))
        and int(train.get("eval_chars", 0) or 0) == me.eval_chars
    )


def _best_record(meta: dict[str, Any]) -> dict[str, Any]:
    best = meta.get("best")
    return best if isinstance(best, dict) else {}


def _held(meta: dict[str, Any], me: Identity) -> Held:
    best = _best_record(meta)
    loss = best.get("val_loss", meta.get("best_val"))
    step = best.get("step", meta.get("step", 0))
    try:
        val = float(loss) if loss is not None else math.inf
    except (TypeError, ValueError):
        val = math.inf
    return Held(val_loss=val if math.isfinite(val) else math.inf, step=int(step or 0), own=best.get("run") == me.run)


def describe(meta: dict[str, Any]) -> str:
    """What a best file holds, in a few words: 'a model of hamlet.txt (val 1.234 @500)'."""
    best = _best_record(meta)
    text = best.get("text") or (meta.get("corpus") or {}).get("name") or "an unnamed text"
    loss = best.get("val_loss", meta.get("best_val"))
    step = best.get("step", meta.get("step"))
    score = f" (val {float(loss):.3f} @{int(step):,})" if loss is not None and step is not None else ""
    return f"a model of {text}{score}"


def plan(checkpoint: str | os.PathLike[str], me: Identity) -> Plan:
    """The best file a run with identity `me` and checkpoint `checkpoint` writes (see the module's rule)."""
    passed: list[tuple[Path, str]] = []
    for n in range(1, MAX_NAMES + 1):
        path = best_path(checkpoint, n)
        stamp = stamp_of(path)
        if stamp is None and not path.exists():
            return Plan(path, None, tuple(passed), None)
        try:
            meta = ckpt_io.load_meta(path)
        except CheckpointError:
            passed.append((path, "something lstm-tui cannot read as a checkpoint"))
            continue
        if _comparable(meta, me):
            return Plan(path, _held(meta, me), tuple(passed), stamp)
        passed.append((path, describe(meta) + ", not of this text"))
    raise CheckpointError(
        f"{best_path(checkpoint)} and {MAX_NAMES - 1} more names beside it hold other texts' models; "
        "give another --checkpoint"
    )


def still_current(p: Plan) -> bool:
    """Is the planned file as it was when planned (nobody else wrote or removed it since)?"""
    return stamp_of(p.path) == p.stamp
