"""lstm-tui models as PyTorch tensors: `lstm-tui export` and `lstm-tui import`, in NumPy.

An export is a `.safetensors` file whose tensors carry the names PyTorch's own modules give their
parameters, so that the PyTorch model each of our models declares (`torch_class`: nn.LSTM, nn.GRU
or nn.RNN and an nn.Linear readout) loads it with `load_state_dict` and no conversion code. Each
model declares its names and the exact mapping, transposes and permutations only
(`CharModel.torch_shapes`, `to_torch`, `from_torch`; for the recurrent cells see
core/models/recurrent.py):

    lstm.weight_ih_l{k}  (4H, V or H)     lstm.bias_ih_l{k}  (4H,)      readout.weight  (V, H)
    lstm.weight_hh_l{k}  (4H, H)          lstm.bias_hh_l{k}  (4H,)      readout.bias    (V,)

(`gru.` with 3H rows, `rnn.` with H rows for the other cells). The input is one-hot over the
vocabulary, whose characters in id order are the metadata entry `vocab` (a JSON list); `config`
is the model configuration (JSON, with `cell`) and `lstm_tui_version` the version that wrote the
file; `format` is "pt", the safetensors convention for PyTorch tensors.

This module needs NumPy and the `safetensors` package (imported only when a file is read or
written), never PyTorch: the torch engine (tui/pytorch/engine.py) uses the same mapping.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import core
from core import checkpoint as ckpt_io
from core import recipe
from core.config import TrainConfig
from core.errors import CheckpointError, ConfigError, LstmTuiError
from core.models import MODELS, CharModel, ModelConfig, load_model, model_class
from core.models.recurrent import RecurrentModel
from core.optim import make_optimizer
from core.run_state import jsonable_rng
from core.vocab import Vocab

FORMAT = "pt"  # safetensors metadata convention: tensors laid out for PyTorch


# ------------------------------------------------------------------------------ files
def _safetensors() -> Any:
    """The safetensors NumPy API, imported when a file is read or written."""
    try:
        import safetensors.numpy as st
    except ImportError:  # a dependency of lstm-tui; missing only from a broken installation
        raise LstmTuiError("export and import need the safetensors package: pip install safetensors") from None
    return st


def export_model(model: CharModel, vocab: Vocab, path: str | os.PathLike[str]) -> Path:
    """Write `model` to `path` as safetensors under PyTorch's names (its class declares them), atomically."""
    st = _safetensors()
    target = Path(path)
    config = model.config
    metadata = {
        "format": FORMAT,
        "vocab": json.dumps(list(vocab.chars), ensure_ascii=False),
        "config": json.dumps(type(model).export_config(config)),  # with "cell"
        "lstm_tui_version": core.__version__,
    }
    data = st.save(type(model).to_torch(model.params, config), metadata=metadata)
    if target.is_dir():
        raise LstmTuiError(f"{target} is a directory; give a file name such as {target / 'model.safetensors'}")
    try:
        return ckpt_io.write_atomically(target, lambda f: f.write(data))
    except OSError as e:
        raise LstmTuiError(f"cannot write {target}: {e.strerror or e}") from None


def export_checkpoint(checkpoint: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """`lstm-tui export CHECKPOINT OUT`: the checkpoint's model as safetensors."""
    ck = ckpt_io.load(checkpoint)  # a one-line CheckpointError when missing or corrupt
    return export_model(ck.model, ck.vocab, out)


def _read(path: Path) -> tuple[dict[str, NDArray], dict[str, str]]:
    """The tensors and metadata of a safetensors file, or a one-line error saying why not."""
    st = _safetensors()
    from safetensors import safe_open

    if not path.exists():
        raise CheckpointError(f"no such file: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a .safetensors file")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = dict(f.metadata() or {})
        tensors = st.load_file(str(path))
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - SafetensorError, TypeError (bfloat16), ...: not a usable file
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path} is not a readable .safetensors file ({reason})") from None
    return tensors, metadata


def _vocab(path: Path, metadata: dict[str, str], size: int) -> tuple[Vocab, NDArray[np.intp]]:
    """The vocabulary from the metadata, and the order that sorts the file's ids into ours.

    lstm-tui numbers characters in code point order; a file made elsewhere may number them in
    another order, which the import follows by permuting the rows that belong to characters.
    """
    if "vocab" not in metadata:
        raise CheckpointError(
            f"{path} has no 'vocab' in its metadata: save it with "
            "metadata={'vocab': json.dumps(list_of_characters_in_id_order)}"
        )
    try:
        chars = json.loads(metadata["vocab"])
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: the metadata 'vocab' is not JSON (expected a list of characters)") from None
    if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise CheckpointError(f"{path}: the metadata 'vocab' must be a JSON list of single characters")
    if len(set(chars)) != len(chars):
        dup = next(c for i, c in enumerate(chars) if c in chars[:i])
        raise CheckpointError(f"{path}: the vocabulary lists {dup!r} twice")
    if len(chars) != size:
        raise CheckpointError(
            f"{path}: the vocabulary has {len(chars)} characters but the weights are for {size} "
            "(its readout has that many rows)"
        )
    vocab = Vocab(chars)
    order = np.array([chars.index(c) for c in vocab.chars], dtype=np.intp)  # our id -> the file's id
    return vocab, order


def _config(path: Path, tensors: dict[str, NDArray], metadata: dict[str, str]) -> ModelConfig:
    """The model's kind and shape, read from the tensors (and dropout from the metadata when present)."""
    try:
        saved = json.loads(metadata.get("config", "{}"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: the metadata 'config' is not JSON") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the metadata 'config' must be a JSON object")
    if saved.get("cell", "lstm") not in MODELS:
        raise CheckpointError(f"{path} holds a {saved['cell']!r} model; lstm-tui reads {', '.join(MODELS)} models")
    found: dict[str, dict[str, Any]] = {}
    for name, cls in MODELS.items():
        try:
            shape = cls.torch_config(tensors, saved)
        except ConfigError as e:
            raise CheckpointError(f"{path}: {e}") from None
        if shape is not None:
            found[name] = shape
    if len(found) > 1:
        raise CheckpointError(f"{path} holds weights for more than one kind of model ({', '.join(found)})")
    if not found:
        names = ", ".join(sorted(tensors)[:4]) + (", ..." if len(tensors) > 4 else "")
        expected = ", ".join(f"{cls.torch_class} ({next(iter(cls.torch_shapes(_SAMPLE)))})" for cls in MODELS.values())
        raise CheckpointError(
            f"{path} is not an export lstm-tui can read: expected the tensors of one of {expected} "
            f"(found {names or 'no tensors'})"
        )
    cell, shape = next(iter(found.items()))
    said = saved.get("cell", cell)
    if said != cell:
        raise CheckpointError(f"{path}: its metadata says the model is {said!r} but its tensors are {cell}'s")
    extra: dict[str, Any] = {}
    if isinstance(saved.get("dropout"), (int, float)):
        extra["dropout"] = float(saved["dropout"])
    dtypes = {str(t.dtype) for t in tensors.values()}
    dtype = "float64" if dtypes == {"float64"} else "float32"
    bad = sorted(dt for dt in dtypes if dt not in ("float16", "float32", "float64"))
    if bad:
        raise CheckpointError(f"{path} holds {bad[0]} tensors; lstm-tui reads float16, float32 or float64")
    try:
        config = ModelConfig(dtype=dtype, cell=cell, **shape, **extra)
        model_class(cell).check_config(config)
        return config
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None


# A configuration every model takes, to name the first tensor of each kind in messages.
_SAMPLE = ModelConfig(vocab_size=2)


def _check_names(path: Path, tensors: dict[str, NDArray], config: ModelConfig) -> None:
    """Every expected name present with its shape, nothing else: else one line naming the first problem."""
    cls = model_class(config.cell)
    expected = cls.torch_shapes(config)
    recurrent = issubclass(cls, RecurrentModel)
    missing = [n for n in expected if n not in tensors]
    if missing:
        want = f"an {cls.torch_class} with bias=True" if recurrent else f"every tensor of {cls.torch_class}"
        raise CheckpointError(f"{path} has no tensor {missing[0]} ({want} is expected)")
    unexpected = sorted(n for n in tensors if n not in expected)
    if unexpected:
        unsupported = "; bidirectional and projected layers are not supported" if recurrent else ""
        raise CheckpointError(
            f"{path} has a tensor lstm-tui cannot use: {unexpected[0]} (expected only the tensors of "
            f"{cls.torch_class}{' and its readout' if recurrent else ''}{unsupported})"
        )
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise CheckpointError(f"{path}: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    for name, t in tensors.items():
        if not np.all(np.isfinite(t)):
            raise CheckpointError(f"{path}: {name} holds NaN or infinite values")


def import_model(path: str | os.PathLike[str]) -> tuple[CharModel, Vocab, dict[str, str]]:
    """The model and vocabulary in a safetensors file named as `export_model` names them.

    Raises CheckpointError (one line) for a missing, unreadable or foreign file, missing or
    unexpected names, wrong shapes, and a missing or inconsistent vocabulary.
    """
    p = Path(path)
    tensors, metadata = _read(p)
    config = _config(p, tensors, metadata)
    _check_names(p, tensors, config)
    vocab, order = _vocab(p, metadata, config.vocab_size)
    cls = model_class(config.cell)
    if not np.array_equal(order, np.arange(len(order))):  # put the character rows in our id order
        tensors = dict(tensors)
        for name, axis in cls.torch_vocab_axes(config).items():
            tensors[name] = np.take(tensors[name], order, axis=axis)
    return load_model(config, cls.from_torch(tensors, config)), vocab, metadata


def fresh_run_checkpoint(model: CharModel, vocab: Vocab, source: str) -> ckpt_io.Checkpoint:
    """A checkpoint of `model` as a run at step 0: `sample`, `inspect`, the interface and
    `--resume` (which then starts its streams, optimizer and history afresh) all accept it."""
    mc = model.config
    shape = {k: getattr(mc, k) for k in ("hidden", "layers", "dropout", "dtype", "cell", "heads", "block", "bias")}
    longest = type(model).longest_window(mc)
    settings = {**recipe.training_for(mc.cell), **shape}
    if longest is not None:
        settings["seq_len"] = min(settings.get("seq_len", TrainConfig.seq_len), longest)
    train = TrainConfig(**settings)
    optimizer = make_optimizer(train.optimizer, model.params, train.lr, train.beta2)
    arrays: dict[str, NDArray] = {f"opt/{k}": v for k, v in optimizer.state_arrays().items()}
    arrays["data/positions"] = np.zeros(0, np.int64)  # no position in any text yet
    meta = {
        "train": train.to_dict(),
        "corpus": {"name": None, "size": 0, "split": False},
        "imported_from": source,
        "step": 0,
        "chars_seen": 0,
        "batch_used": 0,  # matches no batch: a resumed run starts its streams at their beginnings
        "seq_len_used": 0,
        "optimizer_t": 0,
        "smooth_loss": math.log(mc.vocab_size),
        "elapsed_s": 0.0,
        "best_val": None,
        "rng": jsonable_rng(np.random.default_rng(train.seed)),
    }
    return ckpt_io.Checkpoint(model=model, vocab=vocab, meta=meta, arrays=arrays)


def import_file(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """`lstm-tui import IN.safetensors OUT.npz`: an lstm-tui checkpoint of the file's model."""
    if Path(out).is_dir():
        raise LstmTuiError(f"{out} is a directory; give a file name such as {Path(out) / 'model.npz'}")
    model, vocab, _ = import_model(path)
    return ckpt_io.save(out, fresh_run_checkpoint(model, vocab, Path(path).name))
