"""Fixtures shared by the tests (plain helper functions are in tests/helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from core import TrainConfig, Trainer, corpus


@pytest.fixture(scope="session")
def soliloquy() -> corpus.Corpus:
    """The bundled corpus, read once."""
    return corpus.load(corpus.bundled_path())


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory, soliloquy: corpus.Corpus) -> Callable[..., Path]:
    """saved_model(**settings): the path of a checkpoint trained briefly on the soliloquy with these
    TrainConfig settings (no evaluations), made once per session for each set of settings."""
    made: dict[tuple, Path] = {}

    def make(**settings: object) -> Path:
        key = tuple(sorted(settings.items()))
        if key not in made:
            path = tmp_path_factory.mktemp("model") / "m.npz"
            Trainer(soliloquy, TrainConfig(eval_every=0, **settings), checkpoint=path).save()  # type: ignore[arg-type]
            made[key] = path
        return made[key]

    return make
