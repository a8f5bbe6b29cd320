"""A learned initial state (--init-state learned): parameters h0{l} (and c0{l}) that every blank
start reads from, their gradients against finite differences (one thread and several), and the
places a blank start happens: the first window, a reset, resumes, generation and the inside view."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import numeric_grad, run_steps, tiny_config

import core.models.gru as gru_mod
from core import ConfigError, StepReport, TrainConfig, Trainer, corpus
from core import checkpoint as ckpt_io
from core.batches import Batches, Window
from core.engine import NumpyEngine, numpy_engine_threads
from core.evaluate import evaluate
from core.models import MODELS, ModelConfig, create_model, softmax_cross_entropy
from core.models.recurrent import initial_param

RECURRENT = tuple(name for name, cls in MODELS.items() if cls.state_names)
TOL = 1e-4


def rel_error(a: np.ndarray, n: np.ndarray) -> float:
    """max |a-n| / max(1e-8, |a|+|n|) over all entries."""
    return float(np.max(np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))))


def learned(cell: str, V: int = 6, H: int = 4, L: int = 2, seed: int = 0, dtype: str = "float64"):
    return create_model(ModelConfig(V, H, L, dtype=dtype, cell=cell, init_state="learned"), np.random.default_rng(seed))


def initial_names(cell: str, layers: int) -> list[str]:
    return [initial_param(name, layer) for layer in range(layers) for name in MODELS[cell].state_names]


# ------------------------------------------------------------------------- the parameters
@pytest.mark.parametrize("cell", RECURRENT)
def test_each_layer_has_its_initial_state_as_parameters_starting_at_zero(cell):
    model = learned(cell, L=2)
    names = initial_names(cell, 2)
    assert names == (["h00", "c00", "h01", "c01"] if cell == "lstm" else ["h00", "h01"])
    for name in names:
        assert model.params[name].shape == (4,) and not model.params[name].any()
        assert name not in model.decayed(model.config)  # weight decay leaves them alone
    zeros = create_model(ModelConfig(6, 4, 2, dtype="float64", cell=cell), np.random.default_rng(0))
    assert set(model.params) - set(zeros.params) == set(names)
    for k, v in zeros.params.items():  # the same draws: a learned start begins exactly as a zero one
        assert np.array_equal(model.params[k], v), k
    assert model.num_params(model.config) == zeros.num_params(zeros.config) + len(names) * 4
    assert model.shape_text(model.config) == zeros.shape_text(zeros.config) + ", learned initial state"


@pytest.mark.parametrize("cell", RECURRENT)
def test_the_blank_state_is_the_learned_one_broadcast_in_fresh_arrays(cell):
    model = learned(cell, L=2)
    rng = np.random.default_rng(1)
    for name in initial_names(cell, 2):
        model.params[name][...] = rng.normal(size=4)
    state = model.initial_state(3)
    for layer, arrays in enumerate(state):
        for name, a in zip(model.state_names, arrays, strict=True):
            assert a.shape == (3, 4)
            assert np.array_equal(a, np.tile(model.params[initial_param(name, layer)], (3, 1)))
            a[...] = 7.0  # a copy: the parameter stays
            assert not (model.params[initial_param(name, layer)] == 7.0).any()


def test_a_model_without_a_recurrent_state_refuses_to_learn_one():
    with pytest.raises(ConfigError, match="recurrent cells: the GPT carries no state"):
        TrainConfig(cell="gpt", hidden=32, heads=1, init_state="learned")
    with pytest.raises(ConfigError, match="unknown init-state 'ones'"):
        ModelConfig(5, init_state="ones")


# --------------------------------------------------------------- forward: where it is read
@pytest.mark.parametrize("cell", RECURRENT)
def test_a_reset_stream_starts_from_the_learned_state(cell):
    """A stream reset before step t reads on exactly as a fresh stream from the blank state does,
    and that blank state is not zero."""
    model = learned(cell, L=2)
    rng = np.random.default_rng(2)
    for name in initial_names(cell, 2):
        model.params[name][...] = rng.normal(size=4)
    x = rng.integers(0, 6, (8, 3))
    carried = tuple(tuple(rng.normal(size=(3, 4)) for _ in model.state_names) for _ in range(2))
    logits, _, _ = model.forward(x, carried, resets={0: np.array([2]), 5: np.array([1])})
    fresh, _, _ = model.forward(x[5:, 1:2], model.initial_state(1))
    np.testing.assert_allclose(logits[5:, 1], fresh[:, 0], rtol=1e-10, atol=1e-12)
    from_blank, _, _ = model.forward(x[:, 2:3], model.initial_state(1))
    np.testing.assert_allclose(logits[:, 2], from_blank[:, 0], rtol=1e-10, atol=1e-12)
    zero = tuple(tuple(np.zeros((1, 4)) for _ in model.state_names) for _ in range(2))
    from_zero, _, _ = model.forward(x[:, 2:3], zero)
    assert not np.allclose(from_zero[:, 0], logits[:, 2])  # the learned state makes a difference


@pytest.mark.parametrize("cell", RECURRENT)
def test_generation_and_the_inside_view_start_from_the_learned_state(cell):
    model = learned(cell, L=2)
    rng = np.random.default_rng(3)
    for name in initial_names(cell, 2):
        model.params[name][...] = rng.normal(size=4)
    ids = np.array([1, 4, 2, 0, 5])
    window, _, _ = model.forward(ids.reshape(-1, 1), model.initial_state(1))  # (n, 1, V)
    stepper = model.stepper()
    logits, _ = stepper.prime(ids)
    np.testing.assert_allclose(logits, window[-1, 0], rtol=1e-10)
    stream = stepper.stream()
    for t, i in enumerate(ids):
        np.testing.assert_allclose(stream.feed(int(i)), window[t, 0], rtol=1e-10, atol=1e-12)
    top = model.activations(ids)["hidden"][-1]  # (n, H) the top layer's h after each character
    np.testing.assert_allclose(top @ model.params["Wy"] + model.params["by"], window[:, 0], rtol=1e-10)


def test_evaluation_starts_from_the_learned_state():
    text = corpus.from_text("abcdef fedcba abcdef fedcba abcdef", val_fraction=0.0)
    model = learned("lstm", V=text.vocab.size, L=1)
    model.params["h00"][...] = 0.5
    model.params["c00"][...] = -1.0
    ids = text.ids
    scored = evaluate(model, ids, text.vocab, streams=1)
    logits, _, _ = model.forward(ids[:-1].reshape(-1, 1), model.initial_state(1))
    loss, _ = softmax_cross_entropy(logits[:, 0], ids[1:])
    zero = tuple(tuple(np.zeros((1, 4)) for _ in range(2)) for _ in range(1))
    zero_logits, _, _ = model.forward(ids[:-1].reshape(-1, 1), zero)
    assert scored.loss == pytest.approx(loss, rel=1e-12)
    assert softmax_cross_entropy(zero_logits[:, 0], ids[1:])[0] != pytest.approx(loss, rel=1e-6)


# ------------------------------------------------------------------------- gradients
def window_problem(cell: str, layers: int, seed: int, dropout: float = 0.0):
    """A float64 window with streams reset at step 0 and at a middle step, from a random carried state."""
    rng = np.random.default_rng(seed)
    V, H, T, B = 5, 3, 6, 4
    model = create_model(
        ModelConfig(V, H, layers, dropout=dropout, dtype="float64", cell=cell, init_state="learned"), rng
    )
    for p in model.params.values():  # away from the symmetric start (h0 = 0) so every path matters
        p += rng.normal(0.0, 0.5, p.shape)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    state = tuple(tuple(rng.normal(size=(B, H)) for _ in model.state_names) for _ in range(layers))
    resets = {0: np.array([1, 3]), 3: np.array([0, 1]), T - 1: np.array([2])}
    masks = model.dropout_masks(T, B, rng)
    return model, x, y, state, resets, masks


@pytest.mark.parametrize("cell", RECURRENT)
@pytest.mark.parametrize(("layers", "seed", "dropout"), [(1, 0, 0.0), (2, 1, 0.0), (2, 2, 0.4)])
def test_every_gradient_matches_finite_differences_with_a_learned_state(cell, layers, seed, dropout):
    model, x, y, state, resets, masks = window_problem(cell, layers, seed, dropout)
    T, B = x.shape

    def loss() -> float:
        logits, _, _ = model.forward(x, state, resets, masks)
        return softmax_cross_entropy(logits.reshape(T * B, -1), y.reshape(-1))[0]

    logits, _, cache = model.forward(x, state, resets, masks)
    _, dlogits = softmax_cross_entropy(logits.reshape(T * B, -1), y.reshape(-1))
    grads, dstate = model.backward(dlogits.reshape(T, B, -1), cache)
    assert set(grads) == set(model.params)
    for name, p in model.params.items():
        assert rel_error(grads[name], numeric_grad(loss, p)) < TOL, f"{cell} {name}"
    for name in initial_names(cell, layers):
        assert np.abs(grads[name]).max() > 1e-6  # the check is not of zeros
    for layer, (s, ds) in enumerate(zip(state, dstate, strict=True)):
        for a0, da0 in zip(s, ds, strict=True):
            assert rel_error(da0, numeric_grad(loss, a0)) < TOL, f"{cell} carried state of layer {layer}"
            assert not da0[resets[0]].any()  # streams reset at step 0 never read the carried state


def test_the_check_catches_a_dropped_initial_state_gradient(monkeypatch):
    """The check can fail: the gradient dropped at a reset (as for a zero start) is caught."""

    def dropped(dblank, dnext, streams):
        dnext[streams] = 0.0

    monkeypatch.setattr(gru_mod, "accumulate_blank", dropped)
    model, x, y, state, resets, _ = window_problem("gru", 1, 0)
    T, B = x.shape

    def loss() -> float:
        logits, _, _ = model.forward(x, state, resets)
        return softmax_cross_entropy(logits.reshape(T * B, -1), y.reshape(-1))[0]

    logits, _, cache = model.forward(x, state, resets)
    _, dlogits = softmax_cross_entropy(logits.reshape(T * B, -1), y.reshape(-1))
    grads, _ = model.backward(dlogits.reshape(T, B, -1), cache)
    assert rel_error(grads["h00"], numeric_grad(loss, model.params["h00"])) > 1e-2


def threaded_trainer(cell: str, threads: int, wavefront: bool, layers: int) -> Trainer:
    settings = dict(cell=cell, hidden=4, layers=layers, batch=7, seq_len=8, dtype="float64", clip=0.0, seed=3)
    text = corpus.from_text("to be, or not to be, that is the question. " * 2, val_fraction=0.0)
    cfg = tiny_config(init_state="learned", **settings)
    return Trainer(text, cfg, engine=numpy_engine_threads(threads, wavefront))


@pytest.mark.parametrize("cell", RECURRENT)
@pytest.mark.parametrize(("threads", "wavefront", "layers"), [(2, False, 2), (3, False, 1), (4, True, 2)])
def test_split_steps_give_the_learned_state_the_serial_gradients(cell, threads, wavefront, layers):
    """Streams split over threads (or layers as a wavefront): the initial state's gradients, summed
    over the threads as ordinary parameters' are, match finite differences and the serial step."""
    serial = threaded_trainer(cell, 1, False, layers)
    trainer = threaded_trainer(cell, threads, wavefront, layers)
    rng = np.random.default_rng(5)
    for p, q in zip(trainer.model.params.values(), serial.model.params.values(), strict=True):
        p += rng.normal(0.0, 0.5, p.shape)
        q[...] = p
    trainer.state = tuple(tuple(rng.normal(size=a.shape) for a in layer) for layer in trainer.state)
    serial.state = trainer.state
    w = trainer.batches.next()
    window = Window(w.x, w.y, {0: np.array([0, 4, 6]), 4: np.array([1, 2, 5])})  # in more than one slice
    engine = trainer.engine
    assert isinstance(engine, NumpyEngine) and engine.arrangement()[0] * engine.arrangement()[1] == threads
    engine.learn(window, None)
    serial.engine.learn(window, None)
    grads, serial_grads = engine._learned[0], serial.engine._learned[0]
    for name in initial_names(cell, layers):
        assert rel_error(grads[name], serial_grads[name]) < 1e-9, name

    def loss() -> float:
        return engine.learn(window, None)[0]

    for name, p in trainer.model.params.items():
        assert rel_error(grads[name], numeric_grad(loss, p)) < TOL, f"{cell} {name}"


# ------------------------------------------------------------------ blank starts in a run
def test_the_first_window_starts_every_stream_blank_and_the_next_do_not():
    b = Batches(np.arange(41, dtype=np.int64), batch=4, seq_len=5)
    assert b.next().resets[0].tolist() == [0, 1, 2, 3]
    assert b.next().resets == {}  # (no stream wraps in it)
    assert b.next().resets[0].tolist() == [3]  # the last stream wraps: blank again


@pytest.mark.parametrize("cell", RECURRENT)
def test_the_first_step_trains_the_initial_state_from_every_stream(cell):
    """Every stream reads its first window from the learned state, so the first step's gradient
    reaches it from all of them (a stream starting mid-text as much as the one at its start)."""
    t = threaded_trainer(cell, 1, False, 1)
    window = t.batches.next()
    assert window.resets[0].tolist() == list(range(t.batch))
    t.engine.learn(window, None)
    got = t.engine._learned[0]["h00"]
    carried = Window(window.x, window.y, {})  # what a carried (not blank) start would give: nothing
    t.engine.learn(carried, None)
    assert not t.engine._learned[0]["h00"].any() and np.abs(got).max() > 1e-6
    only_first = Window(window.x, window.y, {0: np.array([0])})
    t.engine.learn(only_first, None)
    assert not np.allclose(t.engine._learned[0]["h00"], got)  # the other streams count too


def test_a_zero_start_trains_as_before():
    """Marking the first window's streams blank changes nothing for a zero initial state."""
    c = corpus.load(corpus.bundled_path())
    t = Trainer(c, tiny_config(cell="lstm", seed=2))
    window = t.batches.next()
    t.engine.learn(window, None)
    marked = t.engine._learned[0]
    t.engine.learn(Window(window.x, window.y, {k: v for k, v in window.resets.items() if k != 0}), None)
    for k, v in t.engine._learned[0].items():
        assert np.array_equal(marked[k], v), k


@pytest.mark.parametrize("cell", RECURRENT)
def test_resume_is_exact_with_a_learned_state(tmp_path, cell):
    """A run saved and resumed takes the same steps as a straight one, bit for bit."""
    c = corpus.load(corpus.bundled_path())
    cfg = tiny_config(cell=cell, layers=2, seed=7, init_state="learned")
    straight = Trainer(c, cfg)
    losses_straight = [r.loss for r in run_steps(straight, 10) if isinstance(r, StepReport)]
    first = Trainer(c, cfg, checkpoint=tmp_path / "r.npz")
    losses = [r.loss for r in run_steps(first, 6) if isinstance(r, StepReport)]
    first.save()
    resumed = Trainer.resume(tmp_path / "r.npz", c)
    assert resumed.model.config.init_state == "learned"
    losses += [r.loss for r in run_steps(resumed, 4) if isinstance(r, StepReport)]
    assert losses == losses_straight
    for k, v in straight.model.params.items():
        assert np.array_equal(resumed.model.params[k], v), k
    assert np.abs(straight.model.params["h00"]).max() > 0  # it was trained


def test_a_run_saved_before_its_first_window_resumes_with_every_stream_blank(tmp_path):
    """Its first window is the straight run's first window: every stream blank, the same gradients."""
    c = corpus.load(corpus.bundled_path())
    cfg = tiny_config(cell="lstm", seed=7, init_state="learned")
    straight = Trainer(c, cfg)
    Trainer(c, cfg, checkpoint=tmp_path / "r.npz").save()
    resumed = Trainer.resume(tmp_path / "r.npz", c)
    assert "stream positions" in resumed.resumed.carried
    grads = []
    for t in (straight, resumed):
        window = t.batches.next()
        assert window.resets[0].tolist() == list(range(t.batch))
        t.engine.learn(window, None)
        grads.append(t.engine._learned[0])
    for k, v in grads[0].items():
        assert np.array_equal(grads[1][k], v), k


def test_a_resume_on_other_windows_starts_its_streams_from_the_learned_state(tmp_path):
    """Resumed with another batch shape, the streams start blank: from the trained h0, not zeros."""
    c = corpus.load(corpus.bundled_path())
    t = Trainer(c, tiny_config(cell="gru", init_state="learned", lr=0.05), checkpoint=tmp_path / "g.npz")
    run_steps(t, 20)
    t.save()
    resumed = Trainer.resume(tmp_path / "g.npz", c, batch=3)
    assert "stream positions" in resumed.resumed.fresh
    window = resumed.batches.next()
    assert window.resets[0].tolist() == [0, 1, 2]
    logits, _, _ = resumed.model.forward(window.x, resumed.state, window.resets)
    blank, _, _ = resumed.model.forward(window.x, resumed.model.initial_state(3))
    np.testing.assert_array_equal(logits, blank)
    assert np.abs(resumed.model.params["h00"]).max() > 0


# ------------------------------------------------------------------------- checkpoints
def test_a_checkpoint_keeps_the_setting_and_one_without_it_is_a_zero_start(tmp_path):
    c = corpus.from_text("abcabcabc abcab")
    t = Trainer(c, tiny_config(cell="lstm", init_state="learned"), checkpoint=tmp_path / "m.npz")
    run_steps(t, 3)
    path = t.save()
    ck = ckpt_io.load(path)
    assert ck.model.config.init_state == "learned" and ck.meta["train"]["init_state"] == "learned"
    for k, v in t.model.params.items():
        assert np.array_equal(ck.model.params[k], v), k

    plain = Trainer(c, tiny_config(cell="lstm"), checkpoint=tmp_path / "old.npz")
    run_steps(plain, 3)
    with np.load(plain.save()) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["meta"].tobytes())
    del meta["model"]["init_state"], meta["train"]["init_state"]  # as written before the setting existed
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(tmp_path / "older.npz", **arrays)
    old = ckpt_io.load(tmp_path / "older.npz")
    assert old.model.config.init_state == "zeros" and "h00" not in old.model.params
    assert Trainer.resume(tmp_path / "older.npz", c).config.init_state == "zeros"
