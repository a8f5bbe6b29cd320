"""A new model is one module and one registry line: docs/models.md's bigram, registered here,
trains, saves, loads, samples and runs from the command line with nothing else changed."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT, numeric_grad, run_steps

from core import TrainConfig, Trainer, checkpoint, generate
from core.models import MODELS, ModelConfig, create_model, softmax_cross_entropy

DOC = ROOT / "docs" / "models.md"


@pytest.fixture
def bigram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> type:
    """The docs' example module, imported from the markdown and registered with one line."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- model-example:.*?-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "docs/models.md has no model-example block"
    (tmp_path / "bigram_model.py").write_text(block.group(1))
    spec = importlib.util.spec_from_file_location("bigram_model", tmp_path / "bigram_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bigram_model", module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(MODELS, "bigram", module.CharBigram)  # the one registry line
    return module.CharBigram


def test_its_gradient_matches_finite_differences(bigram: type) -> None:
    rng = np.random.default_rng(0)
    model = create_model(ModelConfig(5, dtype="float64", cell="bigram"), rng)
    x, y = rng.integers(0, 5, (4, 3)), rng.integers(0, 5, (4, 3))

    def loss() -> float:
        logits, _, _ = model.forward(x, ())
        return softmax_cross_entropy(logits.reshape(-1, 5), y.reshape(-1))[0]

    _, grads, _ = model.loss_and_grads(x, y, ())
    numeric = numeric_grad(loss, model.params["W"])
    np.testing.assert_allclose(grads["W"], numeric, rtol=1e-6, atol=1e-9)


def test_it_trains_saves_loads_and_samples(bigram: type, soliloquy, tmp_path: Path) -> None:
    trainer = Trainer(soliloquy, TrainConfig(cell="bigram", batch=8, seq_len=32, lr=0.1, eval_every=0))
    run_steps(trainer, 150)
    assert trainer.smooth_loss < math.log(soliloquy.vocab.size) - 0.8  # well below a uniform guess
    ev = trainer.evaluate()
    assert ev.val_loss < 2.6 and ev.accuracy > 0.25  # what a character's successor tells (spaces after words)
    path = trainer.save(tmp_path / "b.npz")
    ck = checkpoint.load(path)
    assert isinstance(ck.model, bigram) and ck.model.config.cell == "bigram"
    np.testing.assert_array_equal(ck.model.params["W"], trainer.model.params["W"])
    ids = list(generate(ck.model, soliloquy.vocab.encode("to be"), 40, np.random.default_rng(1), temperature=0))
    assert len(ids) == 40  # greedy: through the default stepper (the model's own forward)
    W = trainer.model.params["W"]
    assert ids[0] == int(np.argmax(W[soliloquy.vocab.index["e"]]))  # the table's best successor of "e"


def test_the_command_line_offers_and_trains_it(bigram: type, tmp_path: Path, monkeypatch, capsys) -> None:
    from tui.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["train", "--cell", "bigram", "--steps", "30", "--lr", "0.1", "-q"]) == 0
    capsys.readouterr()  # (the summary)
    assert checkpoint.load(tmp_path / "hamlet.bigram.npz").model.config.cell == "bigram"
    assert main(["sample", "hamlet.bigram.npz", "--prime", "to", "--length", "20", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("to")
    assert main(["train", "--help"]) == 0
    assert "bigram (a table of next-character logits" in capsys.readouterr().out
    assert main(["inspect", "hamlet.bigram.npz"]) == 2  # it has no inside view, and says so
    assert "nothing to look inside" in capsys.readouterr().err
    assert main(["export", "hamlet.bigram.npz", "b.safetensors"]) == 2  # nor a PyTorch counterpart
    assert "no PyTorch counterpart" in capsys.readouterr().err
