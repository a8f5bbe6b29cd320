"""`lstm-tui play`: the generation screen on a saved model, with no training.

The generate panel and the next-character view fill the screen (PlayApp's generation, the same as
every app's: seed, temperature, top-k, top-p), with the inside view (f4) and the help (f1). The
model is the checkpoint's, read once before the screen opens; nothing writes a file, so quitting
just quits. The inside view reads the model's training text when it was found, else text the
model writes itself (as the watcher does).
"""

from __future__ import annotations

import math
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer

from core import CharModel, Checkpoint, Vocab
from core.corpus import Corpus
from core.sampling import TEMPERATURE

from ..plain import follow
from ..widgets.generate_panel import GeneratePanel
from ..widgets.inside_screen import InsideChoice, InsideView, inside_view
from ..widgets.next_chars import NextCharView
from ..widgets.status_line import AGE, Part, StatusLine, describe_corpus, describe_model
from . import keys
from .base import GENERATE_CHARS, NEXT_CHAR_HELP, SAMPLING_HELP, PlayApp, default_seed
from .messages import Sampling
from .palette import PaletteCommand
from .watch import WatchedModel

HELP = (
    """\
lstm-tui play opens a saved model without training it: type a seed and the
model continues it. Nothing is written: the file stays as it is.

HEADER
  the file, the step it was saved at and its latest validation loss; the
  text it was trained on; the model (cell, layers × units, parameters).

PANELS
  generate    type a seed, press enter or ctrl+g: the model continues it.
"""
    + SAMPLING_HELP
    + NEXT_CHAR_HELP
    + """
Under the seed, before the first generation: which model this is, and
which text the inside view (f4) reads: its training text when it was found
(beside the checkpoint, where the run read it, or --corpus), else text the
model writes itself.
"""
)


class SavedModelApp(PlayApp):
    """Play with a saved model: generation and the next-character table on its weights."""

    CSS_PATH = ["train.tcss", "play.tcss"]  # the panels' look is the training screen's
    TITLE = "lstm-tui play"
    KEYS = keys.PLAY
    HELP = HELP
    NEXT_CHARS = 40  # the next-character view has the screen's height

    def __init__(
        self,
        path: str | Path,
        checkpoint: Checkpoint,
        text: Corpus | None = None,
        text_note: str = "",
        prime: str | None = None,
        sampling: Sampling | None = None,
        length: int = GENERATE_CHARS,
    ) -> None:
        self.path = Path(path)
        self.checkpoint = checkpoint
        self.has_text = text is not None
        corpus = text if text is not None else follow.generated_corpus(checkpoint)
        self.source = WatchedModel(corpus, checkpoint.model, int(checkpoint.meta.get("step", 0)))
        self.prime = prime
        self.inside = InsideChoice()  # the inside view's unit, layer and quantity, kept between visits
        super().__init__(length, self._notes(text_note), sampling)

    def _notes(self, text_note: str) -> list[str]:
        """Which model this is, and what the inside view reads (under the seed until a generation)."""
        ck, model = self.checkpoint, self.checkpoint.model
        cfg = model.config
        info = ck.meta.get("corpus") or {}
        line = f"{self.path.name}: {model.title} {cfg.layers}×{cfg.hidden}, step {self.source.step_count:,}"
        if info.get("name"):
            line += f", trained on {info['name']}"
        latest = _latest_val(ck)
        if latest is not None:
            cold = f" cold {latest[2]:.3f}" if latest[2] is not None else ""
            line += f"; val {latest[1]:.3f}{cold} @{latest[0]:,}"
        if self.has_text:
            reads = f"the inside view (f4) reads {text_note}, the text it was trained on"
        else:
            reads = f"the inside view (f4) reads text the model wrote: {text_note}"
        return [line, reads]

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        ck = self.checkpoint
        info = ck.meta.get("corpus") or {}
        corpus = describe_corpus(info.get("name") or "?", int(info.get("size") or 0), ck.vocab.size)
        yield StatusLine(corpus, describe_model(ck.model.config), id="status")
        seed = self.prime if self.prime is not None else default_seed(self.source.corpus.text(0, 200))
        with Horizontal(id="bottom"):
            yield GeneratePanel(seed, ck.vocab.size, self.sampling, id="generate")
            yield NextCharView(id="next")
        yield Footer(compact=True)

    def start(self) -> None:
        """Say which model is on screen, and show the next characters after the seed."""
        status = self.query_one(StatusLine)
        status.state = "saved"
        detail = [Part(self.path.name), Part(f"step {self.source.step_count:,}")]
        latest = _latest_val(self.checkpoint)
        if latest is not None:
            detail.append(Part(f"val {latest[1]:.3f}", AGE))  # kept longer than the name lstm-tui
        status.set_detail(detail)
        self._refresh_next_chars(force=True)

    # ---------------------------------------------------------------- actions
    def palette_commands(self) -> list[PaletteCommand]:
        """The command palette's entries for this screen (see tui.apps.palette)."""
        return [
            ("Generate", self.action_generate, "ctrl+g: continue the seed text"),
            *self.sampling_commands(),
            ("Look inside the model", self.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", self.action_help, "f1: the panels and keys"),
        ]

    async def action_quit(self) -> None:
        """Close at once: nothing to save, the file is only read."""
        self.exit()

    def action_inside(self) -> None:
        """Open the inside view on the saved weights."""
        if not isinstance(self.screen, InsideView):
            self.push_screen(inside_view(self.source, lambda: 0, self.inside, self.recent_text))

    # ----------------------------------------------------- generation (tui.apps.base)
    def play_model(self) -> CharModel:
        """The checkpoint's weights: read once, never written."""
        return self.checkpoint.model

    def play_vocab(self) -> Vocab:
        return self.checkpoint.vocab


def _latest_val(ck: Checkpoint) -> tuple[int, float, float | None] | None:
    """(step, one-pass loss, cold-start loss or None) of the run's latest validation score, from the
    checkpoint's history."""
    steps, losses = ck.arrays.get("history/val_step"), ck.arrays.get("history/val_loss")
    if steps is None or losses is None or not len(steps) or len(steps) != len(losses):
        return None
    cold = ck.arrays.get("history/val_cold_loss")
    last_cold = float(cold[-1]) if cold is not None and len(cold) == len(losses) else math.nan
    return int(steps[-1]), float(losses[-1]), last_cold if math.isfinite(last_cold) else None


def make_app(
    path: str | Path,
    checkpoint: Checkpoint,
    text: Corpus | None = None,
    text_note: str = "",
    *,
    prime: str | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    length: int = GENERATE_CHARS,
) -> SavedModelApp:
    """The screen on a loaded checkpoint (and its training text, when found: `text_note` says where
    from, or why not), starting at these settings."""
    sampling = Sampling(TEMPERATURE if temperature is None else temperature, top_k, top_p)
    return SavedModelApp(path, checkpoint, text, text_note, prime, sampling, length)
