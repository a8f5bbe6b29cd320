"""A training run as a checkpoint and back: everything needed to resume it exactly.

What a run's checkpoint holds besides the model (core/checkpoint.py has the file format):

    opt/<slot>/<name>        the optimizer's moments
    state/<name><layer>      the carried state of every stream (h, and c for an LSTM)
    train/<name>             the weights being trained, when the model saved is their average
    data/positions           the streams' positions in the text
    history/...              the loss history for the graph
    meta                     the run's settings (train), the text (corpus), counters, the RNG state
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from typing import Any, Protocol

import numpy as np

from . import checkpoint as ckpt_io
from .batches import Batches
from .config import TrainConfig
from .corpus import Corpus
from .errors import CheckpointError, ConfigError
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
    _stale_evals: int
    _eval_started_at: int
    _speed: float

    @property
    def batch(self) -> int: ...

    @property
    def seq_len(self) -> int: ...

    @property
    def epoch(self) -> float: ...

    def run_model(self) -> CharModel: ...


# The settings a resumed run cannot change: they are the model's shape.
SHAPE_KEYS = ("hidden", "layers", "dtype", "cell")


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
    meta = {
        "train": t.config.to_dict(),
        "corpus": {
            "name": t.corpus.name,
            "size": t.corpus.size,
            "split": t.corpus.split,
            "n_train": t.corpus.n_train,  # where validation starts: a watcher re-reads it
            "path": t.corpus.path,  # where the text was read (lstm-tui watch looks there)
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
    return ckpt_io.Checkpoint(model=t.run_model(), vocab=t.corpus.vocab, meta=meta, arrays=arrays)


def resumed_config(
    path: str | os.PathLike[str], ck: ckpt_io.Checkpoint, corpus: Corpus, overrides: dict[str, Any]
) -> TrainConfig:
    """The settings of the run saved in `ck` with `overrides` applied, once the text is checked to
    be one the model can read; CheckpointError (one line) otherwise."""
    if ck.vocab != corpus.vocab:
        extra = sorted(set(corpus.vocab.chars) - set(ck.vocab.chars))
        detail = ""
        if extra:
            detail = f" (the text has {len(extra)} characters the model never saw, e.g. {''.join(extra[:5])!r})"
        raise CheckpointError(
            f"{path} was trained on a different vocabulary ({ck.vocab.size} characters) than "
            f"{corpus.name} ({corpus.vocab.size}){detail}"
        )
    try:
        saved = TrainConfig.from_dict(ck.meta["train"])
    except (KeyError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{path} has an unreadable training configuration ({e})") from None
    for k, v in overrides.items():
        if k in SHAPE_KEYS and v != getattr(saved, k):
            raise CheckpointError(f"--{k} {v} does not match the checkpoint's {k} {getattr(saved, k)}")
    return replace(saved, **{k: v for k, v in overrides.items() if v is not None})


def restore(trainer: Run, ck: ckpt_io.Checkpoint) -> None:
    """Put the run saved in `ck` into core's arrays and counters of `trainer` (made with its settings)."""
    t, meta = trainer, ck.meta
    if ck.model.config != t.model.config:
        raise ConfigError("the model's shape differs from the checkpoint's")
    trained = ck.group("train")  # the weights trained, when the model saved is their average
    for k, v in ck.model.params.items():
        t.model.params[k][...] = trained.get(k, v)
        if t.average is not None:
            t.average[k][...] = v  # (a run that did not average starts from its weights)
    t.optimizer.load_state_arrays(ck.group("opt"), int(meta["optimizer_t"]))
    if "optimizer_lr" in meta and t.config.lr == TrainConfig.from_dict(meta["train"]).lr:
        t.optimizer.lr = float(meta["optimizer_lr"])
    positions = ck.arrays["data/positions"]
    same_shape = (int(meta["batch_used"]), int(meta["seq_len_used"])) == (t.batch, t.seq_len)
    if same_shape:
        try:
            t.batches = Batches(t.corpus.train_ids, t.batch, t.seq_len, positions)
            t.batches.chars_seen = int(meta["chars_seen"])
            st = ck.group("state")
            names = t.model.state_names
            t.state = tuple(tuple(st[f"{name}{layer}"] for name in names) for layer in range(t.model.config.layers))
        except ConfigError:
            pass  # another text of the same vocabulary: start its streams afresh
    t.step_count = int(meta["step"])
    t.smooth_loss = float(meta["smooth_loss"])
    t.elapsed_s = float(meta.get("elapsed_s", 0.0))
    t.best_val = float(meta["best_val"]) if meta.get("best_val") is not None else math.inf
    t._stale_evals = int(meta.get("stale_evals", 0))
    t._eval_started_at = t.batches.chars_seen
    t.loss_history = [float(v) for v in ck.arrays.get("history/loss", np.zeros(0))]
    steps = ck.arrays.get("history/val_step", np.zeros(0, np.int64))
    losses = ck.arrays.get("history/val_loss", np.zeros(0))
    t.val_history = [(int(s), float(v)) for s, v in zip(steps, losses, strict=True)]
    t.rng.bit_generator.state = rng_from_json(meta["rng"])
    t._speed = 0.0


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
