"""Reading a text to train on: the checks, their messages, and the train/validation split.

The corpus keeps only a compact integer array of character ids (one byte per character for
vocabularies up to 256 symbols), never a one-hot copy, so memory stays proportional to the text.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .errors import CorpusError
from .vocab import Vocab

# A split is made only when both parts get at least this many characters; below that the
# validation loss would be noise, so the model trains and evaluates on the whole text.
MIN_SPLIT_CHARS = 500
DEFAULT_VAL_FRACTION = 0.1
# Code points are counted in chunks of this many characters while building the vocabulary.
_CHUNK = 1 << 22


@dataclass(frozen=True, eq=False)
class Corpus:
    """A validated text as ids, its vocabulary, and its train/validation split."""

    name: str  # file name or a label such as "<text>"
    vocab: Vocab
    ids: NDArray  # (N,) the whole text as ids
    n_train: int  # ids[:n_train] train; ids[n_train:] validate (when split)
    split: bool  # False: training text is also the evaluation text
    note: str  # one line on how the text was split, for reports
    path: str | None = None  # the file's absolute path, when read from a file

    @property
    def size(self) -> int:
        """N, the number of characters."""
        return len(self.ids)

    @property
    def train_ids(self) -> NDArray:
        """The training text as ids."""
        return self.ids[: self.n_train]

    @property
    def val_ids(self) -> NDArray:
        """The evaluation text as ids: the validation part, or the whole text when unsplit."""
        return self.ids[self.n_train :] if self.split else self.ids

    def text(self, start: int = 0, stop: int | None = None) -> str:
        """The characters ids[start:stop] as a string."""
        return self.vocab.decode(self.ids[start:stop])

    def with_vocab(self, vocab: Vocab) -> Corpus:
        """The same text, split the same way, as ids of `vocab`, which must hold every character of
        it: a model's vocabulary reading a text that uses only some of its characters. CorpusError
        naming up to five characters `vocab` lacks."""
        if vocab == self.vocab:
            return self
        missing = [ch for ch in self.vocab.chars if ch not in vocab]
        if missing:
            shown = "".join(missing[:5]) + ("…" if len(missing) > 5 else "")
            raise CorpusError(f"{self.name} has {len(missing)} characters the model never saw ({shown!r})")
        table = np.array([vocab.index[ch] for ch in self.vocab.chars], dtype=vocab.dtype)  # (V_text,)
        return replace(self, vocab=vocab, ids=table[self.ids])


def fingerprint(vocab: Vocab, ids: NDArray) -> str:
    """A short hash of a text as ids of `vocab`: equal for the same characters in the same order."""
    h = hashlib.sha256("".join(vocab.chars).encode("utf-8", "surrogatepass"))
    h.update(str(np.asarray(ids).dtype).encode())
    h.update(np.ascontiguousarray(ids).view(np.uint8).data)
    return h.hexdigest()[:16]


def _count_codes(text: str) -> NDArray[np.int64]:
    """Per-code-point character counts of `text` (length 0x110000 at most)."""
    counts = np.zeros(0, dtype=np.int64)
    for start in range(0, len(text), _CHUNK):
        piece = text[start : start + _CHUNK]
        codes = np.frombuffer(piece.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        c = np.bincount(codes)
        if len(c) > len(counts):
            c[: len(counts)] += counts
            counts = c
        else:
            counts[: len(c)] += c
    return counts


def from_text(
    text: str,
    name: str = "<text>",
    lowercase: bool = False,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Corpus:
    """Validate `text`, build its vocabulary and split it; raises CorpusError with a one-line reason."""
    if not 0.0 <= val_fraction < 1.0 or val_fraction != val_fraction:
        raise CorpusError(f"validation fraction must be in [0, 1), got {val_fraction}")
    if "\r" in text:  # mixed or Windows line endings become "\n", as in Python's text mode
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if lowercase:
        text = text.lower()
    if not text:
        raise CorpusError(f"{name} is empty; give a text with at least 2 distinct characters")
    if text.isspace():
        raise CorpusError(f"{name} contains only whitespace; give it some text to learn")
    if "\x00" in text:
        raise CorpusError(f"{name} looks binary (it contains NUL characters); give a text file")
    counts = _count_codes(text)
    codes = np.flatnonzero(counts)
    if len(codes) < 2:
        raise CorpusError(
            f"{name} has only 1 distinct character ({chr(int(codes[0]))!r}); a language model needs at least 2"
        )
    vocab = Vocab(chr(int(c)) for c in codes)
    ids = vocab.encode(text)
    n = len(ids)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val >= MIN_SPLIT_CHARS and n - n_val >= MIN_SPLIT_CHARS:
        n_train, split = n - n_val, True
        note = f"last {n_val:,} characters ({val_fraction:.0%}) held out for validation"
    else:
        n_train, split = n, False
        why = "validation disabled" if val_fraction == 0 else f"text too short to hold out {val_fraction:.0%}"
        note = f"{why}: training and evaluating on the whole text"
    return Corpus(name=name, vocab=vocab, ids=ids, n_train=n_train, split=split, note=note)


# Byte-order marks of the wide Unicode encodings (UTF-32 first: its LE mark starts with UTF-16's).
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(raw: bytes, encoding: str, name: str) -> str:
    """`raw` decoded with `encoding`; a clear CorpusError naming the byte offset if it fails."""
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # drop a byte-order mark
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        hint = "; pass its encoding (for example --encoding latin-1)" if e.encoding.startswith("utf") else ""
        raise CorpusError(
            f"{name} is not valid {encoding.removesuffix('-sig')} text "
            f"(byte 0x{raw[e.start]:02x} at offset {e.start}){hint}"
        ) from None


def read_text(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """The text of the file at `path`, checked and decoded (line endings as they are); raises
    CorpusError with a one-line reason for a missing, unreadable, empty, binary or undecodable file."""
    p = Path(path)
    name = p.name or str(p)
    if not p.exists():
        raise CorpusError(f"no such file: {p}")
    if p.is_dir():
        raise CorpusError(f"{p} is a directory; give a text file")
    try:
        raw = p.read_bytes()
    except PermissionError:
        raise CorpusError(f"cannot read {p}: permission denied") from None
    except OSError as e:
        raise CorpusError(f"cannot read {p}: {e.strerror or e}") from None
    if not raw:
        raise CorpusError(f"{name} is empty; give a text with at least 2 distinct characters")
    try:
        codec = codecs.lookup(encoding).name
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r}") from None
    if codec == "utf-8":  # the default: a UTF-16/32 byte-order mark says what the file really is
        for bom, name_ in _WIDE_BOMS:
            if raw.startswith(bom):
                encoding = codec = name_
                break
    wide = codec.startswith(("utf-16", "utf-32"))
    offset = -1 if wide else raw.find(b"\x00")  # NUL bytes are normal only in UTF-16/32
    if offset >= 0:
        raise CorpusError(f"{name} looks binary (NUL byte at offset {offset}); give a text file")
    return _decode(raw, encoding, name)


def load(
    path: str | os.PathLike[str],
    encoding: str = "utf-8",
    lowercase: bool = False,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> Corpus:
    """Read, check and split the text file at `path`; raises CorpusError with a one-line reason."""
    p = Path(path)
    text = read_text(p, encoding)
    corpus = from_text(text, name=p.name or str(p), lowercase=lowercase, val_fraction=val_fraction)
    return replace(corpus, path=str(p.resolve()))


def bundled_path() -> Path:
    """The bundled corpus: Hamlet's soliloquy as the original notebook used it.

    An installed wheel carries it as core/assets/hamlet.txt; a checkout has it in assets/.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "assets" / "hamlet.txt", here.parent / "assets" / "hamlet.txt"):
        if candidate.is_file():
            return candidate
    raise CorpusError("the bundled corpus is missing from this installation; give a text file")
