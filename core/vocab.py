"""The character set of a corpus and the mapping between characters and integer ids."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from .errors import CorpusError

# Code points are mapped to ids through a dense lookup table when the largest one is
# below this bound (all of the Basic Multilingual Plane: a 256 KiB int32 table).
_TABLE_LIMIT = 0x10000
# Texts are encoded in chunks of this many characters so the UTF-32 copy stays small.
_CHUNK = 1 << 22


def id_dtype(size: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ids below `size`."""
    if size <= 1 << 8:
        return np.dtype(np.uint8)
    if size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.int32)


class Vocab:
    """The sorted distinct characters (Unicode code points) of a text.

    `encode` maps a string to a compact integer array, `decode` maps ids back.
    `encode_known` skips characters outside the vocabulary and tells which they were.
    """

    def __init__(self, chars: Iterable[str]):
        self.chars: tuple[str, ...] = tuple(sorted(set(chars)))
        for ch in self.chars:
            if len(ch) != 1:
                raise ValueError(f"vocabulary entries must be single characters, got {ch!r}")
        self.index: dict[str, int] = {ch: i for i, ch in enumerate(self.chars)}
        self.dtype = id_dtype(len(self.chars))
        codes = np.array([ord(c) for c in self.chars], dtype=np.int64)
        self._codes = codes  # (V,) sorted code points
        self._table: NDArray[np.int32] | None = None
        if len(codes) and codes[-1] < _TABLE_LIMIT:
            table = np.full(int(codes[-1]) + 1, -1, dtype=np.int32)
            table[codes] = np.arange(len(codes), dtype=np.int32)
            self._table = table

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        """The vocabulary of every distinct character in `text`."""
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def size(self) -> int:
        """V, the number of distinct characters."""
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Vocab(size={self.size})"

    def _lookup(self, codes: NDArray[np.uint32]) -> NDArray[np.int64]:
        """Ids for an array of code points; -1 where a code point is not in the vocabulary."""
        if self._table is not None:
            inside = codes < len(self._table)
            ids = np.full(codes.shape, -1, dtype=np.int64)
            ids[inside] = self._table[codes[inside]]
            return ids
        pos = np.searchsorted(self._codes, codes)
        pos = np.minimum(pos, len(self._codes) - 1)
        return np.where(self._codes[pos] == codes, pos, -1)

    def _chunks(self, text: str):
        """(start, ids) per chunk of `text`, ids -1 where a character is not in the vocabulary."""
        for start in range(0, len(text), _CHUNK):
            piece = text[start : start + _CHUNK]
            codes = np.frombuffer(piece.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            yield start, self._lookup(codes)

    def encode(self, text: str) -> NDArray:
        """Ids of every character of `text`; raises CorpusError on a character not in the vocabulary.

        The result is a compact array (one byte per character for up to 256 symbols), filled
        chunk by chunk so encoding a large text needs little more memory than the result.
        """
        out = np.empty(len(text), dtype=self.dtype)
        for start, ids in self._chunks(text):
            if ids.size and ids.min() < 0:
                bad = text[start + int(np.argmin(ids >= 0))]
                raise CorpusError(f"character {bad!r} is not in the vocabulary")
            out[start : start + len(ids)] = ids
        return out

    def encode_known(self, text: str) -> tuple[NDArray, list[str]]:
        """Ids of the known characters of `text`, and the distinct unknown ones that were skipped."""
        parts: list[NDArray] = []
        skipped: dict[str, None] = {}  # insertion-ordered set
        for start, ids in self._chunks(text):
            known = ids >= 0
            parts.append(ids[known].astype(self.dtype))
            for i in np.flatnonzero(~known):
                skipped.setdefault(text[start + int(i)])
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)
        return ids, list(skipped)

    def decode(self, ids: Sequence[int] | NDArray) -> str:
        """The text spelled by `ids`."""
        chars = self.chars
        return "".join(chars[int(i)] for i in ids)
