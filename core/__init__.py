"""lstm-tui's engine: a character-level LSTM language model in pure NumPy.

Usable on its own, without the interface:

    from core import corpus, Trainer, TrainConfig
    text = corpus.load(corpus.bundled_path())
    trainer = Trainer(text, TrainConfig(steps=300))
    for report in trainer.run():
        ...

This package imports only NumPy and the standard library.
"""

from . import corpus
from .batches import Batches, fit_shape
from .checkpoint import Checkpoint
from .errors import CheckpointError, ConfigError, CorpusError, LstmTuiError
from .evaluate import Evaluation, bits_per_char, evaluate, perplexity
from .model import GATES, CharLSTM, ModelConfig, Stepper, Stream
from .sampling import generate, probabilities, sample
from .trainer import (
    Controls,
    DivergedReport,
    DoneReport,
    EvalReport,
    SaveReport,
    StepReport,
    TrainConfig,
    Trainer,
)
from .vocab import Vocab

__version__ = "0.1.0"

__all__ = [
    "GATES",
    "Batches",
    "CharLSTM",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "Controls",
    "CorpusError",
    "DivergedReport",
    "DoneReport",
    "EvalReport",
    "Evaluation",
    "LstmTuiError",
    "ModelConfig",
    "SaveReport",
    "StepReport",
    "Stepper",
    "Stream",
    "TrainConfig",
    "Trainer",
    "Vocab",
    "__version__",
    "bits_per_char",
    "corpus",
    "evaluate",
    "fit_shape",
    "generate",
    "perplexity",
    "probabilities",
    "sample",
]
