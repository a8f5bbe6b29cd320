"""The command palette's training commands (the less common actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from .app import LstmApp


class TrainingCommands(Provider):
    """Save, save as, reset, learning rate, comparison text, pause, generate, help."""

    def _commands(self) -> list[tuple[str, Callable[[], object], str]]:
        app: LstmApp = self.app  # type: ignore[assignment]
        return [
            ("Save now", app.action_save, "write the model to its checkpoint"),
            ("Save as…", app.action_save_as, "write the model to another file"),
            ("Change learning rate…", app.action_change_lr, "takes effect at the next step"),
            ("Toggle comparison text", app.action_toggle_comparison, "validation or training text"),
            ("Pause / resume training", app.action_toggle_pause, "f2"),
            ("Generate", app.action_generate, "ctrl+g: continue the seed text"),
            ("Reset the model", app.action_reset_model, "start again from fresh random weights"),
            ("Look inside the LSTM", app.action_inside, "f4: colour the text by a unit's gates, cell or state"),
            ("Help", app.action_help, "f1: panels and keys"),
        ]

    async def discover(self) -> Hits:
        """All commands, shown when the palette opens."""
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Commands matching what was typed."""
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
