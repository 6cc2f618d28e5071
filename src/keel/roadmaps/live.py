"""Wake-ups for the progress stream: a generation in this process nudges the streams waiting
on its roadmap at once; streams served by another process notice on their next poll of the row.
"""

from __future__ import annotations

import asyncio
import contextlib


class ProgressBus:
    """Per-roadmap events, created while someone listens and dropped when nobody does."""

    def __init__(self) -> None:
        self._events: dict[str, tuple[asyncio.Event, int]] = {}

    def publish(self, roadmap_id: str) -> None:
        entry = self._events.get(roadmap_id)
        if entry is not None:
            entry[0].set()

    async def wait(self, roadmap_id: str, timeout: float) -> None:  # noqa: ASYNC109 - a poll period, not a deadline
        """Return when ``roadmap_id`` changes in this process, or after ``timeout`` seconds."""
        event, listeners = self._events.get(roadmap_id, (asyncio.Event(), 0))
        self._events[roadmap_id] = (event, listeners + 1)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            event, listeners = self._events[roadmap_id]
            if listeners <= 1:
                del self._events[roadmap_id]
            else:
                self._events[roadmap_id] = (event, listeners - 1)
            event.clear()
