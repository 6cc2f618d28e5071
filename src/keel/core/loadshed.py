"""Emergency mode: notice overload and shed load before every request gets slow.

Overload is read from two signals: requests in flight in this process, and event-loop lag
(how late a periodic timer fires: the loop is saturated when callbacks queue behind each
other). Past the soft limits the process is in *emergency mode*: pages still answer, but
clients are told to back off (long-polling and SSE clients get a wider ``retry``). Past the
hard limit of requests in flight, new requests that may be shed are refused at once with 503
and ``Retry-After``: a fast refusal keeps the requests already admitted fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.app import problem_body
from keel.core.logging import get_logger

log = get_logger("keel.loadshed")

SHED = Counter("keel_requests_shed_total", "Requests refused in emergency mode", ["app"])
EMERGENCY = Gauge("keel_emergency_mode", "1 while the process is in emergency mode", ["app"])
LOOP_LAG = Gauge("keel_event_loop_lag_seconds", "Event-loop lag, last sample", ["app"])


@dataclass(frozen=True)
class Limits:
    soft_inflight: int = 200  # emergency mode from here
    hard_inflight: int = 400  # shed from here
    soft_lag_s: float = 0.25  # emergency mode when the loop is this late
    retry_after_s: int = 5
    sample_s: float = 0.1
    # Lag is the mean over this window: a loop saturated for a while, not one late timer (a
    # slow first request, a GC pause), turns emergency mode on, and it does not flicker.
    lag_window_s: float = 2.0


class LoadShedder:
    """Counts requests in flight and samples loop lag; says when to shed or back off."""

    def __init__(self, app_name: str, limits: Limits | None = None) -> None:
        self.app_name = app_name
        self.limits = limits or Limits()
        self.inflight = 0
        self.lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def emergency(self) -> bool:
        limits = self.limits
        return self.inflight >= limits.soft_inflight or self.lag_s >= limits.soft_lag_s

    def should_shed(self) -> bool:
        return self.inflight >= self.limits.hard_inflight

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._sample())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _sample(self) -> None:
        period = self.limits.sample_s
        samples: deque[tuple[float, float]] = deque()
        while True:
            started = time.monotonic()
            await asyncio.sleep(period)
            now = time.monotonic()
            samples.append((now, max(0.0, now - started - period)))
            while samples[0][0] < now - self.limits.lag_window_s:
                samples.popleft()
            self.lag_s = sum(lag for _, lag in samples) / len(samples)
            LOOP_LAG.labels(self.app_name).set(self.lag_s)
            EMERGENCY.labels(self.app_name).set(int(self.emergency))


class LoadShedMiddleware:
    """Refuses HTTP requests with 503 problem+json and ``Retry-After`` while the shedder says
    so, except for paths in ``exempt`` (health probes, the status page)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        shedder: LoadShedder,
        exempt: Sequence[str] = ("/healthz", "/readyz", "/metrics", "/status", "/api/status"),
    ) -> None:
        self.app = app
        self.shedder = shedder
        self.exempt = tuple(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shedder = self.shedder
        path = scope.get("path", "")
        if shedder.should_shed() and not path.endswith(self.exempt):
            SHED.labels(shedder.app_name).inc()
            retry = shedder.limits.retry_after_s
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"retry-after", str(retry).encode()),
                    ],
                }
            )
            detail = f"The server is overloaded; retry after {retry} seconds."
            body = problem_body(503, "overloaded", "Overloaded", detail, path, None)
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
            return
        shedder.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            shedder.inflight -= 1
