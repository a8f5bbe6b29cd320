"""The model's contract: step by step equals the batched window, its defaults, refused settings."""

from __future__ import annotations

import numpy as np
import pytest

from core import (
    CharLSTM,
    ConfigError,
    ModelConfig,
    TrainConfig,
)


def test_step_by_step_equals_the_batched_window():
    rng = np.random.default_rng(1)
    cfg = ModelConfig(vocab_size=7, hidden=6, layers=2, dtype="float64")
    model = CharLSTM.create(cfg, rng)
    x = rng.integers(0, 7, (9, 3))  # (T, B)
    logits, final, _ = model.forward(x, model.initial_state(3))
    stepper = model.stepper()
    state = stepper.initial_state(3)
    for t in range(9):
        out, state = stepper.step(x[t], state)
        np.testing.assert_allclose(out, logits[t], rtol=1e-10, atol=1e-12)
    for (h1, c1), (h2, c2) in zip(final, state, strict=True):
        np.testing.assert_allclose(h1, h2, atol=1e-12)
        np.testing.assert_allclose(c1, c2, atol=1e-12)


def test_model_defaults_follow_the_design():
    model = CharLSTM.create(ModelConfig(vocab_size=5, hidden=4), np.random.default_rng(0))
    b = model.params["b0"]
    assert model.params["Wx0"].shape == (5, 16) and model.params["Wh0"].shape == (4, 16)
    assert np.all(b[4:8] == 1.0) and np.all(b[:4] == 0) and np.all(b[8:] == 0)  # forget bias 1
    assert model.params["Wx0"].dtype == np.float32


@pytest.mark.parametrize("bad", [dict(hidden=0), dict(layers=-1), dict(dropout=1.0), dict(dtype="int8")])
def test_absurd_model_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        ModelConfig(vocab_size=5, **bad)


@pytest.mark.parametrize(
    "bad", [dict(hidden=0), dict(batch=-3), dict(seq_len=0), dict(lr=0.0), dict(lr=float("nan")), dict(clip=-1)]
)
def test_absurd_training_settings_are_refused(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)
