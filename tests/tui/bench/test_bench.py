"""The benchmark's own logic on its tiny configuration. No test here asserts a time."""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from helpers import numeric_grad

from tui.bench import measure as bench
from tui.bench.notebook import NotebookLSTM


def run_bench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    code = bench.run(parser.parse_args(list(argv)))
    return code, capsys.readouterr().out


def positive(v: object) -> bool:
    return isinstance(v, float) and math.isfinite(v) and v > 0


@pytest.mark.slow
def test_quick_json_has_every_section_and_field(capsys):
    code, out = run_bench(capsys, "--quick", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["profile"] == "quick"
    assert report["torch"] == {
        "requested": False,
        "available": False,
        "version": None,
        "reason": None,
        "default_threads": None,
    }
    machine = report["machine"]
    assert machine["cpus"] >= 1
    assert "architecture" in machine["blas"] or not machine["blas"]["available"]
    assert set(machine["env"]) >= {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}

    rows = {r["name"]: r for r in report["training"]}
    assert set(rows) == {c.name for c in bench.QUICK.cases}
    for r in rows.values():
        assert positive(r["ours_chars_per_s"])
        assert r["torch_chars_per_s"] is None and r["ours_over_torch"] is None
        # ours on the count `train` would choose, which the scaling table also holds
        assert 1 <= r["ours_threads"] <= min(machine["cpus"], r["batch"]) and r["ours_threads_why"]
        assert r["scaling"]["ours"][str(r["ours_threads"])] == r["ours_chars_per_s"]
        assert r["one_thread"]["ours_chars_per_s"] == r["scaling"]["ours"]["1"]
        assert all(int(n) <= r["batch"] for n in r["scaling"]["ours"])  # never more threads than streams
    nb_row = rows["tiny-notebook"]
    assert nb_row["batch"] == 1 and nb_row["seq_len"] == 865  # the whole soliloquy in one window
    assert positive(nb_row["notebook_chars_per_s"])
    assert nb_row["ours_over_notebook"] == pytest.approx(nb_row["ours_chars_per_s"] / nb_row["notebook_chars_per_s"])
    assert rows["tiny-b4"]["notebook_chars_per_s"] is None  # the notebook has no batched setting

    assert report["cells"] == ["lstm"]
    assert all(r["cell"] == "lstm" for r in report["training"])
    (gen,) = report["generation"]
    assert gen["cell"] == "lstm"
    assert positive(gen["ours_chars_per_s"]) and positive(gen["ours_first_char_ms"])
    assert gen["seed_chars"] == 50 and gen["torch_chars_per_s"] is None

    (learn,) = report["learn"]
    assert learn["target_nats"] == 0.1
    assert 1 <= learn["ours"]["steps"] <= bench.QUICK.learn_max_steps
    assert learn["ours"]["reached"] == (learn["ours"]["loss"] < 0.1)
    assert learn["notebook"]["epochs"] <= bench.QUICK.learn_max_epochs
    assert learn["notebook"]["loss"] > 0

    (mem,) = report["memory"]
    assert "error" not in mem, mem.get("error")
    assert mem["peak_rss_mib"] >= mem["baseline_rss_mib"] > 0


def test_missing_torch_is_reported_and_the_rest_still_runs(capsys, monkeypatch):
    monkeypatch.setattr(bench, "load_torch", lambda: (None, "PyTorch is not installed; pip install 'lstm-tui[torch]'"))
    code, out = run_bench(capsys, "--quick", "--compare", "torch", "--only", "training", "--case", "tiny-b4")
    assert code == 0
    assert "PyTorch comparison skipped: PyTorch is not installed" in out
    assert "| lstm H=16 L=2 B=4 T=12 |" in out  # our column was still measured

    code, out = run_bench(capsys, "--quick", "--compare", "torch", "--only", "generation", "--json")
    report = json.loads(out)
    assert report["torch"]["requested"] and not report["torch"]["available"]
    assert "pip install" in report["torch"]["reason"]
    assert report["generation"][0]["torch_chars_per_s"] is None


@pytest.mark.slow
def test_torch_comparison_fills_its_columns(capsys):
    pytest.importorskip("torch")
    code, out = run_bench(
        capsys, "--quick", "--compare", "torch", "--only", "training", "--only", "generation", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["torch"]["available"] and report["torch"]["version"]
    for r in report["training"]:
        assert positive(r["torch_chars_per_s"])
        assert r["ours_over_torch"] == pytest.approx(r["ours_chars_per_s"] / r["torch_chars_per_s"])
    assert positive(report["generation"][0]["torch_chars_per_s"])
    assert positive(report["generation"][0]["torch_first_char_ms"])


@pytest.mark.slow
def test_every_cell_is_measured_against_its_pytorch_module_in_one_run(capsys):
    pytest.importorskip("torch")
    argv = ["--quick", "--compare", "torch", "--only", "training", "--case", "tiny-b4", "--json"]
    code, out = run_bench(capsys, *argv, "--cell", "gru", "--cell", "rnn", "--cell", "lstm")
    assert code == 0
    report = json.loads(out)
    assert report["cells"] == ["gru", "rnn", "lstm"]
    rows = {r["cell"]: r for r in report["training"]}
    assert list(rows) == ["gru", "rnn", "lstm"]
    for r in rows.values():
        assert r["name"] == "tiny-b4" and positive(r["ours_chars_per_s"]) and positive(r["torch_chars_per_s"])


def test_other_cells_run_every_section(capsys):
    code, out = run_bench(capsys, "--quick", "--json", "--cell", "gru", "--cell", "rnn", "--no-notebook")
    assert code == 0
    report = json.loads(out)
    assert [r["cell"] for r in report["training"]] == ["gru", "rnn"] * len(bench.QUICK.cases)
    for section in ("generation", "learn", "memory"):
        assert [d["cell"] for d in report[section]] == ["gru", "rnn"], section
    assert all(positive(g["ours_chars_per_s"]) for g in report["generation"])
    assert all(d["ours"]["steps"] >= 1 and d["notebook"] is None for d in report["learn"])
    assert all("error" not in m for m in report["memory"])


def test_markdown_table_renders_every_row(capsys):
    code, out = run_bench(capsys, "--quick", "--only", "training", "--no-notebook")
    assert code == 0
    assert "| training (chars/s, median) | ours | PyTorch | ours / PyTorch | ours, 1 thread |" in out
    training, scaling = out.split("| scaling (chars/s; speed-up over 1 thread) |")
    assert training.count("| lstm H=") == len(bench.QUICK.cases)
    assert scaling.count("| lstm H=") == 1  # tiny-b4: the notebook's one stream cannot be split
    assert "kernel" in out or "threadpoolctl" in out


def test_threads_fix_both_sides_to_one_count(capsys):
    code, out = run_bench(capsys, "--quick", "--only", "training", "--case", "tiny-b4", "--threads", "2", "--json")
    assert code == 0
    (row,) = json.loads(out)["training"]
    assert row["ours_threads"] == 2 and row["ours_threads_why"] == "--threads 2"
    assert row["one_thread"] is None and list(row["scaling"]["ours"]) == ["2"]


@pytest.mark.parametrize(
    "argv",
    [["--case", "nonesuch"], ["--repeats", "0"], ["--threads", "0"]],
)
def test_bad_arguments_exit_2(capsys, argv):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.run(parser.parse_args(["--quick", *argv])) == 2
    assert "error:" in capsys.readouterr().err


def test_importing_the_benchmark_does_not_import_torch_or_the_ui():
    code = "import sys, tui.bench; print(sorted(m for m in ('torch', 'textual', 'rich') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_notebook_update_is_clipped_gradient_descent_on_the_summed_cross_entropy():
    """The re-implemented notebook's fixed backward pass against finite differences: one epoch with
    learning rate 1 must move every weight by clip(-d loss / d w, -1, 1)."""
    rng = np.random.default_rng(0)
    V, T = 4, 6
    nb = NotebookLSTM(V, hidden_size=3, learning_rate=1.0, seed=1)
    names = ("wf", "bf", "wi", "bi", "wc", "bc", "wo", "bo", "wy", "by")
    for n in names:  # move off the zero biases so every path matters
        getattr(nb, n)[...] += rng.normal(0, 0.3, getattr(nb, n).shape)
    ids = rng.integers(0, V, T + 1)
    inputs, labels = nb.one_hot(ids[:-1]), ids[1:]

    def total_loss() -> float:
        logits = nb.forward(inputs)
        out = 0.0
        for q, z in enumerate(logits):
            z = z[:, 0] - z.max()
            out -= z[labels[q]] - math.log(np.exp(z).sum())
        return out

    expected = {}
    for n in names:
        w = getattr(nb, n)
        g = numeric_grad(total_loss, w, eps=1e-6)
        expected[n] = w + np.clip(-g, -1, 1)
    nb.epoch(inputs, labels)
    for n in names:
        np.testing.assert_allclose(getattr(nb, n), expected[n], atol=1e-6, err_msg=n)


def test_quick_gpt_is_measured_against_nanogpts_step_and_generation(capsys):
    """--cell gpt: its own configurations, nanoGPT's training step and generate beside ours."""
    pytest.importorskip("torch")
    code, out = run_bench(capsys, "--quick", "--cell", "gpt", "--compare", "torch", "--json", "--only", "training")
    assert code == 0
    (row,) = json.loads(out)["training"]
    assert (row["cell"], row["name"], row["heads"]) == ("gpt", "tiny-gpt", 2)
    assert positive(row["ours_chars_per_s"]) and positive(row["torch_chars_per_s"])
    assert row["ours_over_torch"] == pytest.approx(row["ours_chars_per_s"] / row["torch_chars_per_s"])
    code, out = run_bench(capsys, "--quick", "--cell", "gpt", "--compare", "torch", "--only", "generation")
    assert code == 0
    assert "| ours: key/value cache |" in out and "| PyTorch, nanoGPT's generate |" in out
    assert "(the cropped context recomputed per character)" in out
    trainer = bench.case_trainer(bench.GPT_CASES[0], bench.tiled_corpus(2000), "gpt")
    cfg = trainer.config  # both sides step with nanoGPT's optimizer
    assert (cfg.lr, cfg.weight_decay, cfg.beta2, cfg.clip, cfg.block, cfg.heads) == (1e-3, 0.1, 0.99, 1.0, 64, 4)
