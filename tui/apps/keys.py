"""Every key of the four screens, written once: its binding, its footer label, its line of help.

Each app's `BINDINGS` are `bindings(KEYS)` and its help screen's KEYS section is `keys_help(KEYS)`,
so the footer, the bindings and the help cannot disagree. The README's "Keys" table lists the same
keys (tests/tui/apps/test_keys.py checks it). A few keys are Textual's own (tab, the command
palette's ctrl+p): they have no action here, and are listed for the help only.

All global keys work while the seed box has focus, so they are ctrl-, function- or escape-keys
(a focused Input takes letters).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from textual.binding import Binding

HELP_WIDTH = 72  # the help text's width: its box is 80 wide, less a border, padding and a scrollbar
KEY_COLUMN = 14  # "  ctrl+q      "


@dataclass(frozen=True)
class Key:
    """One key of an app: what it runs, what the footer calls it, and its line of help."""

    key: str  # Textual's name: "ctrl+q", "f2", "escape"
    action: str | None  # the app's action ("temperature(-1)"); None: Textual's own key, help only
    help: str  # the help screen's line ("" for a second binding of a key already explained)
    label: str = ""  # the footer's word
    show: bool = True  # in the footer
    priority: bool = False  # before any focused widget (the quit keys)


def bindings(keys: Iterable[Key]) -> list[Binding]:
    """The app's BINDINGS, in the footer's order."""
    return [Binding(k.key, k.action, k.label, show=k.show, priority=k.priority) for k in keys if k.action is not None]


def keys_help(keys: Iterable[Key]) -> str:
    """The help screen's KEYS section: a key a line (wrapped), in the order of the table."""
    lines = ["KEYS (all work while you type in the seed box)"]
    for k in keys:
        if not k.help:
            continue
        head = f"  {k.key:<{KEY_COLUMN - 3}} "
        lines += textwrap.wrap(
            k.help, HELP_WIDTH, initial_indent=head, subsequent_indent=" " * KEY_COLUMN, break_on_hyphens=False
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the pieces
def _quit(what: str) -> tuple[Key, Key]:
    return (
        Key("ctrl+q", "quit", what, "Quit", priority=True),
        # Ctrl+C is how people stop a program over SSH: here it does what ctrl+q does (it replaces
        # Textual's "press ctrl+q" hint and the seed box's copy, which ctrl+shift+c still does in
        # most terminals).
        Key("ctrl+c", "quit", "the same as ctrl+q", "Quit", show=False, priority=True),
    )


def _pause(what: str) -> tuple[Key, Key]:
    # one key, two bindings: the footer shows the one that applies (the apps' check_action)
    return Key("f2", "pause", f"pause / resume {what}", "Pause"), Key("f2", "resume", "", "Resume")


HELP = Key("f1", "help", "this help (escape closes it)", "Help")
# Generation, the same in every app (tui.apps.base.PlayApp's actions).
GENERATE = (
    Key("ctrl+g", "generate", "generate from the seed (enter in the seed box too)", "Generate"),
    Key("escape", "stop_generation", "stop generating", "Stop gen", show=False),
    Key("f7", "temperature(-1)", "temperature down by 0.05; or type it in its box, where up / down step it", "T−"),
    Key("f8", "temperature(1)", "temperature up by 0.05", "T+"),
    Key("f5", "top_k", "top-k: draw only among the k likeliest characters; each press keeps fewer (20, 10, 5, "
        "3, 2, 1, then all again); or type k in its box, where up / down step it", "top-k", show=False),
    Key("f9", "top_p", "top-p: draw only among the likeliest characters that hold p of the probability; each "
        "press keeps less (0.95, 0.9, 0.8, 0.5, then all again); or type p in its box", "top-p", show=False),
)  # fmt: skip
SEED = Key("f3", "focus_seed", "back to the seed box, its text selected: typing replaces it", "Seed", show=False)
INSIDE = Key(
    "f4",
    "inside",
    "look inside: the text coloured by one unit's gate, cell or hidden value; arrows pick unit and "
    "layer, q the quantity, f a text feature to rank units by, r the best unit (kept when you come back); "
    "a GPT: which earlier characters one attention head attends to ([ ] head, up / down layer, left / "
    "right the character)",
    "Inside",
)
TAB = Key("tab", None, "next field: seed, temperature, top-k, top-p, generated text")

# ------------------------------------------------------------------ the inside view (f4)
# A recurrent model's: one unit at a time.
INSIDE_UNITS = (
    Key("escape", "close", "back", "Back"),
    Key("left,left_square_bracket", "unit(-1)", "previous unit", "Unit −"),
    Key("right,right_square_bracket", "unit(1)", "next unit", "Unit +"),
    Key("up", "layer(-1)", "previous layer", "Layer −"),
    Key("down", "layer(1)", "next layer", "Layer +"),
    Key("q", "quantity", "next quantity of the cell", "Quantity"),
    Key("f", "feature", "next text feature to rank units by", "Feature"),
    Key("r", "best", "the best-ranked unit for that feature", "Best unit"),
)
# A GPT's: one attention head at a time, at one character. The layer and head move as the unit
# view's layer and unit do (up / down, [ / ]); left / right move along the text.
INSIDE_HEADS = (
    Key("escape", "close", "back", "Back"),
    Key("left_square_bracket", "head(-1)", "previous head", "Head −", show=False),
    Key("right_square_bracket", "head(1)", "next head", "Head +"),
    Key("up", "layer(-1)", "previous layer", "Layer −", show=False),
    Key("down", "layer(1)", "next layer", "Layer +"),
    Key("left", "position(-1)", "the character before", "◀"),
    Key("right", "position(1)", "the character after", "▶"),
    Key("end", "latest", "the latest character again (the view then follows the text)", "Latest"),
)

# ------------------------------------------------------------------ the apps
TRAIN = (
    *_quit("save the model and quit (the path is printed on exit)"),
    HELP,
    *_pause("training"),
    Key("ctrl+s", "save", "save the model now", "Save"),
    *GENERATE,
    SEED,
    INSIDE,
    TAB,
    Key("ctrl+p", None, "command palette: save as, reset the model, change the learning rate, training or "
        "validation text, ..."),
)  # fmt: skip

RACE = (
    *_quit("save every model and quit (each path is printed on exit)"),
    HELP,
    *_pause("the race"),
    Key("ctrl+s", "save", "save every model now, each to its own checkpoint (<text>.lstm.npz, <text>.gru.npz, ...)",
        "Save"),
    *GENERATE,
    Key("f6", "x_axis", "the graph against steps or against the seconds each model has had (what it bought with "
        "the same share of the machine)", "x axis"),
    TAB,
)  # fmt: skip

WATCH = (
    *_quit("stop watching; the run goes on untouched"),
    HELP,
    *GENERATE,
    SEED,
    INSIDE,
    TAB,
    Key("ctrl+p", None, "command palette: read the checkpoint again, ..."),
)

PLAY = (
    *_quit("close; nothing is saved (the model file is only read)"),
    HELP,
    *GENERATE,
    SEED,
    INSIDE,
    Key("tab", None, "next field: seed, temperature, top-k, top-p, generated text"),
    Key("ctrl+p", None, "command palette: set the temperature, top-k or top-p, ..."),
)
