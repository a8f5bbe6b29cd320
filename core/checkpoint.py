"""Checkpoints: one .npz of arrays plus a JSON header, written atomically, read without pickle.

Layout of the archive (every entry a plain array; `allow_pickle=False` on load):
    meta            uint8 bytes of a UTF-8 JSON object: format, version, vocabulary, configs, counters
    param/<name>    model parameters
    opt/<slot>/<name>  optimizer moments
    state/h<l>, state/c<l>  the carried state of every stream (c only for an LSTM)
    data/positions  the streams' positions in the text
    history/...     loss history for the graph
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray

from .errors import CheckpointError, ConfigError
from .models import CharModel, ModelConfig, load_model
from .vocab import Vocab

FORMAT = "lstm-tui-checkpoint"
# 2: the model configuration records its cell (lstm, gru, rnn). Version 1 files, written before
# there was a choice, hold LSTMs and still load.
VERSION = 2
READABLE_VERSIONS = (1, 2)


@dataclass(eq=False)
class Checkpoint:
    """What a checkpoint holds: the model and vocabulary, and everything needed to resume."""

    model: CharModel
    vocab: Vocab
    meta: dict[str, Any] = field(default_factory=dict)  # train config, counters, rng state, ...
    arrays: dict[str, NDArray] = field(default_factory=dict)  # opt/, state/, data/, history/

    def group(self, prefix: str) -> dict[str, NDArray]:
        """The arrays under `prefix/`, with the prefix removed from their names."""
        p = prefix.rstrip("/") + "/"
        return {k[len(p) :]: v for k, v in self.arrays.items() if k.startswith(p)}


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _new_file_mode(target: Path) -> int:
    """The permissions a plain open() would give: the old file's, else 0o666 less the umask.

    (mkstemp creates 0o600 files; a checkpoint should be as readable as any other file.)
    """
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    try:  # read the umask without os.umask(), which would briefly change it for every thread
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: `write(f)` fills a temporary file in the same folder, which is
    flushed, fsynced and renamed over `path` (and the folder fsynced). A crash at any point leaves
    the old file intact; a new file gets the mode the umask gives, a replaced one keeps its own.
    Raises OSError, which the caller words for its user."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    tmp_name = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.fchmod(fd, _new_file_mode(target))
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
        _fsync_dir(folder)
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return target


def save(path: str | os.PathLike[str], ckpt: Checkpoint) -> Path:
    """Write `ckpt` to `path` atomically: a temporary file in the same folder, flushed and
    fsynced, then renamed over the target. A crash at any point leaves the old file intact."""
    target = Path(path)
    meta = dict(ckpt.meta)
    meta.update(
        format=FORMAT,
        version=VERSION,
        vocab="".join(ckpt.vocab.chars),
        model=ckpt.model.config.to_dict(),
    )
    arrays: dict[str, NDArray] = {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)}
    arrays.update({f"param/{k}": v for k, v in ckpt.model.params.items()})
    arrays.update(ckpt.arrays)
    try:
        return write_atomically(target, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]
    except OSError as e:
        raise CheckpointError(f"cannot save checkpoint to {target}: {e.strerror or e}") from None


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and validate a checkpoint; raises CheckpointError with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"no such checkpoint: {p}")
    if p.is_dir():
        raise CheckpointError(f"{p} is a directory, not a checkpoint")
    try:
        f = open(p, "rb")
    except OSError as e:
        raise CheckpointError(f"cannot read {p}: {e.strerror or e}") from None
    with f:
        return read(f, p)


def load_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of the checkpoint at `path`, read without its arrays (a quick look at what a
    file holds: which run, which text, which score); CheckpointError with a one-line reason."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no such checkpoint: {p}")
    try:
        with open(p, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise CheckpointError(f"{p} is not an lstm-tui checkpoint (not a .npz archive)")
            f.seek(0)
            with np.load(f, allow_pickle=False) as z:
                if "meta" not in z.files:
                    raise CheckpointError(f"{p} is a .npz archive but not an lstm-tui checkpoint")
                meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    except CheckpointError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{p} is corrupt or unreadable ({type(e).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{p} is a .npz archive but not an lstm-tui checkpoint")
    return meta


def read(f: BinaryIO, p: Path) -> Checkpoint:
    """Read and validate the checkpoint in the open file `f` (named `p` in messages).

    Everything comes from this one open file: if the path is replaced meanwhile (a save is an
    atomic rename), the file read is still the complete one that was opened.
    """
    try:
        head = f.read(4)
        f.seek(0)
    except OSError as e:
        raise CheckpointError(f"cannot read {p}: {e.strerror or e}") from None
    if head[:1] == b"\x80":
        raise CheckpointError(f"{p} contains pickled Python objects; refusing to load it")
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{p} is not an lstm-tui checkpoint (not a .npz archive)")
    try:
        with np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"{p} contains pickled Python objects; refusing to load it") from None
        raise CheckpointError(f"{p} is corrupt or truncated ({e})") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{p} is corrupt or truncated ({type(e).__name__})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{p} is a .npz archive but not an lstm-tui checkpoint")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{p} has an unreadable header; it is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{p} is a .npz archive but not an lstm-tui checkpoint")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{p} uses checkpoint format version {meta.get('version')}; "
            f"this lstm-tui reads versions {', '.join(map(str, READABLE_VERSIONS))}"
        )
    try:
        vocab = Vocab(meta["vocab"])
        model_meta = dict(meta["model"])
        if meta["version"] == 1:
            model_meta.setdefault("cell", "lstm")  # version 1 had only the LSTM
        config = ModelConfig(**model_meta)
        if config.vocab_size != vocab.size:
            raise ConfigError("vocabulary size does not match the model")
        params = {k[len("param/") :]: v for k, v in arrays.items() if k.startswith("param/")}
        for k, v in params.items():
            if v.dtype != np.dtype(config.dtype):
                raise ConfigError(f"parameter {k} has dtype {v.dtype}, expected {config.dtype}")
        model = load_model(config, params)
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{p} is inconsistent: {e}") from None
    rest = {k: v for k, v in arrays.items() if not k.startswith("param/")}
    return Checkpoint(model=model, vocab=vocab, meta=meta, arrays=rest)
