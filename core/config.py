"""Every setting of a model and of a training run, each checked once.

ModelConfig (the network's shape; core/models/base.py) holds the limits of the model's fields;
the model's class adds its own (`check_config`). TrainConfig holds a run's settings: it checks its
own and has the model's checked by building the ModelConfig they describe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from .batches import WINDOWS
from .errors import ConfigError
from .models import ModelConfig, model_class

# Cuts on a stalled validation stop at this fraction of the configured rate: a run that has
# learned all it can (the soliloquy, memorised within seconds) would otherwise halve its rate at
# every evaluation, to 1e-10 within seconds, and show it.
MIN_LR_FRACTION = 1e-3
# With the default schedule an evaluation starts once this many times as many characters as the
# evaluation text holds have been trained on since the last one began (and at least
# EVAL_MIN_CHARS). Scoring a character costs about a third of training on one, so evaluation
# takes roughly a tenth of the run, whatever the text's length.
EVAL_INTERVAL = 4
EVAL_MIN_CHARS = 20_000
SCHEDULES = ("constant", "cosine")  # TrainConfig.schedule (core/schedule.py)
# Early in a run (and after a resume) the gaps between evaluations start at EVAL_MIN_CHARS and
# double until they reach the usual interval, so that a score never lags far behind a loss that
# is still falling fast. An evaluation after a gap of g characters scores the first
# g / EVAL_INTERVAL characters of the evaluation text when that is less than all of it (reported
# as a sample), which keeps its cost the same tenth of the time; the one at the start of a run
# scores EVAL_MIN_CHARS / EVAL_INTERVAL. On tinyshakespeare (111,540 characters of validation text,
# an interval of 446,160) that gives scores after 0, 20k, 60k, 140k, 300k and 620k characters.
# A model that resumes without its optimizer's state (an import, say) warms its learning rate up
# linearly over this many steps: fresh moments make Adam's first steps as large as the rate
# itself in every weight, which undoes much of what a trained model knows.
LR_WARMUP_STEPS = 100


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run. The defaults learn the bundled soliloquy in seconds."""

    hidden: int = 128  # H: units per layer (a GPT: its width)
    layers: int = 1  # L: stacked layers
    seq_len: int = 32  # T: steps of backprop through time per window
    batch: int = 8  # B: parallel streams per step (8 learns the soliloquy fastest: 0.69 s vs 1.0 s at 16)
    lr: float = 1e-2  # learning rate (Adam's step size)
    optimizer: str = "adam"  # adam, sgd or adagrad
    clip: float = 5.0  # max global gradient norm (0 = no clipping)
    dropout: float = 0.0  # dropout on each layer's output while training
    steps: int = 0  # optimizer steps to take (0 = until stopped)
    seed: int = 0  # seeds initial weights, dropout masks and sampling
    eval_every: int | None = None  # steps between evaluations; None = by characters trained
    # (EVAL_INTERVAL x the evaluation text, so scoring costs about a tenth of the time); 0 = never
    eval_chars: int = 0  # score at most this many characters of the evaluation text (0 = all of it)
    lr_decay: float = 0.5  # multiply the learning rate by this when validation stops improving (1 = never),
    # down to MIN_LR_FRACTION of `lr`
    lr_patience: int = 1  # evaluations without improvement before the learning rate is cut
    # Keep a moving average of the weights, with this weight of the past per step (0 = off). The
    # average is the run's model: evaluations score it, and generation, the best-model file and
    # the saved model use it (the weights being trained are saved beside it, to resume exactly).
    # Averaging anneals without a schedule: the average sits below the noise Adam's steps make.
    average: float = 0.0
    save_every: int = 0  # steps between automatic saves to the checkpoint (0 = never)
    dtype: str = "float32"  # float32 trains fast; float64 for exactness
    smoothing: float = 0.95  # weight of the past in the smoothed training loss
    cell: str = "lstm"  # the model: a name in core.models.MODELS
    # An attention model's shape (ModelConfig's fields; the recurrent cells ignore them):
    heads: int = 1  # attention heads per layer; they divide the width `hidden` between them
    block: int = 64  # the longest context in characters; seq_len may not exceed it
    bias: bool = False  # biases in the linear maps and LayerNorms
    # A recurrent cell's blank state (ModelConfig.init_state): "zeros", or "learned" (trained)
    init_state: str = "zeros"
    # The optimizer and the rate's schedule (core/schedule.py), for any model:
    beta2: float = 0.999  # Adam's decay of its second moment (nanoGPT's small runs: 0.99)
    weight_decay: float = 0.0  # decoupled (AdamW): each step shrinks the model's `decayed` parameters by lr x this
    warmup: int = 0  # steps over which the rate rises linearly to lr at the start of a run
    schedule: str = "constant"  # "cosine": after the warm-up, half a cosine from lr down to lr x min_lr
    # over the run's length (its steps, or its seconds); "constant": no decay
    min_lr: float = 0.1  # where the cosine ends, as a fraction of lr
    seconds: float = 0.0  # training time to take in this run, seconds (0 = no limit; with steps, whichever comes first)
    # How training reads the text (core/batches.py): "carried" streams read on with their state
    # carried from window to window; "random" windows start at random places from a blank state.
    windows: str = "carried"
    # carried streams: the chance that a stream starts a window blank (core/recipe.py: RESET_PROB);
    # random windows always start blank and ignore it
    reset_prob: float = 0.1

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ConfigError(msg)

        self.model_config(2)  # the model's fields, checked by ModelConfig and the model's class
        for name in ("seq_len", "batch"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 1, f"{name.replace('_', '-')} must be a whole number >= 1, got {v}")
        need(self.seq_len <= 100_000, f"sequence length {self.seq_len} is absurd (at most 100000)")
        need(self.batch <= 100_000, f"batch {self.batch} is absurd (at most 100000)")
        need(math.isfinite(self.lr) and 0 < self.lr <= 100, f"learning rate must be in (0, 100], got {self.lr}")
        need(math.isfinite(self.clip) and self.clip >= 0, f"clip must be >= 0, got {self.clip}")
        for name in ("steps", "save_every", "lr_patience"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 0, f"{name.replace('_', '-')} must be a whole number >= 0, got {v}")
        ee = self.eval_every
        need(ee is None or (isinstance(ee, int) and ee >= 0), f"eval-every must be a whole number >= 0, got {ee}")
        need(self.eval_chars == 0 or self.eval_chars >= 2, f"eval-chars must be 0 (all) or >= 2, got {self.eval_chars}")
        need(0 < self.lr_decay <= 1, f"lr-decay must be in (0, 1], got {self.lr_decay}")
        need(0 <= self.average < 1, f"average must be in [0, 1), got {self.average}")
        need(
            self.optimizer in ("adam", "sgd", "adagrad"),
            f"unknown optimizer {self.optimizer!r}; choose adam, sgd or adagrad",
        )
        need(0 <= self.smoothing < 1, f"smoothing must be in [0, 1), got {self.smoothing}")
        self._check_schedule(need)

    def _check_schedule(self, need: Any) -> None:
        """The attention models' window, the optimizer's and the schedule's settings."""
        longest = model_class(self.cell).longest_window(self.model_config(2))
        need(
            longest is None or self.seq_len <= longest,
            f"seq-len {self.seq_len} is longer than the block {longest}: a {self.cell} model reads at most "
            "--block characters at once (give --seq-len <= --block, or a larger --block)",
        )
        need(0 <= self.beta2 < 1, f"beta2 must be in [0, 1), got {self.beta2}")
        need(
            math.isfinite(self.weight_decay) and 0 <= self.weight_decay < 1 / self.lr,
            f"weight-decay must be >= 0 and below 1/lr ({1 / self.lr:g}), got {self.weight_decay}",
        )
        need(
            self.weight_decay == 0 or self.optimizer == "adam",
            "weight decay is decoupled Adam's (AdamW): give --optimizer adam",
        )
        w = self.warmup
        need(isinstance(w, int) and w >= 0, f"warmup must be a whole number >= 0, got {w}")
        need(
            self.schedule in SCHEDULES,
            f"unknown schedule {self.schedule!r}; choose {' or '.join(SCHEDULES)}",
        )
        need(0 <= self.min_lr <= 1, f"min-lr must be in [0, 1] (a fraction of lr), got {self.min_lr}")
        need(math.isfinite(self.seconds) and self.seconds >= 0, f"seconds must be >= 0, got {self.seconds}")
        need(self.windows in WINDOWS, f"unknown windows {self.windows!r}; choose {' or '.join(WINDOWS)}")
        need(
            isinstance(self.reset_prob, (int, float)) and 0 <= self.reset_prob <= 1,
            f"reset-prob must be in [0, 1], got {self.reset_prob}",
        )

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The model these settings train on a text of `vocab_size` characters (checked)."""
        config = ModelConfig(
            vocab_size,
            self.hidden,
            self.layers,
            self.dropout,
            self.dtype,
            self.cell,
            self.heads,
            self.block,
            self.bias,
            init_state=self.init_state,
        )
        model_class(self.cell).check_config(config)
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


__all__ = [
    "EVAL_INTERVAL",
    "EVAL_MIN_CHARS",
    "LR_WARMUP_STEPS",
    "MIN_LR_FRACTION",
    "SCHEDULES",
    "ModelConfig",
    "TrainConfig",
]
