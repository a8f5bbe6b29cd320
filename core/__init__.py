"""lstm-tui's engine: character-level language models (LSTM, GRU, vanilla RNN, GPT) in pure NumPy.

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
from .config import TrainConfig
from .engine import Engine, NumpyEngine
from .errors import CheckpointError, ConfigError, CorpusError, LstmTuiError
from .evaluate import Evaluation, bits_per_char, evaluate, perplexity
from .models import MODELS, CharModel, ModelConfig, create_model, load_model, model_class
from .models.gpt import CharGPT
from .models.gru import CharGRU
from .models.lstm import CharLSTM
from .models.rnn import CharRNN
from .sampling import generate, probabilities, sample
from .trainer import (
    Controls,
    DivergedReport,
    DoneReport,
    EvalReport,
    SaveReport,
    StepReport,
    Trainer,
)
from .vocab import Vocab

__version__ = "0.1.0"

__all__ = [
    "MODELS",
    "Batches",
    "CharGPT",
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
    "Engine",
    "EvalReport",
    "Evaluation",
    "LstmTuiError",
    "ModelConfig",
    "NumpyEngine",
    "SaveReport",
    "StepReport",
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
    "load_model",
    "model_class",
    "perplexity",
    "probabilities",
    "sample",
]
