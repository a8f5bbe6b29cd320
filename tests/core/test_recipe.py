"""Defaults that fit the text: the sizing rule of core.recipe."""

from __future__ import annotations

import pytest

import core
from core import TrainConfig, recipe

FAST = 60e9  # a machine doing 60 GFLOP/s in one matrix product, as this one does
SLOW = 6e9


def test_a_short_text_keeps_the_settings_that_learn_it_in_seconds():
    r = recipe.choose(866, 32, flops=FAST)
    assert r.settings == {"hidden": 128, "layers": 1, "batch": 8, "seq_len": 32, "lr": 1e-2, "reset_prob": 0.1}
    assert TrainConfig(**r.settings) == TrainConfig()  # and they are TrainConfig's own defaults
    assert "866 characters" in r.reason and "\n" not in r.reason


@pytest.mark.parametrize(
    ("n", "vocab", "flops", "layers", "hidden"),
    [
        (50_000, 65, FAST, 1, 128),  # too little text for more parameters than that
        (200_000, 65, FAST, 1, 256),  # data-limited: 346k parameters for 200k characters
        (1_000_000, 65, FAST, 2, 256),  # tinyshakespeare: time-limited
        (1_000_000, 65, SLOW, 1, 128),  # a slower machine gets a smaller model for the same text
        (20_000_000, 100, FAST, 2, 256),  # a long text: 5M characters in ten minutes
        (300_000, 3000, FAST, 1, 128),  # a large vocabulary makes every model bigger and slower
    ],
)
def test_the_model_fits_the_text_and_the_machine(n, vocab, flops, layers, hidden):
    r = recipe.choose(n, vocab, flops=flops)
    s = r.settings
    assert (s["layers"], s["hidden"]) == (layers, hidden), r.reason
    assert (s["batch"], s["seq_len"]) == (32, 64)
    assert s["lr"] == (1e-2 if hidden <= 128 else 5e-3)
    assert r.reason.startswith(f"chose {layers} x {hidden} units") and "\n" not in r.reason
    TrainConfig(**s)  # valid settings


def test_the_choice_follows_the_limits_it_states():
    n, vocab = 1_000_000, 65
    s = recipe.choose(n, vocab, flops=FAST).settings
    speed = FAST * recipe.STEP_EFFICIENCY
    need = min(recipe.SESSION_PASSES * n, recipe.SESSION_CHARS) / recipe.SESSION_S
    assert speed / recipe.train_flops_per_char(s["hidden"], s["layers"], vocab) >= need
    assert recipe.num_params(s["hidden"], s["layers"], vocab) <= recipe.PARAMS_PER_CHAR * n
    bigger = recipe.LADDER[recipe.LADDER.index((s["layers"], s["hidden"])) + 1]
    too_slow = speed / recipe.train_flops_per_char(bigger[1], bigger[0], vocab) < need
    too_big = recipe.num_params(bigger[1], bigger[0], vocab) > recipe.PARAMS_PER_CHAR * n
    assert too_slow or too_big


def test_num_params_matches_the_model():
    for layers, hidden in recipe.LADDER[:4]:
        assert recipe.num_params(hidden, layers, 65) == core.model_class("lstm").num_params(
            TrainConfig(hidden=hidden, layers=layers).model_config(65)
        )


def test_explicit_settings_win_and_the_rest_fits_around_them():
    r = recipe.choose(1_000_000, 65, {"hidden": 64, "dropout": 0.3}, flops=FAST)
    assert r.settings["hidden"] == 64 and r.settings["dropout"] == 0.3 and r.settings["lr"] == 1e-2
    r = recipe.choose(1_000_000, 65, {"hidden": 512, "layers": 3, "lr": 1e-3, "batch": 4}, flops=FAST)
    assert (r.settings["hidden"], r.settings["layers"], r.settings["lr"], r.settings["batch"]) == (512, 3, 1e-3, 4)
    r = recipe.choose(866, 32, {"hidden": 256}, flops=FAST)
    assert r.settings["hidden"] == 256 and r.settings["lr"] == 5e-3 and r.settings["batch"] == 8


def test_machine_speed_is_measured():
    assert 1e8 < recipe.machine_flops() < 1e14


@pytest.mark.parametrize(
    ("given", "says", "never"),
    [
        # a size the user chose is checked against the limits, never called the largest or smallest
        (
            {"hidden": 128, "layers": 1},
            "1 x 128 units (given), batch 32 x seq-len 64, lr 0.01 (for 128 units), random windows: the size given",
            ("largest", "smallest", "chars/s"),
        ),  # fmt: skip
        (
            {"hidden": 384, "layers": 2},
            "the size given; note: it is too slow for this machine to train over the text 4 times in about 10 minutes",
            ("largest", "smallest", "too short"),
        ),  # fmt: skip
        # no speed is promised for a batch shape the estimate was not measured with
        ({"seq_len": 1}, "batch 32 x seq-len 1 (given)", ("chars/s",)),
        # a width off the ladder: the smallest with it, and why, true of that size
        ({"hidden": 64}, "the smallest model with 64 units: no fitted size with 64 units", ("too short",)),
    ],
)
def test_the_reason_is_true_of_what_was_chosen_and_what_was_given(given, says, never):
    reason = recipe.choose(1_000_000, 65, given, flops=FAST).reason
    assert says in reason, reason
    for word in never:
        assert word not in reason, reason


def test_a_given_size_beyond_a_limit_is_named_with_the_limit():
    reason = recipe.choose(200_000, 65, {"hidden": 512, "layers": 3}, flops=FAST).reason
    assert "the size given; note: it has" in reason and "parameters per character" in reason


# ------------------------------------------------------------------------------ the GPT
FITTED_GPT = {  # nanoGPT's CPU recipe at twice its rate, the model the weights' moving average
    "layers": 4, "hidden": 128, "heads": 4, "block": 64, "seq_len": 64, "batch": 12, "lr": 2e-3,
    "weight_decay": 0.1, "beta2": 0.99, "clip": 1.0, "warmup": 100, "schedule": "cosine", "min_lr": 0.1,
    "average": 0.998,
}  # fmt: skip


def test_a_gpt_on_tinyshakespeare_gets_nanogpts_cpu_recipe_at_twice_its_rate_with_the_average():
    r = recipe.choose(1_000_000, 65, {"cell": "gpt"}, flops=FAST)
    assert {k: r.settings[k] for k in FITTED_GPT} == FITTED_GPT
    assert "nanoGPT's CPU model" in r.reason and r.reason.startswith("chose a GPT of 4 layers x width 128")
    assert "AdamW lr 0.002" in r.reason and "moving average of the weights (0.998)" in r.reason
    TrainConfig(**r.settings)  # valid settings
    wider = recipe.choose(20_000_000, 65, {"cell": "gpt"}, flops=3 * FAST).settings
    assert (wider["hidden"], wider["lr"]) == (192, 1e-3)  # wider GPTs keep nanoGPT's rate
    assert recipe.choose(1_000_000, 65, {"cell": "gpt", "lr": 5e-4}, flops=FAST).settings["lr"] == 5e-4


@pytest.mark.parametrize(
    ("n", "flops", "layers", "hidden"),
    [
        (866, FAST, 2, 64),  # the soliloquy: the small GPT that learns it in seconds
        (200_000, FAST, 2, 64),  # data-limited: nanoGPT's CPU model has 0.8M parameters
        (1_000_000, SLOW, 2, 64),  # a slow machine: the smallest GPT, for want of time
        (20_000_000, 3 * FAST, 4, 192),  # a long text on a faster machine: a larger rung
    ],
)
def test_the_gpt_fits_the_text_and_the_machine(n, flops, layers, hidden):
    r = recipe.choose(n, 65, {"cell": "gpt"}, flops=flops)
    s = r.settings
    assert (s["layers"], s["hidden"]) == (layers, hidden), r.reason
    assert s["seq_len"] == s["block"] and s["hidden"] % s["heads"] == 0
    TrainConfig(**s)
    if n >= recipe.TINY_CHARS and "smallest" not in r.reason:
        speed = flops * recipe.STEP_EFFICIENCY
        shape = {k: s[k] for k in ("heads", "block")}
        need = min(recipe.SESSION_PASSES * n, recipe.SESSION_CHARS) / recipe.SESSION_S
        assert speed / recipe.train_flops_per_char(hidden, layers, 65, "gpt", **shape) >= need
        assert recipe.num_params(hidden, layers, 65, "gpt", **shape) <= recipe.PARAMS_PER_CHAR * n


def test_a_gpts_given_settings_win_and_the_rest_fits_around_them():
    r = recipe.choose(1_000_000, 65, {"cell": "gpt", "hidden": 96}, flops=FAST)
    assert r.settings["hidden"] == 96 and r.settings["heads"] == 3 and r.settings["layers"] == 4  # 32 columns a head
    r = recipe.choose(1_000_000, 65, {"cell": "gpt", "seq_len": 128}, flops=FAST)
    assert r.settings["block"] == r.settings["seq_len"] == 128  # a longer window needs a longer block
    r = recipe.choose(1_000_000, 65, {"cell": "gpt", "block": 32, "lr": 3e-4, "schedule": "constant"}, flops=FAST)
    assert (r.settings["block"], r.settings["seq_len"], r.settings["lr"]) == (32, 32, 3e-4)
    assert r.settings["schedule"] == "constant" and "cosine" not in r.reason
    assert recipe.heads_for(128) == 4 and recipe.heads_for(100) == 4 and recipe.heads_for(7) == 1


def test_how_the_text_is_read_follows_its_length_and_what_the_user_gave():
    """A long text trains on random windows from a blank state (RNNs and the GPT), a short one on
    carried streams that start blank one window in ten; --reset-prob means carried windows, and
    --windows random drops the default reset."""
    long_rnn = recipe.choose(1_000_000, 65, flops=FAST).settings
    assert (long_rnn["windows"], long_rnn["reset_prob"]) == ("random", 0.0)
    assert recipe.choose(1_000_000, 65, {"cell": "gpt"}, flops=FAST).settings["windows"] == "random"
    short = recipe.choose(866, 32, flops=FAST).settings
    assert short.get("windows", "carried") == "carried" and short["reset_prob"] == recipe.RESET_PROB
    given = recipe.choose(1_000_000, 65, {"reset_prob": 0.25}, flops=FAST).settings
    assert (given["windows"], given["reset_prob"]) == ("carried", 0.25)
    random_short = recipe.choose(866, 32, {"windows": "random"}, flops=FAST).settings
    assert (random_short["windows"], random_short["reset_prob"]) == ("random", 0.0)
    for settings in (long_rnn, short, given, random_short):
        TrainConfig(**settings)  # each is a valid run
    assert "random windows" in recipe.choose(1_000_000, 65, flops=FAST).reason
    assert "1 window in 10 from a blank state" in recipe.choose(866, 32, flops=FAST).reason
