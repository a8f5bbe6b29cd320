"""Defaults that fit the text: the sizing rule of core.recipe."""

from __future__ import annotations

import pytest

import core
from core import TrainConfig, recipe

FAST = 60e9  # a machine doing 60 GFLOP/s in one matrix product, as this one does
SLOW = 6e9


def test_a_short_text_keeps_the_settings_that_learn_it_in_seconds():
    r = recipe.choose(866, 32, flops=FAST)
    assert r.settings == {"hidden": 128, "layers": 1, "batch": 8, "seq_len": 48, "lr": 1e-2}
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
            "1 x 128 units (given), batch 32 x seq-len 64, lr 0.01 (for 128 units): the size given",
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
