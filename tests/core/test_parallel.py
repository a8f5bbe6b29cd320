"""The engine on several threads: the same steps as on one, repeatable per thread count, gradients
that match finite differences, exact resumes, and evaluation split over the threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from helpers import CELLS, numeric_grad, run_steps, tiny_config

from core import StepReport, TrainConfig, Trainer, corpus
from core.engine import NumpyEngine, numpy_engine_threads
from core.evaluate import Evaluator
from core.parallel import SplitScorer, Workers, join_states, slice_resets, slice_state, split


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """max |a-n| / max(1e-8, |a|+|n|) over all entries."""
    return float(np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))))


def soliloquy() -> corpus.Corpus:
    return corpus.load(corpus.bundled_path())


def float64_trainer(threads: int, cell: str, wavefront: bool = False, **kw) -> Trainer:
    """A tiny float64 run whose windows wrap around the text (so streams reset mid-window)."""
    settings = dict(cell=cell, hidden=5, layers=2, batch=7, seq_len=9, dtype="float64", clip=0.0, seed=3)
    settings.update(kw)
    text = corpus.from_text("to be, or not to be, that is the question. " * 2, val_fraction=0.0)
    return Trainer(text, tiny_config(**settings), engine=numpy_engine_threads(threads, wavefront))


# (threads, wavefront, layers): streams split 2 and 3 ways; a wavefront over 2 layers on 2 threads,
# over 2 layers x 2 slices on 4, over 3 layers on 3 (spans of 1 step with T=9 / 10 spans)
ARRANGEMENTS = [(2, False, 2), (3, False, 2), (2, True, 2), (4, True, 2), (3, True, 3)]


# ----------------------------------------------------------------------- the pieces
def test_split_covers_every_stream_once_in_order():
    for batch in (1, 2, 7, 32, 33):
        for n in (1, 2, 3, 4, 40):
            slices = split(batch, n)
            assert len(slices) == min(n, batch)
            covered = np.concatenate([np.arange(batch)[s] for s in slices])
            assert np.array_equal(covered, np.arange(batch))
            sizes = [s.stop - s.start for s in slices]
            assert max(sizes) - min(sizes) <= 1


def test_slicing_and_joining_state_and_resets():
    rng = np.random.default_rng(0)
    state = ((rng.normal(size=(7, 3)), rng.normal(size=(7, 3))), (rng.normal(size=(7, 3)), rng.normal(size=(7, 3))))
    slices = split(7, 3)
    joined = join_states([slice_state(state, s) for s in slices])
    for layer, layer_joined in zip(state, joined, strict=True):
        for a, b in zip(layer, layer_joined, strict=True):
            assert np.array_equal(a, b)
    resets = {2: np.array([0, 4, 6]), 5: np.array([1])}
    assert {t: v.tolist() for t, v in slice_resets(resets, slice(4, 7)).items()} == {2: [0, 2]}
    assert {t: v.tolist() for t, v in slice_resets(resets, slice(0, 2)).items()} == {2: [0], 5: [1]}
    assert slice_resets(resets, slice(2, 4)) == {}


def test_workers_return_results_in_order_and_raise_a_workers_error():
    workers = Workers(3)
    seen: set[str] = set()

    def job(i: int) -> int:
        seen.add(threading.current_thread().name)
        return i * i

    assert workers.run(job, 3) == [0, 1, 4]
    assert len(seen) == 3  # three threads did the work, the caller among them
    assert workers.run(job, 2) == [0, 1]

    def failing(i: int) -> int:
        if i == 2:
            raise ValueError("slice 2 failed")
        return i

    with pytest.raises(ValueError, match="slice 2 failed"):
        workers.run(failing, 3)
    assert workers.run(job, 3) == [0, 1, 4]  # still usable
    workers.close()


# ------------------------------------------------------- steps agree with one thread
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize(("threads", "wavefront", "layers"), ARRANGEMENTS)
def test_a_split_step_equals_the_serial_step(cell, dropout, threads, wavefront, layers):
    """Loss, every gradient and the carried state of one step, with the streams split over the
    threads (or the layers run as a wavefront), equal the serial step's to float64 rounding
    (windows with resets, dropout masks)."""
    serial = float64_trainer(1, cell, dropout=dropout, layers=layers)
    split_run = float64_trainer(threads, cell, wavefront, dropout=dropout, layers=layers)
    waves = wavefront and split_run.model.wavefront_layers() > 1  # (a GPT has no wavefront: it splits streams)
    assert split_run.engine.arrangement() == ((threads // layers, layers) if waves else (threads, 1))
    for _ in range(3):  # a few steps so that the carried state and the resets are not trivial
        w, w2 = serial.batches.next(), split_run.batches.next()
        assert np.array_equal(w.x, w2.x)
        masks = serial.model.dropout_masks(serial.seq_len, serial.batch, serial.rng)
        masks2 = split_run.model.dropout_masks(split_run.seq_len, split_run.batch, split_run.rng)
        loss, norm = serial.engine.learn(w, masks)
        loss2, norm2 = split_run.engine.learn(w2, masks2)
        assert loss2 == pytest.approx(loss, rel=1e-12) and norm2 == pytest.approx(norm, rel=1e-12)
        grads, state = serial.engine._learned
        grads2, state2 = split_run.engine._learned
        assert list(grads2) == list(grads)  # the same order: the norm adds them in it
        for k in grads:
            assert rel_error(grads2[k], grads[k]) < 1e-9, k
        for a, b in zip(sum(state, ()), sum(state2, ()), strict=True):
            assert np.allclose(a, b, rtol=1e-12, atol=1e-14)
        serial.engine.apply()
        split_run.engine.apply()
    assert any(serial.batches.next().resets for _ in range(4))  # the windows do wrap


@pytest.mark.parametrize("cell", CELLS)
def test_training_on_threads_follows_the_serial_run(cell):
    """Thirty float32 steps on two threads stay with the one-thread run (rounding only)."""
    c = soliloquy()
    runs = {}
    for n in (1, 2):
        t = Trainer(c, tiny_config(cell=cell, layers=2, batch=6, dropout=0.2), engine=numpy_engine_threads(n))
        run_steps(t, 30)
        runs[n] = t
    for k, v in runs[1].model.params.items():
        assert np.allclose(runs[2].model.params[k], v, rtol=1e-3, atol=1e-4), k
    assert runs[2].loss_history == pytest.approx(runs[1].loss_history, rel=1e-4)


@pytest.mark.parametrize(("threads", "wavefront", "layers"), ARRANGEMENTS)
def test_a_run_on_threads_is_repeatable(threads, wavefront, layers):
    """The same thread count gives the same run, bit for bit."""
    c = soliloquy()
    runs = []
    for _ in range(2):
        cfg = tiny_config(layers=layers, batch=7, dropout=0.2, seed=11, cell="gru")
        t = Trainer(c, cfg, engine=numpy_engine_threads(threads, wavefront))
        run_steps(t, 15)
        runs.append(t)
    assert runs[0].loss_history == runs[1].loss_history
    for k, v in runs[0].model.params.items():
        assert np.array_equal(runs[1].model.params[k], v), k


# ------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    ("threads", "wavefront", "layers", "dropout"),
    [(2, False, 2, 0.0), (3, False, 2, 0.4), (4, True, 2, 0.4), (3, True, 3, 0.0)],
)
def test_split_gradients_match_finite_differences(cell, threads, wavefront, layers, dropout):
    """Every parameter's gradient from the split step (streams split, or layers as a wavefront)
    against central differences of that step's own loss (float64, streams resetting inside the
    window, dropout masks held fixed)."""
    trainer = float64_trainer(threads, cell, wavefront, dropout=dropout, layers=layers)
    rng = np.random.default_rng(1)
    for p in trainer.model.params.values():  # away from the symmetric start, so every path matters
        p += rng.normal(0.0, 0.5, p.shape)
    trainer.state = tuple(tuple(rng.normal(size=a.shape) for a in layer) for layer in trainer.state)
    window = trainer.batches.next()
    while not window.resets:
        window = trainer.batches.next()
    masks = trainer.model.dropout_masks(trainer.seq_len, trainer.batch, trainer.rng)
    engine = trainer.engine
    assert isinstance(engine, NumpyEngine) and engine.threads == threads and engine.wavefront == wavefront
    engine.learn(window, masks)
    grads = engine._learned[0]
    assert set(grads) == set(trainer.model.params)

    def loss() -> float:
        return engine.learn(window, masks)[0]

    for name, p in trainer.model.params.items():
        err = rel_error(grads[name], numeric_grad(loss, p))
        assert err < 1e-4, f"{cell} {name}: relative error {err:.2e}"


def test_a_wrong_slice_weight_fails_the_gradient_check(monkeypatch):
    """The check can fail: weighing every slice as the whole batch is caught."""
    trainer = float64_trainer(2, "lstm")
    window = trainer.batches.next()
    engine = trainer.engine
    real = type(trainer.model).loss_and_grads

    def unweighted(self, *args, weight=1.0, **kwargs):
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(trainer.model), "loss_and_grads", unweighted)
    engine.learn(window, None)
    grads = engine._learned[0]
    numeric = numeric_grad(lambda: engine.learn(window, None)[0], trainer.model.params["Wh0"])
    assert rel_error(grads["Wh0"], numeric) > 1e-2


# -------------------------------------------------------------------------- resumes
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("wavefront", [False, True])
def test_resume_on_threads_is_exact(tmp_path, cell, wavefront):
    c = soliloquy()
    cfg = tiny_config(dropout=0.3, eval_every=4, seed=5, cell=cell, layers=2, batch=5)
    engine = numpy_engine_threads(2, wavefront)
    straight = Trainer(c, cfg, engine=engine)
    losses_straight = [r.loss for r in run_steps(straight, 12) if isinstance(r, StepReport)]

    first = Trainer(c, cfg, checkpoint=tmp_path / "r.npz", engine=engine)
    losses = [r.loss for r in run_steps(first, 7) if isinstance(r, StepReport)]
    first.save()
    resumed = Trainer.resume(tmp_path / "r.npz", c, engine=engine)
    losses += [r.loss for r in run_steps(resumed, 5) if isinstance(r, StepReport)]
    assert losses == losses_straight
    for k, v in straight.model.params.items():
        assert np.array_equal(resumed.model.params[k], v), k
    # the same scores (and the first run's final evaluation of the weights it stopped with, which
    # changes nothing else in the run and which the resumed run does not repeat)
    assert [v for v in resumed.val_history if v[0] != 7] == straight.val_history


# ------------------------------------------------------------------------ evaluation
@pytest.mark.parametrize("cell", CELLS)
def test_split_evaluation_equals_one_thread(cell):
    """Evaluation's streams split over threads score the text as one thread does."""
    text = corpus.from_text("to be, or not to be, that is the question. " * 300, val_fraction=0.0)
    trainer = Trainer(text, tiny_config(cell=cell, layers=2, batch=4))
    run_steps(trainer, 3)
    model = trainer.model.copy()
    one = Evaluator(model, text.ids, text.vocab, streams=5).result()
    scorer = SplitScorer(model, Workers(2))
    two = Evaluator(scorer, text.ids, text.vocab, streams=5).result()  # type: ignore[arg-type]
    assert two.loss == pytest.approx(one.loss, rel=1e-5)
    assert two.predicted == one.predicted
    assert two.n == one.n


def test_the_engine_scores_on_its_threads():
    trainer = Trainer(soliloquy(), tiny_config(), engine=numpy_engine_threads(2))
    assert isinstance(trainer.engine.scorer(trainer.model.copy()), SplitScorer)
    one = Trainer(soliloquy(), tiny_config())
    assert not isinstance(one.engine.scorer(one.model.copy()), SplitScorer)


def test_more_threads_than_streams_use_one_per_stream():
    """Three threads on two streams: two slices, the same step as two threads."""
    c = soliloquy()
    runs = {}
    for n in (2, 3):
        t = Trainer(c, TrainConfig(hidden=8, batch=2, seq_len=8, eval_every=0), engine=numpy_engine_threads(n))
        run_steps(t, 4)
        runs[n] = t
    for k, v in runs[2].model.params.items():
        assert np.array_equal(runs[3].model.params[k], v), k


def test_limit_threads_caps_the_count():
    trainer = Trainer(soliloquy(), tiny_config(), engine=numpy_engine_threads(4))
    trainer.engine.limit_threads(2)
    assert trainer.engine.threads == 2
    trainer.engine.limit_threads(8)
    assert trainer.engine.threads == 2
    trainer.engine.limit_threads(1)
    assert trainer.engine.threads == 1


def test_a_failing_layer_thread_stops_the_wavefront(monkeypatch):
    """An error in one layer's thread reaches the caller, and the other layers' threads, waiting on
    it, stop instead of waiting forever."""
    trainer = float64_trainer(4, "lstm", True, layers=2)
    model_cls = type(trainer.model)
    real = model_cls._back_steps

    def failing(self, lc, *args):
        if lc.layer == 1:
            raise ValueError("layer 1 failed")
        return real(self, lc, *args)

    monkeypatch.setattr(model_cls, "_back_steps", failing)
    with pytest.raises(ValueError, match="layer 1 failed"):
        trainer.engine.learn(trainer.batches.next(), None)
    monkeypatch.setattr(model_cls, "_back_steps", real)
    loss, norm = trainer.engine.learn(trainer.batches.next(), None)  # the threads are still there
    assert np.isfinite(loss) and np.isfinite(norm)
