"""The command palette's entries for the app's less common actions.

The provider knows no app: it lists whatever the running app's `palette_commands()` returns, so
the app imports this module and nothing here imports the app (no import circle).
"""

from __future__ import annotations

from collections.abc import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

# (name shown, callback, help line)
PaletteCommand = tuple[str, Callable[[], object], str]


class AppCommands(Provider):
    """The app's own commands: what its `palette_commands()` method lists."""

    def _commands(self) -> list[PaletteCommand]:
        listing: Callable[[], list[PaletteCommand]] | None = getattr(self.app, "palette_commands", None)
        return listing() if listing is not None else []

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
