"""The keys, written once (tui.apps.keys): each app's bindings, its help screen's KEYS section and
the README's "Keys" table agree."""

from __future__ import annotations

import pytest
from helpers import ROOT, tiny_trainer, wait_for
from textual.widgets import Static

from tui.apps.keys import keys_help
from tui.apps.play import SavedModelApp
from tui.apps.race import RaceApp
from tui.apps.train import LstmApp, make_app
from tui.apps.watch import WatchApp
from tui.widgets.help_screen import HelpScreen

APPS = (LstmApp, RaceApp, WatchApp, SavedModelApp)
# Keys the README lists that no app binds: Textual's own (tab, the command palette's ctrl+p) and
# enter, which the seed box's Input reports as a submission.
NOT_BOUND = {"enter", "tab", "ctrl+p"}


def readme_keys() -> list[str]:
    """The first column of the one markdown table under the README's heading "Keys"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.count("\n## Keys\n") == 1
    section = readme.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    head, rule, *body = rows
    assert head.replace(" ", "").startswith("|key|") and set(rule) <= set("|-: ")
    return [row.split("|")[1].strip() for row in body]


def test_the_readme_table_lists_every_key_the_apps_bind_and_no_other():
    listed = readme_keys()
    assert len(listed) == len(set(listed)), "one row per key"
    bound = {b.key for app in APPS for b in app.BINDINGS}
    assert set(listed) - NOT_BOUND == bound
    assert NOT_BOUND <= set(listed)


@pytest.mark.parametrize("app", APPS, ids=lambda a: a.__name__)
def test_every_binding_runs_an_action_the_app_has_and_is_in_its_help(app):
    text = keys_help(app.KEYS)
    for binding in app.BINDINGS:
        action = binding.action.split("(")[0]
        assert callable(getattr(app, f"action_{action}", None)), f"{binding.key}: no action_{action}"
        assert f"\n  {binding.key} " in text, f"{binding.key} missing from the help"
    shown = [b.key for b in app.BINDINGS if b.show]
    assert shown and len(shown) == len({(b.key, b.action) for b in app.BINDINGS if b.show})


async def test_the_help_screen_shows_the_apps_keys():
    app = make_app(tiny_trainer(steps=5))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state == "done", "the step budget")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help")
        text = str(app.screen.query_one(Static).render())
        assert "PANELS" in text and keys_help(LstmApp.KEYS) in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
