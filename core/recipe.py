"""Defaults that fit the text: the model size, batch shape and learning rate chosen from a text's
length, its vocabulary and how fast this machine multiplies matrices.

The rule, and why (the measurements behind it are in benchmarks/recipe_study.py and README):

- A short text (under TINY_CHARS characters, like the bundled soliloquy) keeps the settings that
  learn it in about a second: one layer of 128 units, 8 streams of 32 steps, Adam at 1e-2.
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
- How training reads the text (core/batches.py), so that the model can start from a blank state
  anywhere, as it must when a user types a seed (benchmarks/blank_start.py measured the choices
  on tinyshakespeare, one-pass and cold-start): on a text of TINY_CHARS or more, random windows
  each read from a blank state (the recurrent models and the GPT); on a short text, streams that
  carry their state, one window in ten (RESET_PROB) starting blank, which reads it better from a
  blank state for a few more steps.
- Anything the user sets explicitly is kept, and the rest is chosen around it (the learning
  rate follows an explicit --hidden, for example).

The GPT (`--cell gpt`) is sized by the same two limits on a ladder of GPT sizes around nanoGPT's
CPU model (GPT_LADDER: 4 layers of width 128 with 4 heads, a block of 64 characters), and trains
with nanoGPT's CPU recipe (batch 12, AdamW with decay 0.1 and beta2 0.99, clip 1, a 100-step
warm-up and a cosine to a tenth of the rate over the run) at twice its rate up to width 128, the
model a moving average of the weights (benchmarks/gpt_recipe.py measured both changes). A short
text gets a small GPT that learns it in seconds.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import TrainConfig
from .errors import ConfigError
from .models import ModelConfig, model_class

TINY_CHARS = 20_000  # below this, the soliloquy's settings
SESSION_S = 600.0  # "what this machine can do in minutes": ten of them
SESSION_PASSES = 4  # passes over the text wanted in a session...
SESSION_CHARS = 5_000_000  # ...or this many characters, for a long text
PARAMS_PER_CHAR = 2.0  # at most this many parameters per training character
# (layers, hidden), smallest first. No 2x384: in ten minutes on tinyshakespeare it lost to 2x256
# on both machines measured, 1.534 against 1.511 (benchmarks/results/recipe_sweep.jsonl, carried
# state) and 1.542 against 1.476 (benchmarks/results/blank_start.jsonl, random windows): it gets
# under 4 passes where 2x256 gets 9, and 2x256 improves up to about 8.
LADDER = ((1, 128), (1, 256), (2, 256), (2, 512), (3, 512))
# Measured here: whole training steps (B=32, T=64) run train_flops_per_char at 0.6 (1x128) to 0.8
# (2x256, 1x512) of the speed machine_flops() measures; the estimate takes 0.7.
STEP_EFFICIENCY = 0.7

# One core of the machine these defaults were measured on (machine_flops()): used where a
# measurement of this CPU would not say how fast training will go (the PyTorch engine).
REFERENCE_FLOPS = 85e9

RESET_PROB = 0.1  # a short text's carried streams: the chance a window starts blank
# Windows of 32 steps, not 48: on the soliloquy 1.33x sooner learned in training time (a step is
# two thirds the work, and it takes 183 steps where 48 took 166), read a little better from a
# blank state after 600 steps (0.151 against 0.171), the GRU alike (benchmarks/results/short_text_seq_len.txt).
TINY = {"hidden": 128, "layers": 1, "batch": 8, "seq_len": 32, "lr": 1e-2, "reset_prob": RESET_PROB}
# (a GPT's windows carry no state: a reset changes nothing, so it has none)
LARGE_SHAPE = {"batch": 32, "seq_len": 64, "average": 0.998, "windows": "random"}


# The GPT's ladder: (layers, width, heads, block), smallest first. The second rung is nanoGPT's
# CPU recipe (config/train_shakespeare_char.py's "baby GPT" shrunk for a laptop), the last its GPU one.
GPT_LADDER = ((2, 64, 4, 64), (4, 128, 4, 64), (4, 192, 6, 128), (6, 256, 8, 128), (6, 384, 6, 256))
# nanoGPT's optimizer and schedule (its CPU recipe), for every GPT on a text of TINY_CHARS or more,
# with the two changes benchmarks/gpt_recipe.py measured on tinyshakespeare (results/gpt_recipe.jsonl):
# twice the rate up to width 128 (gpt_lr_for), and the moving average of the weights (0.998).
GPT_TRAINING = {
    "batch": 12,
    "lr": 1e-3,
    "weight_decay": 0.1,
    "beta2": 0.99,
    "clip": 1.0,
    "warmup": 100,
    "schedule": "cosine",
    "min_lr": 0.1,
    "average": 0.998,
    "windows": "random",
}
# The soliloquy's GPT: two layers of 64, a whole block of the text per stream; reaches 99% greedy
# accuracy in 340-510 steps (3-5 s of CPU) with seeds 0-2 here.
GPT_TINY = {
    "layers": 2,
    "hidden": 64,
    "heads": 4,
    "block": 64,
    "seq_len": 64,
    "batch": 8,
    "lr": 3e-3,
    "reset_prob": 0.0,
}
GPT_HEAD_SIZE = 32  # with the width given and the heads not: the head count nearest width / 32 that divides it


def gpt_lr_for(hidden: int) -> float:
    """A GPT's AdamW rate: nanoGPT's 1e-3, doubled up to width 128, where the recipe was measured:
    at nanoGPT's CPU size on tinyshakespeare 2e-3 ended 0.077 lower after nanoGPT's 2,000 steps
    (1.839 against 1.916) and after 4,000 with the average (1.626 against 1.702). Wider GPTs keep
    1e-3, nanoGPT's rate for its larger shakespeare_char model (not measured here)."""
    return 2e-3 if hidden <= 128 else 1e-3


def lr_for(hidden: int) -> float:
    """Adam's step size: 1e-2 learns fastest up to 128 units; larger layers are steadier at 5e-3."""
    return 1e-2 if hidden <= 128 else 5e-3


def train_flops_per_char(hidden: int, layers: int, vocab: int, cell: str = "lstm", **shape: Any) -> float:
    """Floating-point operations of one character's forward and backward pass (the model's own count)."""
    return model_class(cell).train_flops_per_char(ModelConfig(vocab, hidden, layers, cell=cell, **shape))


def num_params(hidden: int, layers: int, vocab: int, cell: str = "lstm", **shape: Any) -> int:
    return model_class(cell).num_params(ModelConfig(vocab, hidden, layers, cell=cell, **shape))


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
    if given.get("cell") == "gpt":
        return choose_gpt(n_chars, vocab, given, flops)
    if n_chars < TINY_CHARS:
        settings = {**TINY, **given}
        if "hidden" in given and "lr" not in given:
            settings["lr"] = lr_for(settings["hidden"])
        if any(k in given for k in TINY):
            why = f"the short-text settings ({n_chars:,} characters) around those given"
        else:
            why = f"a short text ({n_chars:,} characters): the settings that learn it in seconds"
        settings = reading(settings, given)
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
    settings = reading(settings, given)
    return Recipe(settings, _describe(settings, given, why))


def reading(settings: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """`settings` with a way of reading the text that agrees with what the user gave: --reset-prob
    means carried windows, and --windows random drops a default --reset-prob."""
    out = dict(settings)
    if given.get("windows") == "random" and given.get("reset_prob"):
        raise ConfigError("--reset-prob applies to carried windows: random windows always start from a blank state")
    if "reset_prob" in given and "windows" not in given:
        out["windows"] = "carried"
    if out.get("windows") == "random" and "reset_prob" not in given:
        out["reset_prob"] = 0.0  # (random windows always start blank)
    return out


def training_for(cell: str) -> dict[str, Any]:
    """How a model of `cell` trains when nothing is known of its text (a model imported from
    PyTorch and resumed): a GPT with nanoGPT's optimizer and schedule, the others with TrainConfig's
    defaults."""
    return dict(GPT_TRAINING) if cell == "gpt" else {}


def heads_for(hidden: int) -> int:
    """The head count nearest hidden / GPT_HEAD_SIZE that divides the width (nanoGPT's heads are 32 to
    64 columns wide)."""
    divisors = [h for h in range(1, hidden + 1) if hidden % h == 0]
    return min(divisors, key=lambda h: (abs(h - hidden / GPT_HEAD_SIZE), -h))


def choose_gpt(n_chars: int, vocab: int, given: dict[str, Any], flops: float | None = None) -> Recipe:
    """The GPT's settings: the two limits of `choose` on GPT_LADDER, with nanoGPT's training."""
    shape_keys = ("layers", "hidden", "heads", "block")
    if n_chars < TINY_CHARS:
        settings = {**GPT_TINY, **given}
        why = f"a short text ({n_chars:,} characters): a small GPT that learns it in seconds"
    else:
        speed = (flops if flops is not None else machine_flops()) * STEP_EFFICIENCY
        need = min(SESSION_PASSES * n_chars, SESSION_CHARS) / SESSION_S  # characters per second
        rungs: list[dict[str, int]] = [dict(zip(shape_keys, rung, strict=True)) for rung in GPT_LADDER]
        allowed = [r for r in rungs if all(given.get(k, r[k]) == r[k] for k in ("layers", "hidden"))]
        fits: list[tuple[dict[str, int], float]] = []
        for rung in allowed:
            shape: dict[str, int] = {**rung, **{k: given[k] for k in ("heads", "block") if k in given}}
            if shape["hidden"] % shape["heads"]:
                continue
            rate = speed / train_flops_per_char(vocab=vocab, cell="gpt", **shape)
            if rate >= need and num_params(vocab=vocab, cell="gpt", **shape) <= PARAMS_PER_CHAR * n_chars:
                fits.append((rung, rate))
        if fits:
            chosen, rate = fits[-1]
            amount = f"the text {SESSION_PASSES} times"
            if SESSION_PASSES * n_chars > SESSION_CHARS:
                amount = f"{SESSION_CHARS / 1e6:.0f}M characters of it"
            what = f"{chosen['layers']} x {chosen['hidden']}" + (" (nanoGPT's CPU model)" if chosen == rungs[1] else "")
            why = (
                f"{what} is the largest GPT this machine (~{speed / 1e9:.0f} GFLOP/s in training) can take over "
                f"{amount} in about {SESSION_S / 60:.0f} minutes (~{rate / 1000:.0f}k chars/s) "
                f"with at most {PARAMS_PER_CHAR:g} parameters per character"
            )
        elif not allowed:  # a size off the ladder: nanoGPT's CPU model, as far as the user's choices allow
            chosen = {**rungs[1], **{k: given[k] for k in ("layers", "hidden") if k in given}}
            why = "the size given, and nanoGPT's CPU recipe for the rest"
        else:  # nothing on the ladder fits both limits: the smallest GPT the user's choices allow
            chosen = allowed[0]
            why = (
                f"the smallest GPT: a {n_chars:,}-character text with {vocab:,} symbols is too short for more "
                f"than {PARAMS_PER_CHAR:g} parameters per character (or this machine too slow for a larger one)"
            )
        settings = {**chosen, **GPT_TRAINING, "lr": gpt_lr_for(given.get("hidden", chosen["hidden"])), **given}
    if "hidden" in given and "heads" not in given:
        settings["heads"] = heads_for(settings["hidden"])
    if "seq_len" in given and "block" not in given:
        settings["block"] = max(settings["block"], given["seq_len"])
    if "seq_len" not in given:
        settings["seq_len"] = settings["block"]  # every window a whole context
    settings = reading(settings, given)
    return Recipe(settings, _describe_gpt(settings, why))


def _describe_gpt(s: dict[str, Any], why: str) -> str:
    d = TrainConfig()
    optimizer = f"{s.get('optimizer', d.optimizer).capitalize()} lr {s['lr']:g}"
    if s.get("weight_decay", d.weight_decay):
        optimizer = f"AdamW lr {s['lr']:g} (decay {s['weight_decay']:g}, beta2 {s.get('beta2', d.beta2):g})"
    schedule = f", warm-up {s['warmup']} steps" if s.get("warmup") else ""
    if s.get("schedule", d.schedule) == "cosine":
        floor = s["lr"] * s.get("min_lr", d.min_lr)
        schedule += f", then a cosine to {floor:g} over the run's --steps or --seconds"
    if s.get("average"):
        schedule += f", the model a moving average of the weights ({s['average']:g})"
    schedule += _describe_reading(s)
    return (
        f"chose a GPT of {s['layers']} layers x width {s['hidden']}, {s['heads']} heads, block {s['block']}, "
        f"batch {s['batch']} x seq-len {s['seq_len']}, {optimizer}{schedule}: {why}"
    )


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
    return (
        f"chose {size}, batch {s['batch']}{mark('batch')} x seq-len {s['seq_len']}{mark('seq_len')}, {lr}"
        f"{_describe_reading(s)}: {why}"
    )


def _describe_reading(s: dict[str, Any]) -> str:
    """', random windows' / ', 1 window in 10 from a blank state' / ''."""
    if s.get("windows") == "random":
        return ", random windows"
    p = s.get("reset_prob", 0.0)
    if p:
        return (
            f", 1 window in {1 / p:.0f} from a blank state"
            if abs(1 / p - round(1 / p)) < 1e-9
            else f", reset-prob {p:g}"
        )
    return ""
