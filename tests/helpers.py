"""Shared by the interface tests: waiting on a condition instead of sleeping."""

from __future__ import annotations

POLLS = 3000  # generous: each poll lets the app process its messages and waits 10 ms


async def wait_for(pilot, condition, what: str, polls: int = POLLS) -> None:
    """Let the app run until `condition()` holds; fail naming `what` if it never does."""
    for _ in range(polls):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")
