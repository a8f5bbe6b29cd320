"""The help screen: what each panel shows and every key."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP = """\
lstm-tui trains a character-level LSTM on your text and shows it learning.

PANELS
  loss graph   training loss (thin: raw, bold: smoothed) and validation loss
               (diamonds) per step, in nats per character; the flat line is
               ln V, the loss of guessing uniformly among V characters.
  stats        loss in nats, bits/char and perplexity; validation loss and
               accuracy; speed; learning rate; time; progress when a step
               budget is set.
  truth vs     a window of the evaluation text ("truth") with the model's
  prediction   guess for each character under it ("model"): green = right,
               red and underlined = wrong; brighter = more probability on the
               true character. Refreshed at every evaluation.
  generate     type a seed, press enter or ctrl+g: the model continues it,
               sampling from a snapshot of the weights as training goes on.
               Temperature 0 is greedy (always the likeliest character),
               1 samples the model as is, 2 is wild.
  next char    the likeliest next characters after the seed, with their
               probabilities at the current temperature.

KEYS (they work while typing in the seed box)
  ctrl+q     save the model and quit (the path is printed on exit)
  f2         pause / resume training
  ctrl+s     save the model now
  ctrl+g     generate from the seed   (enter in the seed box too)
  escape     stop generating
  f7 / f8    temperature down / up by 0.05 (or type it; up/down in its box)
  f3         jump to the seed box
  tab        next field (seed, temperature, generated text)
  ctrl+p     command palette: save as, reset the model, change the
             learning rate, show training or validation text, ...
  f1         this help (escape closes it)
"""


class HelpScreen(ModalScreen[None]):
    """A scrollable page of help over the app."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close help")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "help"
            body.border_subtitle = "escape closes"
            yield Static(HELP, markup=False)
