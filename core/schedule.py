"""The learning rate's schedule: a linear warm-up, then a constant rate or half a cosine.

The rate of the step about to be taken (step number `it`, counted from 0 over the whole run, a
resumed run included) is `lr x factor`, where `lr` is the run's rate (TrainConfig.lr, as cut on a
stalled validation or set from the controls) and

    warm   = min(1, (it + 1) / (warmup + 1))                  linear warm-up over `warmup` steps
    ratio  = the fraction of the run done after the warm-up, in [0, 1]:
             (it - warmup) / (steps - warmup) for a run of `steps` steps,
             elapsed / seconds for a run of `seconds` seconds of training (the larger, with both)
    cosine = min_lr + (1 - min_lr) (1 + cos(pi ratio)) / 2    from 1 down to min_lr
    factor = warm x cosine   ("cosine"),   warm   ("constant")

which is nanoGPT's get_lr (warm-up, cosine to min_lr over lr_decay_iters = max_iters, then
min_lr) written as a factor. A cosine needs to know where the run ends: a run with neither a step
nor a time budget (the interface's, until it is stopped) has no end to decay towards, so after its
warm-up it keeps the full rate, and cutting the rate when validation stalls (TrainConfig.lr_decay)
and the moving average of the weights (TrainConfig.average) do the annealing, as for the recurrent
models. A cosine that has an end does that work itself, so such a run takes no cut on a stall
(`anneals`).
"""

from __future__ import annotations

import math

from .config import TrainConfig


def warmup_factor(config: TrainConfig, it: int) -> float:
    """The linear warm-up's share of the rate at step `it` (1 once the warm-up is over)."""
    return min(1.0, (it + 1) / (config.warmup + 1))


def progress(config: TrainConfig, it: int, elapsed_s: float) -> float | None:
    """How far the run is past its warm-up towards its end, in [0, 1]; None for a run without an end."""
    done = []
    if config.steps:
        span = config.steps - config.warmup
        done.append((it - config.warmup) / span if span > 0 else 0.0)  # (all warm-up: no decay)
    if config.seconds:
        done.append(elapsed_s / config.seconds)
    if not done:
        return None
    return min(1.0, max(0.0, *done))


def anneals(config: TrainConfig) -> bool:
    """The schedule brings the rate down by itself: a cosine over a run with an end. (The trainer
    then leaves the rate alone when validation stalls: a stall is noise the cosine already answers.)"""
    return config.schedule == "cosine" and bool(config.steps or config.seconds)


def lr_factor(config: TrainConfig, it: int, elapsed_s: float = 0.0) -> float:
    """The fraction of the run's rate that step `it` takes, `elapsed_s` seconds of training in."""
    factor = warmup_factor(config, it)
    if config.schedule == "cosine":
        ratio = progress(config, it, elapsed_s)
        if ratio is not None:
            factor *= config.min_lr + (1.0 - config.min_lr) * 0.5 * (1.0 + math.cos(math.pi * ratio))
    return factor
