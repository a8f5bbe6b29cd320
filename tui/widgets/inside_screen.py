"""The inside view: a text window coloured by one unit's activation, live while training.

Keys (all single letters are safe here: the screen has no text input):
  ←/→ or [/]  previous/next unit      ↑/↓  previous/next layer
  q           next quantity of the model's cell (LSTM: input, forget, output gates, candidate,
              cell, hidden; GRU: reset, update gates, candidate, hidden; RNN: hidden)
  f           next text feature for the ranking        r  jump to the best-ranked unit
  escape      back to training
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from core.inside import (
    FEATURES,
    Activations,
    UnitScore,
    activations,
    default_quantity,
    feature,
    has_attention,
    quantities,
    rank_units,
)

from ..apps import keys
from ..plain.render import GATE_QUANTITIES, SHADES, colour, foreground_for, unit_fraction, value_range, visible

WINDOW_CHARS = 480  # characters of the evaluation text shown and analysed
POLL_S = 0.5  # how often the screen checks for a new evaluation to refresh on


@dataclass
class InsideChoice:
    """What the reader chose in the inside view, kept by the app so that it comes back as it was left."""

    layer: int = 0
    unit: int = 0
    head: int = 0  # a GPT's attention head
    position: int | None = None  # a GPT's character to show the attention at; None: the latest
    quantity: str = ""  # "": the model's default (so is a quantity the model's cell lacks)
    feature: str = ""  # "": the default for the text


def inside_view(
    trainer, evaluations_seen: Callable[[], int], choice: InsideChoice, recent: Callable[[], str]
) -> InsideView:
    """The inside view for the model `trainer.snapshot`: its units (InsideScreen), or for a model with
    attention heads what each head attends to over `recent()`, the generation panel's text
    (AttentionScreen)."""
    if has_attention(trainer.snapshot.config.cell):
        from .attention_screen import AttentionScreen

        return AttentionScreen(trainer, evaluations_seen, choice, recent)
    return InsideScreen(trainer, evaluations_seen, choice)


class InsideView(Screen[None]):
    """Either inside view (the units', the heads'): what the apps push on f4, at most once."""


@dataclass
class InsideComputed(Message):
    """Activations and rankings computed off the UI thread for one snapshot of the weights."""

    acts: Activations
    step: int
    cell: str  # the model's cell (a watched run's file may be replaced by another model)


def colourless() -> bool:
    """True when the user asked for no colour (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def coloured_text(text: str, values: np.ndarray, quantity: str, width: int) -> Text:
    """The text with each character's background showing its value; shade rows without colour."""
    lo, hi = value_range(quantity, values)
    frac = unit_fraction(values, lo, hi)
    out = Text(no_wrap=True, overflow="crop")
    if colourless():
        chars, shades = [], []
        for ch, f in zip(text, frac, strict=True):
            chars.append(visible(ch))
            shades.append(SHADES[min(len(SHADES) - 1, int(f * len(SHADES)))])
            if ch == "\n" or len(chars) >= width:
                out.append("".join(chars) + "\n" + "".join(shades) + "\n")
                chars, shades = [], []
        if chars:
            out.append("".join(chars) + "\n" + "".join(shades))
        return out
    diverging = quantity not in GATE_QUANTITIES
    col = 0
    for ch, f in zip(text, frac, strict=True):
        bg = colour(float(f), diverging)
        fg = foreground_for(bg)
        out.append(visible(ch), style=f"rgb({fg[0]},{fg[1]},{fg[2]}) on rgb({bg[0]},{bg[1]},{bg[2]})")
        col += 1
        if ch == "\n" or col >= width:
            out.append("\n")
            col = 0
    return out


class InsideScreen(InsideView):
    """What one unit of the model (LSTM, GRU or RNN) responds to, refreshed at every evaluation."""

    BINDINGS = keys.bindings(keys.INSIDE_UNITS)

    DEFAULT_CSS = """
    InsideScreen { layout: vertical; }
    InsideScreen #inside-head { height: 1; background: $panel; padding: 0 1; }
    InsideScreen #inside-body { height: 1fr; }
    InsideScreen #inside-text { width: 1fr; height: 1fr; padding: 0 1; overflow-y: auto; }
    InsideScreen #inside-rank { width: 30; height: 1fr; border-left: solid $primary; padding: 0 1; }
    InsideScreen.-narrow #inside-rank { display: none; }
    """

    def __init__(self, trainer, evaluations_seen=lambda: 0, choice: InsideChoice | None = None) -> None:
        super().__init__()
        self.trainer = trainer
        self._evaluations_seen = evaluations_seen  # () -> count of evaluations the app has shown
        self.choice = choice if choice is not None else InsideChoice()  # the app's, written as keys change it
        self.cell = trainer.snapshot.config.cell  # lstm, gru or rnn
        self.quantities = quantities(self.cell)  # what this cell has to show
        if self.choice.quantity not in self.quantities:
            self.choice.quantity = default_quantity(self.cell)
        if self.choice.feature not in FEATURES:
            self.choice.feature = "position in word" if "\n" not in self._window_text() else "position in line"
        self.acts: Activations | None = None
        self.shown_step = -1
        self._seen = -1

    def _window_text(self) -> str:
        corpus = self.trainer.corpus
        return corpus.vocab.decode(corpus.val_ids[:WINDOW_CHARS])

    def compose(self) -> ComposeResult:
        yield Static(id="inside-head", markup=False)
        with Horizontal(id="inside-body"):
            yield Static(id="inside-text")
            with Vertical(id="inside-rank"):
                yield Static(id="inside-ranking", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Compute for the current weights, then follow the evaluations."""
        self._refresh_if_new(force=True)
        self.set_interval(POLL_S, self._refresh_if_new)

    def on_resize(self) -> None:
        """Reflow the coloured text to the new width."""
        self.set_class(self.size.width < 70, "-narrow")
        self._redraw()

    def _refresh_if_new(self, force: bool = False) -> None:
        seen = self._evaluations_seen()
        if force or seen != self._seen:
            self._seen = seen
            snapshot = self.trainer.snapshot  # an immutable copy published by the training thread
            self._analyse(snapshot, self.trainer.step_count)

    @work(thread=True, exclusive=True, group="inside")
    def _analyse(self, snapshot, step: int) -> None:
        corpus = self.trainer.corpus
        ids = corpus.val_ids[:WINDOW_CHARS]
        acts = activations(snapshot, ids, corpus.vocab.decode(ids))
        if not get_current_worker().is_cancelled:
            self.post_message(InsideComputed(acts, step, snapshot.config.cell))

    def on_inside_computed(self, message: InsideComputed) -> None:
        """New activations arrived from the worker: show them (a model with heads gets their view)."""
        if has_attention(message.cell):
            from .attention_screen import AttentionScreen

            self.app.switch_screen(AttentionScreen(self.trainer, self._evaluations_seen, self.choice))
            return
        self.acts, self.shown_step = message.acts, message.step
        if message.cell != self.cell:
            self.cell, self.quantities = message.cell, quantities(message.cell)
            self.choice.quantity = default_quantity(message.cell)
        self.choice.layer = min(self.choice.layer, self.acts.layers - 1)
        self.choice.unit = min(self.choice.unit, self.acts.hidden - 1)
        self._redraw()

    def ranking(self) -> list[UnitScore]:
        """The units of the current quantity that track the chosen feature best."""
        assert self.acts is not None
        return rank_units(self.acts, self.choice.quantity, feature(self.choice.feature, self.acts.text), top=8)

    def _redraw(self) -> None:
        if self.acts is None or not self.is_mounted:
            return
        acts = self.acts
        values = acts.unit(self.choice.quantity, self.choice.layer, self.choice.unit)
        lo, hi = value_range(self.choice.quantity, values)
        c = self.choice
        head = (
            f"{self.cell.upper()} step {self.shown_step:,} · layer {c.layer + 1}/{acts.layers}"
            f" · unit {c.unit + 1}/{acts.hidden} · {c.quantity} {float(values[-1]):+.2f} in [{lo:+.2f}, {hi:+.2f}]"
        )
        self.query_one("#inside-head", Static).update(head)
        text_widget = self.query_one("#inside-text", Static)
        width = max(10, text_widget.size.width - 2) if text_widget.size.width else 60
        text_widget.update(coloured_text(acts.text, values, self.choice.quantity, width))
        lines = [f"units tracking: {self.choice.feature}", f"({self.choice.quantity}, Pearson r)", ""]
        for s in self.ranking():
            mark = "▶" if (s.layer, s.unit) == (self.choice.layer, self.choice.unit) else " "
            lines.append(f"{mark} L{s.layer + 1} u{s.unit + 1:<4} r={s.r:+.2f}")
        lines += ["", "f feature · r jump to best", "q quantity · ←→ unit · ↑↓ layer"]
        self.query_one("#inside-ranking", Static).update("\n".join(lines))

    # ----------------------------------------------------------------- actions
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_unit(self, delta: int) -> None:
        if self.acts is not None:
            self.choice.unit = (self.choice.unit + delta) % self.acts.hidden
            self._redraw()

    def action_layer(self, delta: int) -> None:
        if self.acts is not None:
            self.choice.layer = (self.choice.layer + delta) % self.acts.layers
            self._redraw()

    def action_quantity(self) -> None:
        qs = self.quantities
        self.choice.quantity = qs[(qs.index(self.choice.quantity) + 1) % len(qs)]
        self._redraw()

    def action_feature(self) -> None:
        names = list(FEATURES)
        self.choice.feature = names[(names.index(self.choice.feature) + 1) % len(names)]
        self._redraw()

    def action_best(self) -> None:
        if self.acts is not None:
            best = self.ranking()[0]
            self.choice.layer, self.choice.unit = best.layer, best.unit
            self._redraw()
