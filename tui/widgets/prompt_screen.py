"""A one-line question in a small modal box (save as…, learning rate…)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value; enter answers, escape cancels (answers None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box") as box:
            box.border_title = self.question
            box.border_subtitle = "enter: ok · escape: cancel"
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    @on(Input.Submitted)
    def _answer(self, event: Input.Submitted) -> None:
        """Enter: answer with the typed value."""
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        """Escape: no answer."""
        self.dismiss(None)
