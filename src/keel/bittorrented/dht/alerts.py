"""One reader of a libtorrent session's alerts, fanning them out to subscribers on the loop.

libtorrent reports everything (DHT replies, metadata, removals) as alerts in one queue per
session, and ``pop_alerts()`` empties it: two readers would steal each other's alerts. So each
session has exactly one :class:`AlertPump`; the fetcher and the crawler subscribe by alert type.

The pump blocks in ``wait_for_alert`` on a thread of its own (not the loop's default executor,
which a long-polling pump per session could starve), so the event loop never waits on
libtorrent, then calls the handlers on the loop thread. An alert object is
only valid until the next ``pop_alerts()``; handlers run before the pump pops again, so they may
read an alert but must not keep it (copy what they need: a ``torrent_handle`` is a copy).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libtorrent as lt

from keel.bittorrented.dht import metrics
from keel.core.logging import get_logger

__all__ = ["AlertPump"]

log = get_logger("keel.bittorrented.dht.alerts")

A = TypeVar("A", bound=lt.alert)


class AlertPump:
    """Reads ``session``'s alerts on a worker thread and calls subscribers on the event loop."""

    def __init__(self, session: lt.session, *, poll_ms: int = 100) -> None:
        self._session: lt.session | None = session
        # The longest a stop waits for the worker thread to come back from wait_for_alert.
        self._poll_ms = poll_ms
        self._handlers: defaultdict[type, list[Callable[[Any], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._stopping = False

    def subscribe(self, kind: type[A], handler: Callable[[A], None]) -> Callable[[], None]:
        """Call ``handler`` on the loop for every alert of ``kind`` (or a subclass of it).

        Returns a function that unsubscribes. A handler that raises is logged and skipped.
        """
        self._handlers[kind].append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(kind, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def start(self) -> None:
        """Start pumping on the running loop (idempotent); RuntimeError once stopped."""
        if self._session is None:
            raise RuntimeError("a stopped alert pump cannot start again")
        if self._task is None:
            self._stopping = False
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="libtorrent-alerts")
            self._task = asyncio.create_task(self._run(), name="libtorrent-alert-pump")

    async def stop(self) -> None:
        """Stop pumping and wait until the worker thread has left libtorrent (≤ ``poll_ms``)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        # Not task.cancel(): a cancelled await leaves the thread inside wait_for_alert, and
        # the session must not be destroyed under it.
        await task
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        # A stopped pump lets go of the session, so its owner holds the last reference.
        self._session = None

    def _wait_and_pop(self) -> list[lt.alert]:
        session = self._session
        if session is None:
            return []
        # Returns at once if alerts are queued; otherwise waits up to poll_ms for one.
        if not session.wait_for_alert(self._poll_ms):
            return []
        return session.pop_alerts()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            try:
                alerts = await loop.run_in_executor(self._executor, self._wait_and_pop)
            except Exception:
                # A pump that dies silently stalls every fetch and the crawler: log, go on.
                log.exception("alert_pump_failed")
                await asyncio.sleep(self._poll_ms / 1000)
                continue
            for alert in alerts:
                self._dispatch(alert)

    def _dispatch(self, alert: lt.alert) -> None:
        if isinstance(alert, lt.alerts_dropped_alert):
            metrics.ALERTS_DROPPED.inc()
            log.warning("libtorrent_alerts_dropped", message=alert.message())
        for kind in type(alert).__mro__:
            for handler in tuple(self._handlers.get(kind, ())):
                try:
                    handler(alert)
                except Exception:
                    log.exception("alert_handler_failed", alert=alert.what())
