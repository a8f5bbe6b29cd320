"""The inside view of a GPT: which earlier characters one attention head attends to.

The text is the one in the generation panel (the seed and what the model wrote from it), else the
start of the evaluation text. At the chosen character (the latest, or one picked with left / right)
the characters the model read for it (its context, as generation reads it) are shaded by the
chosen head's weight on each, relative to the heaviest; beside them the heaviest few with their
weights. Without colour the shades are characters (` ░▒▓█`) under the text. The keys are
tui.apps.keys.INSIDE_HEADS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from core.inside import Attention, attention, has_attention

from ..apps import keys
from ..plain.format import char_label
from ..plain.render import colour, foreground_for, relative_weights, shade, visible
from .inside_screen import POLL_S, WINDOW_CHARS, InsideChoice, InsideView, colourless

TOP = 12  # the heaviest characters listed beside the text
BAR = 8  # cells of the weight bar in that list


@dataclass
class AttentionComputed(Message):
    """Every head's attention over the text, computed off the UI thread for one snapshot."""

    att: Attention | None  # None: the model has no heads (a watched file now holds another model)
    step: int
    cell: str
    what: str  # which text: "the generated text", "the seed", "the evaluation text"


class AttentionScreen(InsideView):
    """What one attention head of a GPT attends to at one character, refreshed at every evaluation
    and whenever the generation panel's text changes."""

    BINDINGS = keys.bindings(keys.INSIDE_HEADS)

    DEFAULT_CSS = """
    AttentionScreen { layout: vertical; }
    AttentionScreen #attn-head { height: 2; background: $panel; padding: 0 1; }
    AttentionScreen #attn-body { height: 1fr; }
    AttentionScreen #attn-text { width: 1fr; height: 1fr; padding: 0 1; overflow-y: auto; }
    AttentionScreen #attn-side { width: 31; height: 1fr; border-left: solid $primary; padding: 0 1; }
    AttentionScreen.-narrow #attn-side { display: none; }
    """

    def __init__(
        self,
        trainer,
        evaluations_seen: Callable[[], int] = lambda: 0,
        choice: InsideChoice | None = None,
        recent: Callable[[], str] = lambda: "",
    ) -> None:
        super().__init__()
        self.trainer = trainer  # .snapshot, .corpus, .step_count (the training app's trainer, a saved model's source)
        self._evaluations_seen = evaluations_seen
        self._recent = recent  # () -> the generation panel's text
        self.choice = choice if choice is not None else InsideChoice()
        self.cell = trainer.snapshot.config.cell
        self.att: Attention | None = None
        self.what = ""
        self.shown_step = -1
        self._seen: tuple[int, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="attn-head", markup=False)
        with Horizontal(id="attn-body"):
            yield Static(id="attn-text")
            with Vertical(id="attn-side"):
                yield Static(id="attn-top", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Compute for the current weights and text, then follow both."""
        self._refresh_if_new()
        self.set_interval(POLL_S, self._refresh_if_new)

    def on_resize(self) -> None:
        """Reflow the shaded text to the new width."""
        self.set_class(self.size.width < 60, "-narrow")
        self._redraw()

    # ------------------------------------------------------------ computing
    def _text(self) -> tuple[np.ndarray, str, str]:
        """The ids to read, their characters and which text they are: the generation panel's text
        (its last WINDOW_CHARS characters the model knows), else the start of the evaluation text."""
        vocab = self.trainer.corpus.vocab
        recent = self._recent()
        if recent:
            ids, _ = vocab.encode_known(recent[-WINDOW_CHARS:])
            if len(ids):
                return ids, vocab.decode(ids), "the generation panel's text"
        ids = self.trainer.corpus.val_ids[:WINDOW_CHARS]
        return ids, vocab.decode(ids), "the evaluation text"

    def _refresh_if_new(self) -> None:
        seen = (self._evaluations_seen(), self._recent())
        if seen != self._seen:
            self._seen = seen
            self._analyse(self.trainer.snapshot, self.trainer.step_count, *self._text())

    @work(thread=True, exclusive=True, group="inside")
    def _analyse(self, snapshot, step: int, ids: np.ndarray, text: str, what: str) -> None:
        cell = snapshot.config.cell
        att = attention(snapshot, ids, text) if has_attention(cell) and len(ids) else None
        if not get_current_worker().is_cancelled:
            self.post_message(AttentionComputed(att, step, cell, what))

    def on_attention_computed(self, message: AttentionComputed) -> None:
        """New weights arrived from the worker: show them (a model without heads gets the unit view)."""
        if message.att is None:
            if not has_attention(message.cell):
                from .inside_screen import InsideScreen

                self.app.switch_screen(InsideScreen(self.trainer, self._evaluations_seen, self.choice))
            return
        latest = self.att is None or self.choice.position is None
        self.att, self.shown_step, self.cell, self.what = message.att, message.step, message.cell, message.what
        c = self.choice
        c.layer = min(c.layer, self.att.layers - 1)
        c.head = min(c.head, self.att.heads - 1)
        if not latest and c.position is not None:
            c.position = min(c.position, len(self.att) - 1)
        self._redraw()

    @property
    def position(self) -> int:
        """The character shown: the chosen one, else the latest."""
        assert self.att is not None
        p = self.choice.position
        return len(self.att) - 1 if p is None else min(p, len(self.att) - 1)

    # ------------------------------------------------------------ drawing
    def _redraw(self) -> None:
        if self.att is None or not self.is_mounted:
            return
        att, c, p = self.att, self.choice, self.position
        cfg = self.trainer.snapshot.config
        start = att.context(p)
        weights = att.row(c.layer, c.head, p)  # (p - start + 1,)
        self.query_one("#attn-head", Static).update(
            f"{self.cell.upper()} · {att.layers} layers × {att.heads} heads · width {cfg.hidden} · "
            f"block {cfg.block} · step {self.shown_step:,}\n"
            f"layer {c.layer + 1}/{att.layers} · head {c.head + 1}/{att.heads} · char {p + 1:,}/{len(att):,} "
            f"{char_label(att.text[p])} · reads {p - start + 1}" + ("" if c.position is None else " · end: latest")
        )
        box = self.query_one("#attn-text", Static)
        width = max(10, box.size.width - 2) if box.size.width else 40
        box.update(shaded(att.text[start : p + 1], weights, width, self.what))
        lines = [f"heaviest of {len(weights)} (weight)", ""]
        for i, w in att.top(c.layer, c.head, p, TOP):
            n = round(BAR * w / max(1e-12, float(weights.max())))
            back = "itself" if i == p else f"-{p - i}"
            lines.append(f"{w:4.0%} {'█' * n:<{BAR}} {char_label(att.text[i]):<7} {back:>6}")
        lines += ["", "[ ] head · ↑↓ layer", "←→ character · end latest"]
        self.query_one("#attn-top", Static).update("\n".join(lines))

    # ------------------------------------------------------------ actions
    def action_close(self) -> None:
        self.app.pop_screen()

    def action_head(self, delta: int) -> None:
        if self.att is not None:
            self.choice.head = (self.choice.head + delta) % self.att.heads
            self._redraw()

    def action_layer(self, delta: int) -> None:
        if self.att is not None:
            self.choice.layer = (self.choice.layer + delta) % self.att.layers
            self._redraw()

    def action_position(self, delta: int) -> None:
        """Move to the character before or after (past the last: follow the latest again)."""
        if self.att is not None:
            p = self.position + delta
            self.choice.position = None if p >= len(self.att) - 1 else max(0, p)
            self._redraw()

    def action_latest(self) -> None:
        self.choice.position = None
        self._redraw()


def shaded(context: str, weights: np.ndarray, width: int, what: str = "") -> Text:
    """The characters a head reads, each shaded by its weight relative to the heaviest: a
    background as bright as the weight, or without colour a line of shade characters under each
    line of text. The last character (the one attending) is underlined."""
    frac = relative_weights(weights)
    out = Text(no_wrap=True, overflow="crop")
    if what:
        out.append(f"{what}, the characters read for the last:\n", "dim")
    last = len(context) - 1
    rows: list[tuple[str, str]] = []
    chars, shades = [], []
    for t, (ch, f) in enumerate(zip(context, frac, strict=True)):
        chars.append(visible(ch))
        shades.append(shade(float(f)))
        if ch == "\n" or len(chars) >= width or t == last:
            rows.append(("".join(chars), "".join(shades)))
            chars, shades = [], []
    if colourless():
        for i, (line, marks) in enumerate(rows):
            out.append(line[:-1] if i == len(rows) - 1 else line)
            if i == len(rows) - 1:
                out.append(line[-1], "bold underline")
            out.append("\n" + marks + "\n")
        return out
    t = 0
    for line, _ in rows:
        for ch in line:
            bg = colour(float(frac[t]), False)
            fg = foreground_for(bg)
            style = f"rgb({fg[0]},{fg[1]},{fg[2]}) on rgb({bg[0]},{bg[1]},{bg[2]})"
            out.append(ch, style + (" bold underline" if t == last else ""))
            t += 1
        out.append("\n")
    return out
