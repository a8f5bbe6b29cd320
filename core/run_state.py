"""A training run as a checkpoint and back: everything needed to resume it exactly.

What a run's checkpoint holds besides the model (core/checkpoint.py has the file format):

    opt/<slot>/<name>        the optimizer's moments
    state/<name><layer>      the carried state of every stream (h, and c for an LSTM)
    train/<name>             the weights being trained, when the model saved is their average
    data/positions           the streams' positions in the text
    history/...              the loss history for the graph
    meta                     the run's settings (train), the text (corpus, with a fingerprint of it),
                             counters, the RNG state, the run's identifier (run), a learning-rate
                             warm-up in progress (warmup)

Resuming (`restore`) carries over what the file holds and fits the text it continues on; what was
carried over and what started afresh is returned as a `Resumed`, for the caller to say.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from . import checkpoint as ckpt_io
from .batches import Batches
from .config import LR_WARMUP_STEPS, TrainConfig
from .corpus import Corpus
from .errors import CheckpointError, ConfigError, CorpusError
from .models import CharModel, State
from .optim import Optimizer


class Run(Protocol):
    """The parts of a run (a core.trainer.Trainer) that its checkpoint holds."""

    corpus: Corpus
    config: TrainConfig
    model: CharModel
    optimizer: Optimizer
    state: State
    average: dict[str, np.ndarray] | None
    batches: Batches
    rng: np.random.Generator
    step_count: int
    smooth_loss: float
    elapsed_s: float
    best_val: float
    loss_history: list[float]
    val_history: list[tuple[int, float]]
    cold_history: list[float]
    _stale_evals: int
    _eval_started_at: int
    _speed: float
    _trained: bool
    _warmup: tuple[int, int] | None
    run_id: str

    def fingerprint(self, what: str) -> str: ...

    def warm_up(self, steps: int) -> None: ...

    @property
    def batch(self) -> int: ...

    @property
    def seq_len(self) -> int: ...

    @property
    def epoch(self) -> float: ...

    def run_model(self) -> CharModel: ...


# The settings a resumed run cannot change: they are the model's shape.
SHAPE_KEYS = ("hidden", "layers", "dtype", "cell", "heads", "block", "bias", "init_state")


def checkpoint_of(trainer: Run) -> ckpt_io.Checkpoint:
    """Everything needed to resume `trainer`'s run exactly, from core's arrays (which the caller
    has brought up to date: Trainer.to_checkpoint syncs the engine first)."""
    t = trainer
    arrays: dict[str, np.ndarray] = {f"opt/{k}": v for k, v in t.optimizer.state_arrays().items()}
    for layer, arrays_of_layer in enumerate(t.state):  # state/h{l}, and state/c{l} for an LSTM
        for name, a in zip(t.model.state_names, arrays_of_layer, strict=True):
            arrays[f"state/{name}{layer}"] = a
    if t.average is not None:  # the model saved is the average; these are the weights trained
        for k, v in t.model.params.items():
            arrays[f"train/{k}"] = v
    arrays["data/positions"] = t.batches.positions
    arrays["history/loss"] = np.asarray(t.loss_history, dtype=np.float32)
    vh = np.asarray(t.val_history, dtype=np.float64).reshape(-1, 2)
    arrays["history/val_step"] = vh[:, 0].astype(np.int64)
    arrays["history/val_loss"] = vh[:, 1]
    arrays["history/val_cold_loss"] = np.asarray(t.cold_history, dtype=np.float64)
    meta = {
        "train": t.config.to_dict(),
        "run": t.run_id,
        "corpus": {
            "name": t.corpus.name,
            "size": t.corpus.size,
            "split": t.corpus.split,
            "n_train": t.corpus.n_train,  # where validation starts: a watcher re-reads it
            "path": t.corpus.path,  # where the text was read (lstm-tui watch looks there)
            "fingerprint": t.fingerprint("text"),  # the same text? (a resumed run compares)
        },
        "epoch": t.epoch,
        "step": t.step_count,
        "chars_seen": t.batches.chars_seen,
        "batch_used": t.batch,
        "seq_len_used": t.seq_len,
        "optimizer_t": t.optimizer.t,
        "optimizer_lr": t.optimizer.lr,
        "smooth_loss": t.smooth_loss,
        "elapsed_s": t.elapsed_s,
        "best_val": t.best_val if math.isfinite(t.best_val) else None,
        "stale_evals": t._stale_evals,
        "rng": jsonable_rng(t.rng),
        # the engine's thread count (results depend on it at the level of rounding: a resumed run
        # repeats a straight one bit for bit on the same count)
        "threads": getattr(getattr(t, "engine", None), "threads", None),
        "wavefront": getattr(getattr(t, "engine", None), "wavefront", None),
    }
    if t._warmup is not None:
        meta["warmup"] = list(t._warmup)
    return ckpt_io.Checkpoint(model=t.run_model(), vocab=t.corpus.vocab, meta=meta, arrays=arrays)


def resumed_config(
    path: str | os.PathLike[str], ck: ckpt_io.Checkpoint, corpus: Corpus, overrides: dict[str, Any]
) -> TrainConfig:
    """The settings of the run saved in `ck` with `overrides` applied (`corpus` read with the
    model's vocabulary: see `readable_text`); CheckpointError (one line) otherwise."""
    if ck.vocab != corpus.vocab:
        raise CheckpointError(f"{path} was trained on other characters than {corpus.name} holds")
    try:
        saved = TrainConfig.from_dict(ck.meta["train"])
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{path} has an unreadable training configuration ({e})") from None
    for k, v in overrides.items():
        if k in SHAPE_KEYS and v != getattr(saved, k):
            raise CheckpointError(
                f"--{k.replace('_', '-')} {v} does not match the checkpoint's {k.replace('_', '-')} {getattr(saved, k)}"
            )
    return replace(saved, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Resumed:
    """What a resumed run carried over from its file and what started afresh, for the caller to say."""

    path: str  # the file resumed
    step: int  # the step it was saved at
    carried: tuple[str, ...]  # e.g. ("weights", "optimizer state", "stream positions", "history")
    fresh: tuple[str, ...]  # what starts afresh, e.g. ("optimizer state", "stream positions")
    warmup_steps: int = 0  # > 0: no optimizer state, so the learning rate warms up over this many steps
    trained_on: str | None = None  # the text it was trained on, when it continues on another (fine-tuning)
    imported_from: str | None = None  # the file an imported model came from (lstm-tui import)
    text_chars: int = 0  # distinct characters of the text it continues on...
    model_chars: int = 0  # ...and of the model's vocabulary (fewer in the text: read with the model's)


def readable_text(path: str | os.PathLike[str], ck: ckpt_io.Checkpoint, corpus: Corpus) -> Corpus:
    """`corpus` as ids of the model's vocabulary: as it is when its characters are the model's, re-read
    when it uses only some of them; CheckpointError naming a few characters the model never saw."""
    if ck.vocab == corpus.vocab:
        return corpus
    try:
        return corpus.with_vocab(ck.vocab)
    except CorpusError:
        unseen = [ch for ch in corpus.vocab.chars if ch not in ck.vocab]
        shown = "".join(unseen[:5]) + ("…" if len(unseen) > 5 else "")
        raise CheckpointError(
            f"{path} cannot continue on {corpus.name}: the text has {len(unseen)} character"
            f"{'s' if len(unseen) != 1 else ''} the model never saw ({shown!r}); a model's characters are fixed "
            "once trained"
        ) from None


def same_text(meta: dict[str, Any], t: Run) -> bool:
    """Was the run saved with `meta` trained on the text `t` trains on?"""
    info = meta.get("corpus") or {}
    if info.get("fingerprint"):
        return bool(info["fingerprint"] == t.fingerprint("text"))
    # saved before checkpoints recorded a fingerprint (or imported: no text at all)
    return info.get("name") == t.corpus.name and info.get("size") == t.corpus.size and bool(info.get("size"))


def restore(trainer: Run, ck: ckpt_io.Checkpoint, path: str = "") -> Resumed:
    """Put the run saved in `ck` into core's arrays and counters of `trainer` (made with its settings
    and the text it continues on); what was carried over and what started afresh."""
    t, meta = trainer, ck.meta
    if ck.model.config != t.model.config:
        raise ConfigError("the model's shape differs from the checkpoint's")
    carried, fresh = ["weights"], []
    trained = ck.group("train")  # the weights trained, when the model saved is their average
    for k, v in ck.model.params.items():
        t.model.params[k][...] = trained.get(k, v)
        if t.average is not None:
            t.average[k][...] = v  # (a run that did not average starts from its weights)
    t._trained = True
    opt_t = int(meta.get("optimizer_t", 0))
    moments = ck.group("opt")
    warmup = 0
    if opt_t > 0 and (moments or not t.optimizer.slots):
        t.optimizer.load_state_arrays(moments, opt_t)
        carried.append("optimizer state")
    else:  # an import, or a run saved before its first step: Adam's moments start from zero
        fresh.append("optimizer state")
        warmup = LR_WARMUP_STEPS
    if "optimizer_lr" in meta and t.config.lr == TrainConfig.from_dict(meta["train"]).lr:
        t.optimizer.lr = float(meta["optimizer_lr"])
    same = same_text(meta, t)
    positions = ck.arrays.get("data/positions", np.zeros(0, np.int64))
    same_shape = (int(meta.get("batch_used", 0)), int(meta.get("seq_len_used", 0))) == (t.batch, t.seq_len)
    if same and same_shape:
        b = t.batches
        t.batches = Batches(t.corpus.train_ids, t.batch, t.seq_len, positions, b.windows, b.reset_prob, b.rng)
        t.batches.blank = meta.get("chars_seen", -1) == 0  # saved before the first window: the state is blank
        st = ck.group("state")
        names = t.model.state_names
        t.state = tuple(tuple(st[f"{name}{layer}"] for name in names) for layer in range(len(t.state)))
        carried.append("stream positions")
    else:  # another text, or other windows: every stream starts at its place from a blank state
        fresh.append("stream positions")
    if same:
        t.batches.chars_seen = int(meta.get("chars_seen", 0))  # passes over this text so far
    t.step_count = int(meta.get("step", 0))
    t.smooth_loss = float(meta.get("smooth_loss", t.smooth_loss))
    t.elapsed_s = float(meta.get("elapsed_s", 0.0))
    t.loss_history = [float(v) for v in ck.arrays.get("history/loss", np.zeros(0))]
    steps = ck.arrays.get("history/val_step", np.zeros(0, np.int64))
    losses = ck.arrays.get("history/val_loss", np.zeros(0))
    if same:  # scores on this text: the record to beat, and the curve
        t.val_history = [(int(s), float(v)) for s, v in zip(steps, losses, strict=True)]
        cold = ck.arrays.get("history/val_cold_loss", np.zeros(0))
        t.cold_history = [float(v) for v in cold] if len(cold) == len(losses) else [math.nan] * len(losses)
        t.best_val = float(meta["best_val"]) if meta.get("best_val") is not None else math.inf
        t._stale_evals = int(meta.get("stale_evals", 0))
    if t.loss_history or t.val_history:
        carried.append("history")
    if not same and (len(losses) or meta.get("best_val") is not None):
        fresh.append("validation scores")
    t._eval_started_at = t.batches.chars_seen
    if "rng" in meta:
        t.rng.bit_generator.state = rng_from_json(meta["rng"])
    if isinstance(meta.get("run"), str) and same:
        t.run_id = meta["run"]  # the same run, going on (on another text it is a new one)
    if isinstance(meta.get("warmup"), list) and len(meta["warmup"]) == 2:
        t._warmup = (int(meta["warmup"][0]), int(meta["warmup"][1]))  # a warm-up under way goes on
    elif warmup:
        t.warm_up(warmup)
    t._speed = 0.0
    info = meta.get("corpus") or {}
    return Resumed(
        path=path,
        step=t.step_count,
        carried=tuple(carried),
        fresh=tuple(fresh),
        warmup_steps=t._warmup[1] - (t.step_count - t._warmup[0]) if t._warmup is not None else 0,
        trained_on=None if same or not info.get("name") else str(info["name"]),
        imported_from=meta.get("imported_from") if isinstance(meta.get("imported_from"), str) else None,
        text_chars=_distinct(t.corpus),
        model_chars=ck.vocab.size,
    )


def _distinct(corpus: Corpus) -> int:
    """Distinct characters the text actually uses (fewer than its vocabulary's when it was re-read
    with a model's)."""
    return int(np.count_nonzero(np.bincount(corpus.ids, minlength=corpus.vocab.size)))


def jsonable_rng(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's state with its 128-bit integers as strings (JSON-safe everywhere)."""
    st = rng.bit_generator.state

    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, int) and not isinstance(v, bool):
            return {"int": str(v)}
        return v

    return conv(st)


def rng_from_json(d: Any) -> Any:
    """The inverse of `jsonable_rng`."""
    if isinstance(d, dict):
        if set(d) == {"int"}:
            return int(d["int"])
        return {k: rng_from_json(v) for k, v in d.items()}
    return d
