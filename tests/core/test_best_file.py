"""The best-model file (core.best): a new run never loses what another run kept, a file holding
another text's model is left alone, and untrained weights are never kept as the best model."""

from __future__ import annotations

from pathlib import Path

from core import EvalReport, SaveReport, TrainConfig, Trainer, corpus
from core import checkpoint as ckpt_io
from core.best import best_path

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}.\n" for i in range(400))
REVERSED = TEXT[::-1]  # the same characters, another text


def fox(text: str = TEXT) -> corpus.Corpus:
    return corpus.from_text(text, name="fox.txt" if text == TEXT else "xof.txt")


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"hidden": 16, "batch": 4, "seq_len": 16, "eval_every": 10, **kw})


def train(checkpoint: Path, steps: int, text: str = TEXT, **kw) -> tuple[Trainer, list]:
    t = Trainer(fox(text), config(steps=steps, **kw), checkpoint=checkpoint)
    return t, list(t.run())


def best_saves(reports: list) -> list[SaveReport]:
    return [r for r in reports if isinstance(r, SaveReport) and r.kind == "best"]


def test_a_new_run_never_replaces_a_better_model_of_the_same_text(tmp_path):
    good, _ = train(tmp_path / "run.npz", 150)
    best = best_path(tmp_path / "run.npz")
    kept = best.read_bytes()
    held = ckpt_io.load_meta(best)
    assert held["step"] > 0 and held["best"]["run"] == good.run_id
    fresh = Trainer(fox(), config(steps=5, seed=1), checkpoint=tmp_path / "run.npz")
    plan = fresh.best_plan
    assert plan is not None and plan.path == best and not plan.passed
    assert plan.held is not None and not plan.held.own and plan.held.val_loss == held["best_val"]
    reports = list(fresh.run())
    assert [r for r in reports if isinstance(r, EvalReport) and r.final]  # it did score its own weights
    assert not best_saves(reports) and best.read_bytes() == kept


def test_a_new_run_replaces_the_best_file_with_a_better_model_of_the_same_text(tmp_path):
    weak, _ = train(tmp_path / "run.npz", 3)
    before = ckpt_io.load_meta(best_path(tmp_path / "run.npz"))
    assert before["step"] == 3  # the final evaluation of a run too short for a scheduled one
    strong, reports = train(tmp_path / "run.npz", 150, seed=1)
    after = ckpt_io.load_meta(best_path(tmp_path / "run.npz"))
    assert best_saves(reports) and after["best"]["run"] == strong.run_id != weak.run_id
    assert after["best_val"] < before["best_val"] and after["step"] > 3


def test_a_best_file_of_another_text_is_kept_and_the_run_uses_the_next_free_name(tmp_path):
    train(tmp_path / "run.npz", 30)
    first = best_path(tmp_path / "run.npz")
    kept = first.read_bytes()
    other, reports = train(tmp_path / "run.npz", 30, text=REVERSED)
    second = tmp_path / "run.best.2.npz"
    assert other.best_plan is not None and other.best_plan.path == second
    assert [p for p, _ in other.best_plan.passed] == [first] and "fox.txt" in other.best_plan.passed[0][1]
    assert first.read_bytes() == kept and {r.path for r in best_saves(reports)} == {str(second)}
    assert ckpt_io.load_meta(second)["best"]["text"] == "xof.txt"
    again = Trainer(fox(REVERSED), config(steps=5), checkpoint=tmp_path / "run.npz")  # finds its text's file
    assert again.best_plan is not None and again.best_plan.path == second and again.best_plan.held is not None


def test_an_unreadable_file_in_the_best_files_place_is_left_alone(tmp_path):
    best_path(tmp_path / "run.npz").write_text("notes, not a model")
    t, reports = train(tmp_path / "run.npz", 12)
    assert best_path(tmp_path / "run.npz").read_text() == "notes, not a model"
    assert t.best_plan is not None and t.best_plan.path == tmp_path / "run.best.2.npz" and best_saves(reports)


def test_a_resumed_run_goes_on_with_its_own_best_file(tmp_path):
    first, _ = train(tmp_path / "run.npz", 20)
    first.save()
    resumed = Trainer.resume(tmp_path / "run.npz", fox(), steps=100)
    plan = resumed.best_plan
    assert resumed.run_id == first.run_id and plan is not None
    assert plan.path == best_path(tmp_path / "run.npz") and plan.held is not None and plan.held.own
    reports = list(resumed.run())
    assert best_saves(reports) and ckpt_io.load_meta(plan.path)["step"] > 20


def test_a_file_written_meanwhile_by_another_run_is_looked_at_again(tmp_path):
    weak = Trainer(fox(), config(steps=5, seed=1), checkpoint=tmp_path / "run.npz")
    assert weak.best_plan is not None and weak.best_plan.held is None  # no file yet
    train(tmp_path / "run.npz", 150)  # another run writes a good one in the meantime
    kept = best_path(tmp_path / "run.npz").read_bytes()
    reports = list(weak.run())
    assert not best_saves(reports) and best_path(tmp_path / "run.npz").read_bytes() == kept


def test_the_untrained_weights_are_never_the_best_model_and_a_stop_scores_the_final_ones(tmp_path):
    """Stopped long before the schedule's second evaluation: the best file holds the weights it
    stopped with (scored in full when it stopped), never the random ones of step 0."""
    t = Trainer(fox(), config(eval_every=None), checkpoint=tmp_path / "run.npz")
    reports = []
    for r in t.run():
        reports.append(r)
        if isinstance(r, SaveReport) or r.step >= 20:
            t.controls.stop()
    evals = [r for r in reports if isinstance(r, EvalReport)]
    assert [(r.step, r.best, r.final) for r in evals] == [(0, False, False), (20, True, True)]
    saved = ckpt_io.load_meta(best_path(tmp_path / "run.npz"))
    assert saved["step"] == 20 and saved["best_val"] == evals[-1].val_loss


def test_a_stop_at_once_leaves_without_the_final_evaluation(tmp_path):
    t = Trainer(fox(), config(eval_every=None), checkpoint=tmp_path / "run.npz")
    reports = []
    for r in t.run():
        reports.append(r)
        if r.step >= 20:
            t.controls.stop(evaluate=False)
    assert [r.step for r in reports if isinstance(r, EvalReport)] == [0]
    assert not best_path(tmp_path / "run.npz").exists()  # step 0 was scored, and is never kept
