"""`lstm-tui export` and `lstm-tui import`: our models as PyTorch's nn.LSTM + nn.Linear tensors.

The bad-file tests need only NumPy and safetensors (files are built with safetensors.numpy);
the tests that load the tensors into PyTorch skip when torch is not installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, assert_usage_error, run_cli

import core
from core import checkpoint as ckpt_io
from core import corpus
from core.trainer import TrainConfig, Trainer

st = pytest.importorskip("safetensors.numpy")  # a dependency of lstm-tui; present wherever it is installed

README = ROOT / "README.md"


def trained(tmp_path: Path, dtype: str, layers: int = 2, steps: int = 25, cell: str = "lstm") -> Path:
    """A checkpoint of a small model trained a little on the soliloquy (so no weight is at its init)."""
    text = corpus.load(corpus.bundled_path())
    cfg = TrainConfig(hidden=16, layers=layers, dtype=dtype, steps=steps, eval_every=0, cell=cell)
    trainer = Trainer(text, cfg)
    for _ in trainer.run():
        pass
    return trainer.save(tmp_path / f"model-{cell}-{dtype}.npz")


MODULES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}  # the cell's nn class, and its prefix in lowercase


def export(ckpt: Path, tmp_path: Path) -> Path:
    out = tmp_path / (ckpt.stem + ".safetensors")
    res = run_cli("export", str(ckpt), str(out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.parametrize(
    ("cell", "dtype", "tolerance"),
    [("lstm", "float64", 1e-5), ("lstm", "float32", 1e-4), ("gru", "float64", 1e-5), ("rnn", "float64", 1e-5)],
)
def test_export_loads_into_torch_by_name_and_scores_our_loss(tmp_path: Path, cell: str, dtype: str, tolerance: float):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    ckpt = trained(tmp_path, dtype, cell=cell)
    path = export(ckpt, tmp_path)
    ck = ckpt_io.load(ckpt)
    tensors = load_file(str(path))
    with open(path, "rb") as f:  # the metadata, read from the file's header as the format defines it
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
    vocab = json.loads(header["vocab"])
    assert vocab == list(ck.vocab.chars)
    assert json.loads(header["config"])["cell"] == cell and header["lstm_tui_version"] == core.__version__
    V, H, L = len(vocab), 16, 2
    rnn = getattr(torch.nn, MODULES[cell])(V, H, L)  # nn.LSTM(V, H, L), nn.GRU(...), nn.RNN(...)
    net = torch.nn.ModuleDict({cell: rnn, "readout": torch.nn.Linear(H, V)})
    net.load_state_dict(tensors, strict=True)  # every name present, none extra, every shape right
    net.to(getattr(torch, dtype))
    P = ck.model.params
    for k in range(L):  # biases, gate by gate
        b_ih, b_hh = (tensors[f"{cell}.bias_{w}_l{k}"].numpy() for w in ("ih", "hh"))
        if cell == "lstm":  # theirs i, f, g, o; ours i, f, o, g; the two sum to ours
            ours = P[f"b{k}"].reshape(4, H)
            assert np.array_equal((b_ih + b_hh).reshape(4, H), ours[[0, 1, 3, 2]])
            g_theirs = tensors[f"lstm.weight_hh_l{k}"].numpy()[2 * H : 3 * H]  # (H, H) their g block
            assert np.array_equal(g_theirs, P[f"Wh{k}"][:, 3 * H :].T)
        elif cell == "gru":  # r, z, n in both; the recurrent candidate bias is our bhn
            assert np.array_equal(b_ih, P[f"b{k}"]) and np.array_equal(b_hh[2 * H :], P[f"bhn{k}"])
            assert not b_hh[: 2 * H].any()
        else:
            assert np.array_equal(b_ih + b_hh, P[f"b{k}"])

    text = corpus.load(corpus.bundled_path())
    ours = core.evaluate(ck.model, text.ids, text.vocab).loss
    ids = torch.from_numpy(text.ids.astype(np.int64))
    onehot = torch.nn.functional.one_hot(ids[:-1], V).to(getattr(torch, dtype))[:, None, :]  # (T, 1, V)
    with torch.no_grad():
        out, _ = net[cell](onehot)
        theirs = torch.nn.functional.cross_entropy(net["readout"](out)[:, 0], ids[1:]).item()
    assert abs(theirs - ours) < tolerance, (theirs, ours)
    assert ours < np.log(V) - 0.3  # a trained model: the comparison is not between two uniform guesses


def test_readme_lines_load_an_export_and_generate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The README's PyTorch lines, run exactly as printed, continue the prime as our greedy sampler does."""
    pytest.importorskip("torch")
    block = re.search(r"<!-- torch-example.*?-->\n```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "the README has no torch-example block"
    ckpt = trained(tmp_path, "float32", layers=1, steps=150)
    path = export(ckpt, tmp_path)
    monkeypatch.chdir(tmp_path)
    path.rename(tmp_path / "hamlet.safetensors")
    namespace: dict = {}
    exec(compile(block.group(1), str(README), "exec"), namespace)  # noqa: S102 - our own README
    ck = ckpt_io.load(ckpt)
    prime = "to be, or "
    greedy = core.generate(ck.model, ck.vocab.encode(prime), 60, np.random.default_rng(0), temperature=0)
    assert namespace["text"] == prime + ck.vocab.decode(list(greedy))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_import_after_export_generates_the_same_text(tmp_path: Path, cell: str):
    ckpt = trained(tmp_path, "float32", cell=cell)
    path = export(ckpt, tmp_path)
    back = tmp_path / "back.npz"
    res = run_cli("import", str(path), str(back), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    a, b = ckpt_io.load(ckpt), ckpt_io.load(back)
    assert a.vocab == b.vocab and a.model.config == b.model.config
    for name, v in a.model.params.items():
        assert np.array_equal(v, b.model.params[name]), name
    args = ("--prime", "to be", "--length", "200", "--temperature", "0")
    first, second = run_cli("sample", str(ckpt), *args, cwd=tmp_path), run_cli("sample", str(back), *args, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout and len(first.stdout) == len("to be") + 200
    # the imported checkpoint also resumes: training continues from its weights
    res = run_cli("train", "--resume", str(back), "--steps", "3", "-q", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load(back).meta["step"] == 3


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_import_of_a_plain_pytorch_model_gives_torchs_logits(tmp_path: Path, cell: str):
    """A model made in PyTorch: random weights, a nonzero bias_hh, characters numbered in its own order."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    chars = list("zyx wvu.tsrqpon,mlkjihgfedcba")  # not in code point order
    V, H, L = len(chars), 8, 2
    rnn = getattr(torch.nn, MODULES[cell])(V, H, L)
    net = torch.nn.ModuleDict({cell: rnn, "readout": torch.nn.Linear(H, V)}).double()
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.5, 0.5)  # bias_hh included
    save_file(net.state_dict(), str(tmp_path / "theirs.safetensors"), metadata={"vocab": json.dumps(chars)})
    res = run_cli("import", "theirs.safetensors", "ours.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load(tmp_path / "ours.npz")
    assert ck.model.config.cell == cell
    text = "the quick brown fox, jumps over the lazy dog."
    their_ids = torch.tensor([chars.index(c) for c in text])
    with torch.no_grad():
        out, _ = net[cell](torch.nn.functional.one_hot(their_ids, V).double()[:, None])
        their_logits = net["readout"](out)[:, 0].numpy()  # (n, V) in their character order
    logits, _, _ = ck.model.forward(ck.vocab.encode(text).astype(np.int64)[:, None], ck.model.initial_state(1))
    ours = logits[:, 0]  # (n, V) in ours
    order = [chars.index(c) for c in ck.vocab.chars]
    np.testing.assert_allclose(ours, their_logits[:, order], rtol=0, atol=1e-12)


# ------------------------------------------------------------------- bad files (no torch)
def good_tensors(V: int = 5, H: int = 3, L: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = {}
    for k in range(L):
        t[f"lstm.weight_ih_l{k}"] = rng.standard_normal((4 * H, V if k == 0 else H)).astype(np.float32)
        t[f"lstm.weight_hh_l{k}"] = rng.standard_normal((4 * H, H)).astype(np.float32)
        t[f"lstm.bias_ih_l{k}"] = rng.standard_normal(4 * H).astype(np.float32)
        t[f"lstm.bias_hh_l{k}"] = rng.standard_normal(4 * H).astype(np.float32)
    t["readout.weight"] = rng.standard_normal((V, H)).astype(np.float32)
    t["readout.bias"] = rng.standard_normal(V).astype(np.float32)
    return t


VOCAB = json.dumps(list("abcde"))


def without(name: str) -> dict[str, np.ndarray]:
    t = good_tensors()
    del t[name]
    return t


def changed(name: str, value: np.ndarray) -> dict[str, np.ndarray]:
    t = good_tensors()
    t[name] = value
    return t


BAD = {
    "missing weight": (without("lstm.weight_ih_l0"), {"vocab": VOCAB}, "lstm.weight_ih_l0"),
    "missing bias": (without("lstm.bias_hh_l0"), {"vocab": VOCAB}, "lstm.bias_hh_l0"),
    "missing readout": (without("readout.weight"), {"vocab": VOCAB}, "readout.weight"),
    "extra name": (changed("embedding.weight", np.zeros((5, 3), np.float32)), {"vocab": VOCAB}, "embedding.weight"),
    "bidirectional": (changed("lstm.weight_ih_l0_reverse", np.zeros((12, 5), np.float32)), {"vocab": VOCAB}, "reverse"),
    "wrong shape": (changed("lstm.weight_hh_l0", np.zeros((12, 4), np.float32)), {"vocab": VOCAB}, "shape"),
    "wrong readout": (changed("readout.bias", np.zeros(6, np.float32)), {"vocab": VOCAB}, "readout.bias"),
    "integers": (changed("readout.bias", np.zeros(5, np.int64)), {"vocab": VOCAB}, "int64"),
    "no vocabulary": (good_tensors(), {}, "vocab"),
    "vocabulary too short": (good_tensors(), {"vocab": json.dumps(list("abcd"))}, "4 characters"),
    "vocabulary not json": (good_tensors(), {"vocab": "abcde"}, "JSON"),
    "vocabulary of words": (good_tensors(), {"vocab": json.dumps(["a", "b", "c", "d", "ee"])}, "single characters"),
    "vocabulary repeats": (good_tensors(), {"vocab": json.dumps(list("abcda"))}, "twice"),
    "cell mismatch": (good_tensors(), {"vocab": VOCAB, "config": json.dumps({"cell": "gru"})}, "'gru'"),
    "unknown cell": (good_tensors(), {"vocab": VOCAB, "config": json.dumps({"cell": "lstm2"})}, "lstm2"),
    "relu rnn": (
        {k.replace("lstm.", "rnn."): v[: len(v) // 4] if "lstm." in k else v for k, v in good_tensors().items()},
        {"vocab": VOCAB, "config": json.dumps({"nonlinearity": "relu"})},
        "relu",
    ),
    "two modules": (
        {**good_tensors(), "gru.weight_hh_l0": np.zeros((9, 3), np.float32)},
        {"vocab": VOCAB},
        "more than one",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_import_refuses_bad_files_in_one_line(tmp_path: Path, case: str):
    tensors, metadata, needle = BAD[case]
    st.save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=metadata or None)
    res = run_cli("import", "bad.safetensors", "out.npz", cwd=tmp_path)
    assert_usage_error(res, needle)
    assert not (tmp_path / "out.npz").exists()


def test_a_good_file_of_the_same_making_imports(tmp_path: Path):
    """The files above fail for the reason each names, not for how they were made."""
    st.save_file(good_tensors(L=2), str(tmp_path / "good.safetensors"), metadata={"vocab": VOCAB})
    res = run_cli("import", "good.safetensors", "out.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load(tmp_path / "out.npz")
    assert (ck.model.config.vocab_size, ck.model.config.hidden, ck.model.config.layers) == (5, 3, 2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("import", "missing.safetensors", "out.npz"), "no such file"),
        (("import", "notes.txt", "out.npz"), "not a readable .safetensors"),
        (("export", "missing.npz", "out.safetensors"), "no such checkpoint"),
        (("export", "notes.txt", "out.safetensors"), "not an lstm-tui checkpoint"),
        (("import",), "required"),
        (("export", "model.npz", "."), "is a directory"),
        (("import", "model.safetensors", "."), "is a directory"),
    ],
)
def test_missing_or_foreign_files_are_one_line_errors(tmp_path: Path, args: tuple[str, ...], needle: str):
    (tmp_path / "notes.txt").write_text("just some text, long enough to be a header " * 4)
    st.save_file(good_tensors(), str(tmp_path / "model.safetensors"), metadata={"vocab": VOCAB})
    run_cli("import", "model.safetensors", "model.npz", cwd=tmp_path)
    assert_usage_error(run_cli(*args, cwd=tmp_path), needle)
