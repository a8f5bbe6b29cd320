"""lstm-tui models as PyTorch tensors: `lstm-tui export` and `lstm-tui import`, in NumPy.

An export is a `.safetensors` file whose tensors carry the names PyTorch's own modules give their
parameters, so that `torch.nn.LSTM(V, H, L)` (or `nn.GRU`, `nn.RNN`) and `torch.nn.Linear(H, V)`
load it with `load_state_dict` and no conversion code:

    lstm.weight_ih_l{k}  (4H, V or H)     lstm.bias_ih_l{k}  (4H,)      readout.weight  (V, H)
    lstm.weight_hh_l{k}  (4H, H)          lstm.bias_hh_l{k}  (4H,)      readout.bias    (V,)

(`gru.` with 3H rows, `rnn.` with H rows for the other cells). The mapping from our parameters
(core/model.py, core/gru.py, core/rnn.py: Wx{k} (in, GH), Wh{k} (H, GH), b{k} (GH,), Wy (H, V),
by (V,), and for the GRU bhn{k} (H,)) is exact, transposes and permutations only:

    weight_ih = Wx[:, P].T     weight_hh = Wh[:, P].T     readout.weight = Wy.T   readout.bias = by
    LSTM, RNN:  bias_ih = b[P]      bias_hh = 0          (an import takes b = bias_ih + bias_hh)
    GRU:        bias_ih = b         bias_hh = [0, 0, bhn] (an import folds bias_hh's r, z into b)

where P reorders the LSTM's gate blocks (ours i, f, o, g) to PyTorch's i, f, g, o; the GRU's
r, z, n are already PyTorch's order. PyTorch adds two bias vectors where our LSTM and RNN have
one, and the GRU's recurrent candidate bias sits inside r * (...) where a sum cannot reach it.
The input is one-hot over the vocabulary, whose characters in id order are the metadata entry
`vocab` (a JSON list); `config` is the model configuration (JSON, with `cell`) and
`lstm_tui_version` the version that wrote the file; `format` is "pt", the safetensors
convention for PyTorch tensors.

This module needs NumPy and the `safetensors` package (imported only when a file is read or
written), never PyTorch: the torch engine (tui/torch_engine.py) uses the same mapping.
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
from core.errors import CheckpointError, ConfigError, LstmTuiError
from core.model import CELLS, GATES, CharModel, ModelConfig, Params, load_model
from core.optim import make_optimizer
from core.trainer import TrainConfig, _jsonable_rng
from core.vocab import Vocab

TORCH_GATES = ("i", "f", "g", "o")  # the order of nn.LSTM's four gate blocks
MODULES = {"lstm": "lstm", "gru": "gru", "rnn": "rnn"}  # cell -> attribute name: lstm.weight_ih_l0, ...
TORCH_CLASSES = {"lstm": "nn.LSTM", "gru": "nn.GRU", "rnn": "nn.RNN"}
GATE_COUNT = {"lstm": 4, "gru": 3, "rnn": 1}
READOUT = "readout"  # the nn.Linear attribute name: readout.weight, readout.bias
FORMAT = "pt"  # safetensors metadata convention: tensors laid out for PyTorch


def gate_permutation(cell: str, hidden: int) -> NDArray[np.intp]:
    """(GH,) indices P such that x[..., P] has PyTorch's gate order when x has ours.

    Only the LSTM's differ (two blocks swapped, which is its own inverse: the same P also maps
    PyTorch's order back to ours); the GRU's and the RNN's are PyTorch's already.
    """
    if cell != "lstm":
        return np.arange(GATE_COUNT[cell] * hidden)
    blocks = [GATES.index(g) for g in TORCH_GATES]
    return np.concatenate([np.arange(k * hidden, (k + 1) * hidden) for k in blocks])


def layer_to_torch(cell: str, arrays: dict[str, NDArray]) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """One layer's {"Wx", "Wh", "b"} (and "bhn" for a GRU) as PyTorch's (weight_ih, weight_hh,
    bias_ih, bias_hh). Linear in the arrays, so it maps gradients and Adam's moments the same way."""
    Wx, Wh, b = arrays["Wx"], arrays["Wh"], arrays["b"]
    H = Wh.shape[0]
    P = gate_permutation(cell, H)
    b_hh = np.zeros_like(b)
    if cell == "gru":
        b_hh[2 * H :] = arrays["bhn"]
    return (
        np.ascontiguousarray(Wx[:, P].T),  # (GH, in)
        np.ascontiguousarray(Wh[:, P].T),  # (GH, H)
        np.ascontiguousarray(b[P]),  # (GH,)
        b_hh,  # (GH,)
    )


def layer_from_torch(cell: str, w_ih: NDArray, w_hh: NDArray, b_ih: NDArray, b_hh: NDArray) -> dict[str, NDArray]:
    """The inverse of `layer_to_torch`: {"Wx", "Wh", "b"} (and "bhn" for a GRU) from PyTorch's four."""
    H = w_hh.shape[1]
    P = gate_permutation(cell, H)
    out = {"Wx": np.ascontiguousarray(w_ih.T[:, P]), "Wh": np.ascontiguousarray(w_hh.T[:, P])}  # (in, GH), (H, GH)
    if cell == "gru":  # r and z: the two biases add; n: the recurrent one is our bhn
        b = b_ih.copy()
        b[: 2 * H] += b_hh[: 2 * H]
        out["b"], out["bhn"] = b, np.ascontiguousarray(b_hh[2 * H :])
    else:
        out["b"] = np.ascontiguousarray((b_ih + b_hh)[P])
    return out


def to_torch_state(params: Params, config: ModelConfig) -> dict[str, NDArray]:
    """Our parameters under nn.LSTM/GRU/RNN + nn.Linear names."""
    out: dict[str, NDArray] = {}
    module = MODULES[config.cell]
    for k in range(config.layers):
        layer = {name: params[f"{name}{k}"] for name in ("Wx", "Wh", "b", "bhn") if f"{name}{k}" in params}
        w_ih, w_hh, b_ih, b_hh = layer_to_torch(config.cell, layer)
        out[f"{module}.weight_ih_l{k}"] = w_ih
        out[f"{module}.weight_hh_l{k}"] = w_hh
        out[f"{module}.bias_ih_l{k}"] = b_ih
        out[f"{module}.bias_hh_l{k}"] = b_hh
    out[f"{READOUT}.weight"] = np.ascontiguousarray(params["Wy"].T)  # (V, H)
    out[f"{READOUT}.bias"] = params["by"].copy()  # (V,)
    return out


def expected_shapes(cell: str, vocab_size: int, hidden: int, layers: int) -> dict[str, tuple[int, ...]]:
    """Every name an export of this shape holds, with its shape (e.g. nn.LSTM(V, H, L), nn.Linear(H, V))."""
    module, GH = MODULES[cell], GATE_COUNT[cell] * hidden
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(layers):
        shapes[f"{module}.weight_ih_l{k}"] = (GH, vocab_size if k == 0 else hidden)
        shapes[f"{module}.weight_hh_l{k}"] = (GH, hidden)
        shapes[f"{module}.bias_ih_l{k}"] = (GH,)
        shapes[f"{module}.bias_hh_l{k}"] = (GH,)
    shapes[f"{READOUT}.weight"] = (vocab_size, hidden)
    shapes[f"{READOUT}.bias"] = (vocab_size,)
    return shapes


def from_torch_state(tensors: dict[str, NDArray], config: ModelConfig) -> Params:
    """Our parameters from PyTorch names; names and shapes must already be checked."""
    params: Params = {}
    module = MODULES[config.cell]
    for k in range(config.layers):
        four = (tensors[f"{module}.{name}_l{k}"] for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        for name, v in layer_from_torch(config.cell, *four).items():
            params[f"{name}{k}"] = v
    params["Wy"] = np.ascontiguousarray(tensors[f"{READOUT}.weight"].T)  # (H, V)
    params["by"] = np.ascontiguousarray(tensors[f"{READOUT}.bias"])  # (V,)
    return {name: v.astype(config.dtype, copy=False) for name, v in params.items()}


# ------------------------------------------------------------------------------ files
def _safetensors() -> Any:
    """The safetensors NumPy API, imported when a file is read or written."""
    try:
        import safetensors.numpy as st
    except ImportError:  # a dependency of lstm-tui; missing only from a broken installation
        raise LstmTuiError("export and import need the safetensors package: pip install safetensors") from None
    return st


def export_model(model: CharModel, vocab: Vocab, path: str | os.PathLike[str]) -> Path:
    """Write `model` to `path` as safetensors under PyTorch's names (lstm./gru./rnn. and readout.), atomically."""
    st = _safetensors()
    target = Path(path)
    config = model.config
    metadata = {
        "format": FORMAT,
        "vocab": json.dumps(list(vocab.chars), ensure_ascii=False),
        "config": json.dumps(config.to_dict()),  # with "cell"
        "lstm_tui_version": core.__version__,
    }
    data = st.save(to_torch_state(model.params, config), metadata=metadata)
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
            f"({READOUT}.weight has {size} rows)"
        )
    vocab = Vocab(chars)
    order = np.array([chars.index(c) for c in vocab.chars], dtype=np.intp)  # our id -> the file's id
    return vocab, order


def _cell(path: Path, tensors: dict[str, NDArray], saved: dict[str, Any]) -> str:
    """Which cell the tensors are for, from the module name their names start with."""
    found = [cell for cell, module in MODULES.items() if f"{module}.weight_hh_l0" in tensors]
    if len(found) > 1:
        raise CheckpointError(f"{path} holds weights for more than one recurrent module ({', '.join(found)})")
    if not found:
        names = ", ".join(sorted(tensors)[:4]) + (", ..." if len(tensors) > 4 else "")
        raise CheckpointError(
            f"{path} has no tensor lstm.weight_hh_l0 (or gru., rnn.): expected nn.LSTM, nn.GRU or nn.RNN "
            f"weights under 'lstm.', 'gru.' or 'rnn.' and an nn.Linear under '{READOUT}.' "
            f"(found {names or 'no tensors'})"
        )
    cell = found[0]
    said = saved.get("cell", cell)
    if said != cell:
        raise CheckpointError(f"{path}: its metadata says the cell is {said!r} but its tensors are {MODULES[cell]}.*")
    if cell == "rnn" and saved.get("nonlinearity", "tanh") != "tanh":
        raise CheckpointError(
            f"{path}: an nn.RNN with nonlinearity {saved['nonlinearity']!r}; lstm-tui's RNN uses tanh"
        )
    return cell


def _config(path: Path, tensors: dict[str, NDArray], metadata: dict[str, str]) -> ModelConfig:
    """The model's cell and shape, read from the tensors (and dropout from the metadata when present)."""
    try:
        saved = json.loads(metadata.get("config", "{}"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: the metadata 'config' is not JSON") from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the metadata 'config' must be a JSON object")
    if saved.get("cell", "lstm") not in CELLS:
        raise CheckpointError(f"{path} holds a {saved['cell']!r} model; lstm-tui reads {', '.join(CELLS)} models")
    cell = _cell(path, tensors, saved)
    module = MODULES[cell]
    if f"{READOUT}.weight" not in tensors:
        raise CheckpointError(f"{path} has no tensor {READOUT}.weight (an nn.Linear(H, V) under '{READOUT}.')")
    readout, w_hh = tensors[f"{READOUT}.weight"], tensors[f"{module}.weight_hh_l0"]
    if readout.ndim != 2 or w_hh.ndim != 2:
        raise CheckpointError(f"{path}: {READOUT}.weight and {module}.weight_hh_l0 must be matrices")
    V, H = readout.shape
    layers = 0
    while f"{module}.weight_hh_l{layers}" in tensors:
        layers += 1
    extra: dict[str, Any] = {}
    if isinstance(saved.get("dropout"), (int, float)):
        extra["dropout"] = float(saved["dropout"])
    dtypes = {str(t.dtype) for t in tensors.values()}
    dtype = "float64" if dtypes == {"float64"} else "float32"
    bad = sorted(dt for dt in dtypes if dt not in ("float16", "float32", "float64"))
    if bad:
        raise CheckpointError(f"{path} holds {bad[0]} tensors; lstm-tui reads float16, float32 or float64")
    try:
        return ModelConfig(vocab_size=V, hidden=H, layers=layers, dtype=dtype, cell=cell, **extra)
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from None


def _check_names(path: Path, tensors: dict[str, NDArray], cell: str, expected: dict[str, tuple[int, ...]]) -> None:
    """Every expected name present with its shape, nothing else: else one line naming the first problem."""
    module, torch_class = MODULES[cell], TORCH_CLASSES[cell]
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise CheckpointError(f"{path} has no tensor {missing[0]} (an {torch_class} with bias=True is expected)")
    unexpected = sorted(n for n in tensors if n not in expected)
    if unexpected:
        raise CheckpointError(
            f"{path} has a tensor lstm-tui cannot use: {unexpected[0]} (expected only "
            f"{module}.weight_ih/weight_hh/bias_ih/bias_hh_l<k> and {READOUT}.weight/bias; "
            f"bidirectional and projected {torch_class} layers are not supported)"
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
    _check_names(p, tensors, config.cell, expected_shapes(config.cell, config.vocab_size, config.hidden, config.layers))
    vocab, order = _vocab(p, metadata, config.vocab_size)
    if not np.array_equal(order, np.arange(len(order))):  # put the character rows in our id order
        module = MODULES[config.cell]
        tensors = dict(tensors)
        tensors[f"{module}.weight_ih_l0"] = tensors[f"{module}.weight_ih_l0"][:, order]
        tensors[f"{READOUT}.weight"] = tensors[f"{READOUT}.weight"][order]
        tensors[f"{READOUT}.bias"] = tensors[f"{READOUT}.bias"][order]
    return load_model(config, from_torch_state(tensors, config)), vocab, metadata


def fresh_run_checkpoint(model: CharModel, vocab: Vocab, source: str) -> ckpt_io.Checkpoint:
    """A checkpoint of `model` as a run at step 0: `sample`, `inspect`, the interface and
    `--resume` (which then starts its streams, optimizer and history afresh) all accept it."""
    mc = model.config
    train = TrainConfig(hidden=mc.hidden, layers=mc.layers, dropout=mc.dropout, dtype=mc.dtype, cell=mc.cell)
    optimizer = make_optimizer(train.optimizer, model.params, train.lr)
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
        "rng": _jsonable_rng(np.random.default_rng(train.seed)),
    }
    return ckpt_io.Checkpoint(model=model, vocab=vocab, meta=meta, arrays=arrays)


def import_file(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """`lstm-tui import IN.safetensors OUT.npz`: an lstm-tui checkpoint of the file's model."""
    if Path(out).is_dir():
        raise LstmTuiError(f"{out} is a directory; give a file name such as {Path(out) / 'model.npz'}")
    model, vocab, _ = import_model(path)
    return ckpt_io.save(out, fresh_run_checkpoint(model, vocab, Path(path).name))
