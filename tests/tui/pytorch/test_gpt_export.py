"""A GPT's export in nanoGPT's format: the names of nanoGPT's GPT.state_dict(), its GPTConfig in the
metadata, a strict load into nanoGPT's model (docs/pytorch.md's lines, run as printed) that writes
what `lstm-tui sample --temperature 0` writes, and the import back."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, assert_usage_error, run_cli
from threadpoolctl import threadpool_limits

import core
from core import checkpoint as ckpt_io
from core import corpus, recipe
from core.models import ModelConfig
from core.models.gpt import CharGPT
from core.trainer import TrainConfig, Trainer

st = pytest.importorskip("safetensors.numpy")

DOC = ROOT / "docs" / "pytorch.md"


@pytest.fixture(scope="module")
def trained_gpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The soliloquy's GPT (the fitted defaults), trained for 300 steps: confident, so that a greedy
    continuation does not hang on a near tie between two libraries' roundings."""
    text = corpus.load(corpus.bundled_path())
    settings = recipe.choose(len(text.train_ids), text.vocab.size, {"cell": "gpt"}, flops=60e9).settings
    trainer = Trainer(text, TrainConfig(**settings, steps=300, eval_every=0))
    with threadpool_limits(limits=1, user_api="blas"):  # as lstm-tui trains: small products, one thread
        for _ in trainer.run():
            pass
    return trainer.save(tmp_path_factory.mktemp("gpt") / "hamlet.gpt.npz")


def export(ckpt: Path, out: Path) -> Path:
    res = run_cli("export", str(ckpt), str(out), cwd=out.parent)
    assert res.returncode == 0, res.stderr
    return out


def metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:  # the metadata, read from the file's header as the format defines it
        return json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]


def test_the_export_has_nanogpts_names_and_gptconfig(trained_gpt: Path, tmp_path: Path):
    path = export(trained_gpt, tmp_path / "hamlet.safetensors")
    ck = ckpt_io.load(trained_gpt)
    mc = ck.model.config
    tensors = st.load_file(str(path))
    L = mc.layers
    per_block = ["ln_1.weight", "attn.c_attn.weight", "attn.c_proj.weight", "ln_2.weight"]
    per_block += ["mlp.c_fc.weight", "mlp.c_proj.weight"]
    names = {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight", "lm_head.weight"}
    names |= {f"transformer.h.{i}.{n}" for i in range(L) for n in per_block}
    assert set(tensors) == names
    C, V = mc.hidden, mc.vocab_size
    assert tensors["transformer.h.0.attn.c_attn.weight"].shape == (3 * C, C)
    assert tensors["transformer.h.1.mlp.c_proj.weight"].shape == (C, 4 * C)
    np.testing.assert_array_equal(tensors["lm_head.weight"], tensors["transformer.wte.weight"])
    np.testing.assert_array_equal(tensors["transformer.h.0.attn.c_attn.weight"], ck.model.params["Wqkv0"].T)
    meta = metadata(path)
    assert json.loads(meta["vocab"]) == list(ck.vocab.chars)
    config = json.loads(meta["config"])
    assert config == {
        "block_size": mc.block,
        "vocab_size": V,
        "n_layer": L,
        "n_head": mc.heads,
        "n_embd": C,
        "dropout": 0.0,
        "bias": False,
        "cell": "gpt",
    }


def test_nanogpts_model_loads_it_strictly_and_continues_as_sample_does(
    trained_gpt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """docs/pytorch.md's lines, run as printed: their 200 greedy characters after the prime (past
    the block, so the rule for a full block is exercised) are `lstm-tui sample --temperature 0`'s."""
    torch = pytest.importorskip("torch")
    block = re.search(r"<!-- nanogpt-example.*?-->\n```python\n(.*?)```", DOC.read_text(), re.S)
    assert block is not None, "docs/pytorch.md has no nanogpt-example block"
    export(trained_gpt, tmp_path / "hamlet.safetensors")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small: one thread is faster, and kinder to a shared machine
    try:
        exec(compile(block.group(1), str(DOC), "exec"), namespace)  # noqa: S102 - our own docs
    finally:
        torch.set_num_threads(threads)
    res = run_cli(
        "sample", str(trained_gpt), "--prime", "to be, or ", "--length", "200", "--temperature", "0", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert namespace["text"] == res.stdout
    assert len(res.stdout) == 210 and ckpt_io.load(trained_gpt).model.config.block < 210


def test_import_after_export_is_the_same_model(trained_gpt: Path, tmp_path: Path):
    path = export(trained_gpt, tmp_path / "hamlet.safetensors")
    back = tmp_path / "back.npz"
    res = run_cli("import", str(path), str(back), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    a, b = ckpt_io.load(trained_gpt), ckpt_io.load(back)
    assert a.vocab == b.vocab and a.model.config == b.model.config
    for name, v in a.model.params.items():
        assert np.array_equal(v, b.model.params[name]), name
    args = ("--prime", "to be", "--length", "150", "--temperature", "0")
    first, second = (run_cli("sample", str(p), *args, cwd=tmp_path) for p in (trained_gpt, back))
    assert first.returncode == second.returncode == 0 and first.stdout == second.stdout
    res = run_cli("train", "--resume", str(back), "--steps", "3", "-q", cwd=tmp_path)  # and it trains on
    assert res.returncode == 0, res.stderr
    resumed = ckpt_io.load(back)
    assert resumed.meta["step"] == 3 and resumed.meta["train"]["weight_decay"] == 0.1  # nanoGPT's optimizer


def test_a_gpt_made_in_pytorch_imports_with_its_logits(tmp_path: Path):
    """nanoGPT's model with biases and random weights, its characters numbered in its own order."""
    torch = pytest.importorskip("torch")
    from reference_gpt import GPT

    config = ModelConfig(6, hidden=16, layers=2, heads=2, block=8, bias=True, cell="gpt")
    torch.manual_seed(0)
    net = GPT(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    chars = list("zyx ab")  # not in code point order
    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    fields = {"block_size": 8, "vocab_size": 6, "n_layer": 2, "n_head": 2, "n_embd": 16, "bias": True}
    st.save_file(
        state, str(tmp_path / "made.safetensors"), metadata={"vocab": json.dumps(chars), "config": json.dumps(fields)}
    )
    res = run_cli("import", "made.safetensors", "made.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ck = ckpt_io.load(tmp_path / "made.npz")
    assert isinstance(ck.model, CharGPT) and (ck.model.config.heads, ck.model.config.bias) == (2, True)
    text = "ab zyx a"
    with torch.no_grad():
        theirs = net(torch.tensor([[chars.index(c) for c in text]]))[0].numpy()  # (T, V) in their order
    ours = ck.model.forward(ck.vocab.encode(text).reshape(-1, 1), ())[0][:, 0]  # (T, V) in ours
    order = [chars.index(c) for c in ck.vocab.chars]
    np.testing.assert_allclose(ours, theirs[:, order], rtol=1e-4, atol=1e-5)


def gpt_file(tmp_path: Path, change=None, config: dict | None = None) -> None:
    mc = ModelConfig(5, hidden=8, layers=1, heads=2, block=4, cell="gpt")
    model = core.create_model(mc, np.random.default_rng(0))
    tensors = {k: np.array(v) for k, v in CharGPT.to_torch(model.params, mc).items()}
    if change:
        change(tensors)
    meta = {"vocab": json.dumps(list("abcde")), "config": json.dumps(config if config is not None else {"n_head": 2})}
    st.save_file(tensors, str(tmp_path / "g.safetensors"), metadata=meta)


@pytest.mark.parametrize(
    ("change", "config", "needle"),
    [
        (None, {}, "n_head"),
        (lambda t: t.__setitem__("lm_head.weight", t["lm_head.weight"] + 1), None, "tied"),
        (lambda t: t.pop("transformer.h.0.mlp.c_fc.weight"), None, "transformer.h.0.mlp.c_fc.weight"),
        (lambda t: t.pop("transformer.wpe.weight"), None, "transformer.wpe.weight"),
        (None, {"n_head": 3}, "--heads 3 must divide"),
        (None, {"n_head": 2, "cell": "lstm"}, "'lstm'"),
    ],
)
def test_bad_gpt_files_are_one_line_errors(tmp_path: Path, change, config, needle):
    gpt_file(tmp_path, change, config)
    assert_usage_error(run_cli("import", "g.safetensors", "out.npz", cwd=tmp_path), needle)
    assert not (tmp_path / "out.npz").exists()
