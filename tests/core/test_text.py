"""Reading a text: the checks and their messages, the split, the vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import run_steps, tiny_config

from core import (
    CorpusError,
    StepReport,
    Trainer,
    Vocab,
    corpus,
)

HAMLET_SHA = "d6bc132567a2fd9e83c9253a84692c166529ff7cf39d4b1c3b170be4e1573a58"


def test_bundled_corpus_is_the_notebooks_soliloquy():
    import hashlib

    path = corpus.bundled_path()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == HAMLET_SHA
    c = corpus.load(path)
    assert (c.size, c.vocab.size) == (866, 32)
    assert not c.split and "whole text" in c.note
    assert c.text().startswith("to be, or not to be")


def test_unicode_text_works_like_english():
    text = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 3 + "café naïve"
    c = corpus.from_text(text)
    assert c.text() == text
    assert c.vocab.size == len(set(text))
    trainer = Trainer(c, tiny_config())
    reports = run_steps(trainer, 3)
    assert any(isinstance(r, StepReport) for r in reports)


def test_lowercase_option():
    c = corpus.from_text("Hello World", lowercase=True)
    assert c.text() == "hello world"


def test_large_texts_are_split_for_validation():
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh \n"), 20_000))
    c = corpus.from_text(text)
    assert c.split
    assert len(c.val_ids) == 2000 and c.n_train == 18_000
    assert "validation" in c.note
    assert corpus.from_text(text, val_fraction=0).split is False


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "empty"),
        (b"   \n\t  \n", "only whitespace"),
        (b"aaaaaaa", "only 1 distinct character"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "looks binary"),
        (b"caf\xe9 au lait", "not valid utf-8"),
    ],
)
def test_bad_corpora_are_refused_with_one_line(tmp_path, content, expected):
    p = tmp_path / "text.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError) as e:
        corpus.load(p)
    msg = str(e.value)
    assert expected in msg and "\n" not in msg


def test_undecodable_text_names_offset_and_encoding_option(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("naïve café".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"offset 2.*--encoding"):
        corpus.load(p)
    assert corpus.load(p, encoding="latin-1").text() == "naïve café"


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        corpus.load(tmp_path / "nope.txt")
    with pytest.raises(CorpusError, match="is a directory"):
        corpus.load(tmp_path)


def test_an_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    p = tmp_path / "secret.txt"
    p.write_text("hello there")

    def denied(self):  # chmod 000 cannot stop root, so stand in for the kernel's refusal
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CorpusError, match="cannot read .*permission denied"):
        corpus.load(p)


def test_byte_order_mark_and_line_endings(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbfline one\r\nline two\rthree\n")
    c = corpus.load(p)
    assert c.text() == "line one\nline two\nthree\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_with_a_byte_order_mark_load_without_the_option(tmp_path, encoding):
    text = "naïve café, 春眠不觉晓\n" * 3
    p = tmp_path / "wide.txt"
    bom = {"utf-16": b"", "utf-16-be": b"\xfe\xff", "utf-32": b""}[encoding]
    p.write_bytes(bom + text.encode(encoding))
    assert corpus.load(p).text() == text


def test_unknown_encoding_is_a_clear_error(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello")
    with pytest.raises(CorpusError, match="unknown encoding"):
        corpus.load(p, encoding="klingon-8")


def test_vocab_encode_decode_and_unknown_characters():
    v = Vocab.from_text("hello world")
    assert v.chars == tuple(sorted(set("hello world")))
    ids = v.encode("hold")
    assert v.decode(ids) == "hold"
    known, skipped = v.encode_known("hex? wow!")
    assert v.decode(known) == "he wow"
    assert skipped == ["x", "?", "!"]
    with pytest.raises(CorpusError):
        v.encode("xyz")


def test_vocab_beyond_the_basic_plane():
    text = "a😀b😀c𝄞"
    v = Vocab.from_text(text)
    assert v.decode(v.encode(text)) == text
    ids, skipped = v.encode_known("a🙃b")
    assert v.decode(ids) == "ab" and skipped == ["🙃"]
