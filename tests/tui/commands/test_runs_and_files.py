"""What the command line keeps and says, run as a user runs it (subprocesses, real files): a new
run never loses the best model of the last one, every note names the files it will write or
replace, scores name their step, resumes say what they carried over, and --help tells which
defaults are fitted to the text."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import LSTM_TUI, TIMEOUT, assert_usage_error
from helpers import run_cli as run

from core import checkpoint as ckpt_io
from core import corpus

SMALL = ["--hidden", "16", "--layers", "1"]
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs", "far", "away"]


def words(tmp_path: Path, name: str = "words.txt", n: int = 30_000, seed: int = 0) -> str:
    """A text of `n` characters of random words (a tenth of it held out), written to tmp_path/name."""
    rng = np.random.default_rng(seed)
    text = " ".join(rng.choice(WORDS, size=n // 4))[: n - 1] + "\n"
    (tmp_path / name).write_text(text)
    return name


def notes(res: subprocess.CompletedProcess) -> list[str]:
    return [line for line in res.stderr.splitlines() if line.startswith("lstm-tui: ")]


# ------------------------------------------------------------------ best-model files
def test_a_new_run_keeps_the_better_best_model_of_the_run_before(tmp_path):
    text = words(tmp_path)
    first = run("train", text, *SMALL, "--steps", "60", "--checkpoint", "run.npz", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    best = tmp_path / "run.best.npz"
    kept, held = best.read_bytes(), ckpt_io.load_meta(best)
    assert held["step"] > 0
    second = run("train", text, *SMALL, "--steps", "5", "--seed", "1", "--checkpoint", "run.npz", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    said = notes(second)
    assert (
        "lstm-tui: note: run.npz exists and will be replaced when this run saves "
        "(to continue training it instead: --resume run.npz)"
    ) in said
    assert (
        f"lstm-tui: note: run.best.npz holds another run's model of this text (val {held['best_val']:.3f} "
        f"@{held['step']:,}); this run replaces it only with a lower validation loss"
    ) in said
    assert "the model is saved to run.npz, its best weights on the validation text to run.best.npz" in second.stderr
    assert best.read_bytes() == kept
    assert "Best validation weights: run.best.npz keeps another run's model" in second.stdout


def test_a_best_model_of_another_text_is_kept_and_the_runs_own_name_announced(tmp_path):
    a, b = words(tmp_path, "a.txt", seed=0), words(tmp_path, "b.txt", seed=1)
    assert run("train", a, *SMALL, "--steps", "20", "--checkpoint", "run.npz", cwd=tmp_path).returncode == 0
    kept = (tmp_path / "run.best.npz").read_bytes()
    res = run("train", b, *SMALL, "--steps", "20", "--checkpoint", "run.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    line = next(n for n in notes(res) if n.startswith("lstm-tui: note: run.best.npz holds"))
    assert re.fullmatch(
        r"lstm-tui: note: run\.best\.npz holds a model of a\.txt \(val \d\.\d{3} @20\), not of this text, "
        r"and is kept; this run keeps its best weights in run\.best\.2\.npz",
        line,
    ), line
    assert (tmp_path / "run.best.npz").read_bytes() == kept
    assert ckpt_io.load_meta(tmp_path / "run.best.2.npz")["best"]["text"] == "b.txt"
    assert "Best validation weights: run.best.2.npz (val " in res.stdout


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*LSTM_TUI, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )


def test_two_ctrl_c_never_leave_the_untrained_weights_as_the_best_model(tmp_path):
    """The second Ctrl+C leaves at once, during the final evaluation: no best model is kept then,
    rather than the random weights of step 0 (whose score was in before the first Ctrl+C)."""
    text = words(tmp_path, n=400_000)  # 40,000 characters to score at the end: time for the second
    proc = _start(tmp_path, "train", text, "--hidden", "64", "--json", "--checkpoint", "run.npz")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = json.loads(proc.stdout.readline())  # the score of step 0 is in: the run is training
        assert first["step"] == 0 and not first["best"]
        proc.send_signal(signal.SIGINT)
        for line in proc.stderr:
            if "Ctrl+C: stopping" in line:  # the first was handled: now the second
                proc.send_signal(signal.SIGINT)
                break
        proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    best = tmp_path / "run.best.npz"
    assert not best.exists() or ckpt_io.load_meta(best)["step"] > 0


def test_ctrl_c_scores_the_final_weights_and_keeps_them_as_the_best_model(tmp_path):
    text = words(tmp_path, n=100_000)
    proc = _start(tmp_path, "train", text, *SMALL, "--json", "--checkpoint", "run.npz")
    try:
        assert proc.stdout is not None
        json.loads(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Ctrl+C: stopping, scoring the final weights and saving (Ctrl+C again to quit without saving)" in err
    final = json.loads(out.splitlines()[-1])
    saved = ckpt_io.load_meta(tmp_path / "run.npz")
    assert final["final"] and final["step"] == saved["step"] > 0 and not final["val_sample"]
    assert ckpt_io.load_meta(tmp_path / "run.best.npz")["step"] == saved["step"]


# ------------------------------------------------------------------------ scores
def test_every_score_on_the_progress_line_names_its_step_and_the_last_is_the_final_weights(tmp_path):
    text = words(tmp_path, n=100_000)  # a validation text long enough for early scores to be samples
    res = run("train", text, *SMALL, "--steps", "30", "--checkpoint", "run.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    progress = [line for line in res.stderr.splitlines() if line.startswith("[")]
    scored = [line for line in progress if " val " in line]
    assert scored and all(
        re.search(r" val \d\.\d{3} cold \d\.\d{3} @\d+( \(\d+k sample\))?  acc \d+%", s) for s in scored
    )
    assert re.search(r" val \d\.\d{3} cold \d\.\d{3} @30  acc", progress[-1]), progress[-1]  # in full, not a sample
    assert any("sample)" in line for line in scored)  # the early ones, labelled


# ------------------------------------------------------------------------- resumes
@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A model of the soliloquy exported to safetensors and imported back: no optimizer state."""
    tmp = tmp_path_factory.mktemp("imported")
    res = run("train", "--hidden", "32", "--steps", "300", "--eval-every", "0", "--checkpoint", "m.npz", cwd=tmp)
    assert res.returncode == 0, res.stderr
    assert run("export", "m.npz", "m.safetensors", cwd=tmp).returncode == 0
    assert run("import", "m.safetensors", "back.npz", cwd=tmp).returncode == 0
    return tmp


def test_resuming_an_import_says_what_it_carries_over_and_warms_the_rate_up(imported):
    before = ckpt_io.load(imported / "back.npz")
    text = corpus.load(corpus.bundled_path())
    from core import evaluate

    start = evaluate(before.model, text.val_ids, text.vocab)
    res = run("train", "--resume", "back.npz", "--steps", "20", "--checkpoint", "out.npz", cwd=imported)
    assert res.returncode == 0, res.stderr
    said = notes(res)
    assert said[0] == (
        "lstm-tui: resumed back.npz (imported from m.safetensors) at step 0: carried over weights; "
        "starting afresh: optimizer state and stream positions"
    )
    assert said[1].startswith(
        "lstm-tui: note: back.npz holds no optimizer state, so the learning rate warms up from 0.0001 to 0.01 "
        "over the next 100 steps"
    )
    progress = [line for line in res.stderr.splitlines() if line.startswith("[")]
    assert " @0 " in progress[0] or " val " not in progress[0]
    assert " @20 " in progress[-1]  # the score shown last is of the weights trained here
    end = evaluate(ckpt_io.load(imported / "out.npz").model, text.val_ids, text.vocab)
    assert end.loss < start.loss * 1.5 + 0.01  # not undone by full-size steps from fresh moments
    assert "Trained 20 steps (to step 20," in res.stdout


def test_resuming_on_another_text_of_the_same_characters_is_fine_tuning_and_says_so(tmp_path):
    a = words(tmp_path, "a.txt")
    (tmp_path / "b.txt").write_text((tmp_path / a).read_text()[::-1])
    assert run("train", a, *SMALL, "--steps", "10", "--checkpoint", "a.npz", cwd=tmp_path).returncode == 0
    res = run("train", "b.txt", "--resume", "a.npz", "--steps", "5", "--checkpoint", "b.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (
        "lstm-tui: note: a.npz was trained on a.txt; it continues on b.txt (fine-tuning): "
        "its streams start afresh and its scores start over"
    ) in notes(res)
    assert "starting afresh: stream positions and validation scores" in notes(res)[0]


def test_a_text_using_some_of_the_models_characters_is_accepted_and_one_with_others_refused(tmp_path):
    a = words(tmp_path, "a.txt")
    assert run("train", a, *SMALL, "--steps", "5", "--checkpoint", "a.npz", cwd=tmp_path).returncode == 0
    (tmp_path / "few.txt").write_text("the lazy dog runs far away\n" * 100)
    res = run("train", "few.txt", "--resume", "a.npz", "--steps", "3", "--checkpoint", "few.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    n_model = len(set((tmp_path / a).read_text()))
    n_text = len(set("the lazy dog runs far away\n"))
    assert (
        f"lstm-tui: note: few.txt uses {n_text} of the model's {n_model} characters; it is read with the "
        "model's vocabulary"
    ) in notes(res)
    (tmp_path / "new.txt").write_text("THE LAZY DOG\n" * 100)
    refused = run("train", "new.txt", "--resume", "a.npz", "--steps", "3", cwd=tmp_path)
    assert_usage_error(refused, "a.npz cannot continue on new.txt", "characters the model never saw ('ADEGH…')")


def test_a_resumed_run_counts_its_own_steps_and_speed(tmp_path):
    text = words(tmp_path)
    assert run("train", text, *SMALL, "--steps", "20", "--checkpoint", "run.npz", cwd=tmp_path).returncode == 0
    res = run("train", text, "--resume", "run.npz", "--steps", "5", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert notes(res)[0] == (
        "lstm-tui: resumed run.npz at step 20: carried over weights, optimizer state, stream positions and history"
    )
    done = re.search(r"Trained (\d+) steps \(to step (\d+), [\d.]+ epochs in all\) in [\d.]+ s; [\d,]+ chars/s",
                     res.stdout)  # fmt: skip
    assert done and done.group(1, 2) == ("5", "25"), res.stdout


# ------------------------------------------------------------------ files and folders
def test_a_checkpoint_in_a_folder_that_does_not_exist_says_it_is_created(tmp_path):
    res = run("train", *SMALL, "--steps", "3", "--checkpoint", "new/dir/m.npz", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert (
        "lstm-tui: note: the folder new/dir does not exist; it is created when the model is first saved "
        "to new/dir/m.npz"
    ) in notes(res)
    assert (tmp_path / "new" / "dir" / "m.npz").is_file()


def test_import_refuses_to_replace_a_file_unless_forced(imported):
    target = imported / "taken.npz"
    target.write_bytes(b"someone's notes")
    refused = run("import", "m.safetensors", "taken.npz", cwd=imported)
    assert_usage_error(refused, "taken.npz exists; give --force to replace it")
    assert target.read_bytes() == b"someone's notes"
    forced = run("import", "m.safetensors", "taken.npz", "--force", cwd=imported)
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.strip() == "imported m.safetensors to taken.npz (the file that was there is replaced)"
    assert ckpt_io.load(target).model.config.hidden == 32


# --------------------------------------------------------------------------- help
def test_help_says_which_defaults_are_fitted_to_the_text(tmp_path):
    res = run("train", "--help", cwd=tmp_path)
    assert res.returncode == 0
    flat = " ".join(res.stdout.split())
    for option, short, long in (("--hidden H", 128, None), ("--layers L", 1, None), ("--seq-len T", 32, 64),
                                ("--batch B", 8, 32)):  # fmt: skip
        part = flat[flat.index(option) :][:400]
        assert f"(default: {short} for a text under 20,000 characters; longer texts get" in part, part
        if long:
            assert f"longer texts get {long})" in part
    assert "learning rate (default: 0.01 up to 128 units, 0.005 above)" in flat


def test_the_races_help_offers_only_what_a_race_takes(tmp_path):
    res = run("race", "--help", cwd=tmp_path)
    assert res.returncode == 0
    for absent in ("--cell ", "--resume", "--engine", "--device"):
        assert absent not in res.stdout, absent
    flat = " ".join(res.stdout.split())
    assert "(default: 1: the race keeps the rate constant)" in flat
    assert_usage_error(run("race", "--cell", "gru", cwd=tmp_path), "race takes --cells LIST")


def test_the_chose_line_is_true_for_a_size_the_user_gave(tmp_path):
    text = words(tmp_path)
    res = run("train", text, "--hidden", "16", "--layers", "1", "--seq-len", "8", "--steps", "1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    chose = next(n for n in notes(res) if n.startswith("lstm-tui: chose "))
    assert chose.startswith("lstm-tui: chose 1 x 16 units (given), batch 32 x seq-len 8 (given), lr 0.01 (for 16")
    assert "the size given" in chose and "chars/s" not in chose
    assert "largest" not in chose and "smallest" not in chose
