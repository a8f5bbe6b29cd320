"""Defaults that fit the text: the model size, batch shape and learning rate chosen from a text's
length, its vocabulary and how fast this machine multiplies matrices.

The rule, and why (the measurements behind it are in benchmarks/recipe_study.py and README):

- A short text (under TINY_CHARS characters, like the bundled soliloquy) keeps the settings that
  learn it in about a second: one layer of 128 units, 8 streams of 48 steps, Adam at 1e-2.
- Otherwise the model is the largest on a ladder of sizes that satisfies two limits:
  * time: this machine can train it on the text SESSION_PASSES times (or on SESSION_CHARS
    characters, for a long text) in about SESSION_S seconds, estimated from the model's
    arithmetic per character and a short timing of one matrix product on this machine;
  * data: it has at most PARAMS_PER_CHAR parameters per training character, so a short text is
    not handed a model that can only memorise it.
  It trains on 32 streams of 64 steps (whole BLAS-sized products, still many updates per pass),
  at Adam 1e-2 for up to 128 units and 5e-3 above, halving the rate whenever an evaluation of
  the whole validation text sets no new best, and the model is a moving average of the weights
  (keeping 0.998 per step), which anneals without a schedule: the run need not know its length.
- Anything the user sets explicitly is kept, and the rest is chosen around it (the learning
  rate follows an explicit --hidden, for example).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .models import ModelConfig, model_class

TINY_CHARS = 20_000  # below this, the soliloquy's settings
SESSION_S = 600.0  # "what this machine can do in minutes": ten of them
SESSION_PASSES = 4  # passes over the text wanted in a session...
SESSION_CHARS = 5_000_000  # ...or this many characters, for a long text
PARAMS_PER_CHAR = 2.0  # at most this many parameters per training character
# (layers, hidden), smallest first
LADDER = ((1, 128), (1, 256), (2, 256), (2, 384), (2, 512), (3, 512))
# Measured here: whole training steps (B=32, T=64) run train_flops_per_char at 0.6 (1x128) to 0.8
# (2x256, 1x512) of the speed machine_flops() measures; the estimate takes 0.7.
STEP_EFFICIENCY = 0.7

# One core of the machine these defaults were measured on (machine_flops()): used where a
# measurement of this CPU would not say how fast training will go (the PyTorch engine).
REFERENCE_FLOPS = 85e9

TINY = {"hidden": 128, "layers": 1, "batch": 8, "seq_len": 48, "lr": 1e-2}
LARGE_SHAPE = {"batch": 32, "seq_len": 64, "average": 0.998}


def lr_for(hidden: int) -> float:
    """Adam's step size: 1e-2 learns fastest up to 128 units; larger layers are steadier at 5e-3."""
    return 1e-2 if hidden <= 128 else 5e-3


def train_flops_per_char(hidden: int, layers: int, vocab: int, cell: str = "lstm") -> float:
    """Floating-point operations of one character's forward and backward pass (the model's own count)."""
    return model_class(cell).train_flops_per_char(ModelConfig(vocab, hidden, layers, cell=cell))


def num_params(hidden: int, layers: int, vocab: int, cell: str = "lstm") -> int:
    return model_class(cell).num_params(ModelConfig(vocab, hidden, layers, cell=cell))


@functools.cache
def machine_flops() -> float:
    """Floating-point operations per second of one core in a float32 matrix product shaped like a
    training step's, (2048 x 256) @ (256 x 1024): the best of five, measured once. Timed in this
    process's CPU time, so that other programs running on a busy machine do not make it look
    slower than it is (call it with one BLAS thread, as training runs)."""
    rng = np.random.default_rng(0)
    a = rng.random((2048, 256), dtype=np.float32)
    b = rng.random((256, 1024), dtype=np.float32)
    out = a @ b  # warm up
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        np.matmul(a, b, out=out)
        best = min(best, time.process_time() - t0)
    return 2 * 2048 * 256 * 1024 / max(best, 1e-9)


@dataclass(frozen=True)
class Recipe:
    """The settings chosen for a text and the one-line reason."""

    settings: dict[str, Any]  # TrainConfig fields
    reason: str


def choose(n_chars: int, vocab: int, given: dict[str, Any] | None = None, flops: float | None = None) -> Recipe:
    """TrainConfig settings for a text of `n_chars` training characters and `vocab` symbols.

    `given` holds the settings the user chose (they are kept, and the rest fits around them);
    `flops` is this machine's matrix speed (measured when not given). The reason says only what
    is true of the settings chosen around those given: a speed is estimated only for the batch
    shape the estimate was measured with, and a size the user gave is not called the largest or
    the smallest of anything (it is checked against the two limits instead).
    """
    given = dict(given or {})
    if n_chars < TINY_CHARS:
        settings = {**TINY, **given}
        if "hidden" in given and "lr" not in given:
            settings["lr"] = lr_for(settings["hidden"])
        if any(k in given for k in TINY):
            why = f"the short-text settings ({n_chars:,} characters) around those given"
        else:
            why = f"a short text ({n_chars:,} characters): the settings that learn it in seconds"
        return Recipe(settings, _describe(settings, given, why))
    cell = given.get("cell", "lstm")
    speed = (flops if flops is not None else machine_flops()) * STEP_EFFICIENCY
    need = min(SESSION_PASSES * n_chars, SESSION_CHARS) / SESSION_S  # characters per second
    amount = f"the text {SESSION_PASSES} times"
    if SESSION_PASSES * n_chars > SESSION_CHARS:
        amount = f"{SESSION_CHARS / 1e6:.0f}M characters of it"
    session = f"{amount} in about {SESSION_S / 60:.0f} minutes"
    # the speed estimate holds for the batch shape and precision it was measured with
    estimate_holds = not any(k in given for k in ("batch", "seq_len", "dtype"))

    def rate_of(layers: int, hidden: int) -> float:
        return speed / train_flops_per_char(hidden, layers, vocab, cell)

    def per_char(layers: int, hidden: int) -> float:
        return num_params(hidden, layers, vocab, cell) / n_chars

    def fits(layers: int, hidden: int) -> bool:
        return rate_of(layers, hidden) >= need and per_char(layers, hidden) <= PARAMS_PER_CHAR

    def beyond(layers: int, hidden: int) -> list[str]:
        """The limits a size exceeds, each as a phrase: 'has 2.2 parameters per character ...'."""
        out = []
        if per_char(layers, hidden) > PARAMS_PER_CHAR:
            out.append(
                f"has {per_char(layers, hidden):.1f} parameters per character of this {n_chars:,}-character text, "
                f"more than {PARAMS_PER_CHAR:g} (it may learn the text by heart)"
            )
        if rate_of(layers, hidden) < need:
            estimate = f" (~{_chars_per_s(rate_of(layers, hidden))} estimated)" if estimate_holds else ""
            out.append(f"is too slow for this machine to train over {session}{estimate}")
        return out

    if "layers" in given and "hidden" in given:  # the size is the user's: check it, choose nothing
        layers, hidden = given["layers"], given["hidden"]
        notes = beyond(layers, hidden)
        why = "the size given" + ("; note: it " + " and ".join(notes) if notes else "")
    else:
        if "hidden" in given:
            which = f" with {given['hidden']} units"
        elif "layers" in given:
            which = f" with {given['layers']} layer{'s' if given['layers'] != 1 else ''}"
        else:
            which = ""
        good = [
            (layers, hidden)
            for layers, hidden in LADDER
            if given.get("layers", layers) == layers and given.get("hidden", hidden) == hidden and fits(layers, hidden)
        ]
        if good:
            layers, hidden = good[-1]
            speed_note = f" (~{_chars_per_s(rate_of(layers, hidden))})" if estimate_holds else ""
            why = (
                f"the largest model{which} this machine (~{speed / 1e9:.0f} GFLOP/s in training) can take "
                f"over {session}{speed_note} with at most {PARAMS_PER_CHAR:g} parameters per character"
            )
        else:  # no fitted size holds what was given within both limits: the smallest that does
            layers = given.get("layers", LADDER[0][0])
            hidden = given.get("hidden", LADDER[0][1])
            notes = beyond(layers, hidden)
            if notes:
                why = f"the smallest model{which}: even it " + " and ".join(notes)
            else:
                why = f"the smallest model{which}: no fitted size{which} is within both limits"
    settings = {"layers": layers, "hidden": hidden, **LARGE_SHAPE, "lr": lr_for(given.get("hidden", hidden))}
    settings.update(given)
    return Recipe(settings, _describe(settings, given, why))


def _chars_per_s(rate: float) -> str:
    return f"{rate / 1000:.0f}k chars/s" if rate >= 10_000 else f"{rate:,.0f} chars/s"


def _describe(s: dict[str, Any], given: dict[str, Any], why: str) -> str:
    """'chose 2 x 256 units, batch 32 x seq-len 64, lr 0.005: why', each setting the user gave marked."""

    def mark(*keys: str) -> str:
        return " (given)" if all(k in given for k in keys) else ""

    size = f"{s['layers']} x {s['hidden']} units"
    if "layers" in given and "hidden" in given:
        size += " (given)"
    elif "hidden" in given or "layers" in given:
        size += f" ({'--hidden' if 'hidden' in given else '--layers'} given)"
    lr = f"lr {s['lr']:g}" + (mark("lr") or f" (for {s['hidden']} units)")
    return f"chose {size}, batch {s['batch']}{mark('batch')} x seq-len {s['seq_len']}{mark('seq_len')}, {lr}: {why}"
