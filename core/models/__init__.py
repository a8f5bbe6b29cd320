"""The models: one module each, and this registry of them by name.

A new model is one module (a `CharModel` subclass declaring its facts: see core/models/base.py)
and one line in MODELS. Everything else (the command line's choices, recipe sizing, memory
planning, checkpoints, the inside view, the race, export and import, benchmarks) reads the facts
from the registry.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import (
    Cache,
    CharModel,
    ModelConfig,
    Params,
    Resets,
    State,
    StepperLike,
    StreamLike,
    log_softmax,
    softmax_cross_entropy,
)
from .gpt import CharGPT
from .gru import CharGRU
from .lstm import CharLSTM
from .rnn import CharRNN

# name -> model class, in the order --help and the race list them.
MODELS: dict[str, type[CharModel]] = {
    "lstm": CharLSTM,
    "gru": CharGRU,
    "rnn": CharRNN,
    "gpt": CharGPT,
}


def names() -> tuple[str, ...]:
    """The registered models' names."""
    return tuple(MODELS)


def model_class(name: str) -> type[CharModel]:
    """The model class registered as `name`; ConfigError for an unknown one."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown cell {name!r}; choose {', '.join(MODELS)}") from None


def create_model(config: ModelConfig, rng: np.random.Generator) -> CharModel:
    """A freshly initialised model of the kind `config.cell` names."""
    return model_class(config.cell).create(config, rng)


def load_model(config: ModelConfig, params: Params) -> CharModel:
    """The model of the kind `config.cell` names, holding `params` (checked against the config)."""
    return model_class(config.cell)(config, params)


__all__ = [
    "MODELS",
    "Cache",
    "CharModel",
    "ModelConfig",
    "Params",
    "Resets",
    "State",
    "StepperLike",
    "StreamLike",
    "create_model",
    "load_model",
    "log_softmax",
    "model_class",
    "names",
    "softmax_cross_entropy",
]
