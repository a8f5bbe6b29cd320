"""lstm-tui's engine: a character-level LSTM (or GRU, or vanilla RNN) language model in pure NumPy.

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
from .gru import CharGRU
from .model import CELLS, GATES, CharLSTM, CharModel, ModelConfig, Stepper, Stream, create_model
from .rnn import CharRNN
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
    "CELLS",
    "GATES",
    "Batches",
    "CharGRU",
    "CharLSTM",
    "CharModel",
    "CharRNN",
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
    "create_model",
    "evaluate",
    "fit_shape",
    "generate",
    "perplexity",
    "probabilities",
    "sample",
]
