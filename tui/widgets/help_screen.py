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
  loss graph  training loss per step in nats per character: raw (thin
              braille) and smoothed (blocks); validation loss (diamonds);
              the dashed line is ln V, the loss of a uniform guess among
              the V characters. Below it, the model has learned something.
  stats       loss in nats, bits/char and perplexity; validation loss and
              accuracy; speed; learning rate; time; progress and ETA when
              a step budget is set.
  truth vs    a window of the evaluation text ("truth") with the model's
  prediction  guess for each next character under it ("model"): green is
              right, red and underlined is wrong; the brighter, the more
              probability the model gave the true character.
  generate    type a seed, press enter or ctrl+g: the model continues it,
              sampling from a snapshot of the weights while training goes
              on. Temperature 0 is greedy (the likeliest character every
              time), 1 samples the model as it is, 2 is wild.
  next char   the likeliest next characters after the seed, with their
              probabilities at the current temperature.

KEYS (all work while you type in the seed box)
  ctrl+q      save the model and quit (the path is printed on exit);
              ctrl+c does the same
  f2          pause / resume training
  ctrl+s      save the model now
  ctrl+g      generate from the seed (enter in the seed box too)
  escape      stop generating
  f7 / f8     temperature down / up by 0.05; or type a value in its box,
              where up / down also step it
  f3          back to the seed box, its text selected: typing replaces it
  f4          look inside: the text coloured by one unit's gate, cell or
              hidden value; arrows pick unit and layer, q the quantity,
              f a text feature to rank units by, r the best unit
  tab         next field: seed, temperature, generated text
  ctrl+p      command palette: save as, reset the model, change the
              learning rate, training or validation text, ...
  f1          this help (escape closes it)
"""


class HelpScreen(ModalScreen[None]):
    """A scrollable page of help over the app."""

    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close help")]

    def __init__(self, text: str = HELP) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "help"
            body.border_subtitle = "escape closes"
            yield Static(self.text, markup=False)
