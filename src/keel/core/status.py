"""A product's status: its circuit breakers (from :data:`keel.core.resilience.BREAKERS`) and
its caches' providers, as JSON and as a small HTML page the product mounts.

    app.include_router(status.router(lambda: status.read(breakers="roadmaps", caches=[cache])))

serves ``GET /status`` (HTML, route ``<name>-status``) and ``GET /api/status`` (JSON). The
page answers 200 whatever it shows: readiness is ``/readyz``'s job, this says why things are
slow or degraded. It names no hosts or URLs, only labels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from keel.core import pages
from keel.core.cache import Cache, CacheStatus
from keel.core.resilience import BREAKERS, BreakerRegistry, BreakerSnapshot, CircuitState


@dataclass(frozen=True)
class Status:
    """``degraded`` when a breaker (a cache's too) is not closed or a cache answers from its
    fallback. ``breakers`` leaves out the caches' own, which their providers show."""

    overall: Literal["ok", "degraded"]
    breakers: tuple[BreakerSnapshot, ...]
    caches: tuple[CacheStatus, ...]


async def read(
    *, breakers: str, caches: Sequence[Cache] = (), registry: BreakerRegistry = BREAKERS
) -> Status:
    """The status of ``caches``, and the breakers whose name starts with ``breakers`` apart
    from the caches' own (shown with their cache)."""
    cache_status = tuple([await cache.status() for cache in caches])
    shown = {p.breaker.name for c in cache_status for p in c.providers}
    snapshots = tuple(s for s in registry.snapshot(breakers) if s.name not in shown)
    every = [*snapshots, *(p.breaker for c in cache_status for p in c.providers)]
    degraded = any(s.state is not CircuitState.CLOSED for s in every) or any(
        c.fallback_active for c in cache_status
    )
    return Status("degraded" if degraded else "ok", snapshots, cache_status)


def as_json(status: Status) -> dict[str, Any]:
    """The JSON body of ``/api/status``: the dataclasses' fields, rates rounded."""
    body = dataclasses.asdict(status)
    for breaker in _breaker_dicts(body):
        for field in ("failure_rate", "slow_call_rate"):
            breaker[field] = round(breaker[field], 4)
        if breaker["half_open_in_seconds"] is not None:
            breaker["half_open_in_seconds"] = round(breaker["half_open_in_seconds"], 3)
    return body


def _breaker_dicts(body: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(body["breakers"])
    for cache in body["caches"]:
        found += [provider["breaker"] for provider in cache["providers"]]
    return found


def router(read_status: Callable[[], Awaitable[Status]], *, name: str) -> APIRouter:
    """``GET /status`` (HTML, route ``<name>-status``) and ``GET /api/status`` (JSON)."""
    routes = APIRouter()

    @routes.get(
        "/status", name=f"{name}-status", response_class=HTMLResponse, include_in_schema=False
    )
    async def status_page(request: Request) -> HTMLResponse:
        status = await read_status()
        return pages.render(request, "status.html", {"name": name, "status": status})

    @routes.get("/api/status", name=f"{name}-status-json", tags=["status"])
    async def status_json() -> dict[str, Any]:
        """Circuit breakers (state, window counts, failure and slow-call rates against their
        thresholds, seconds until an open one admits probes) and cache providers (breaker,
        keys missed and not yet reconciled, whether this process answers from memory).
        ``overall`` is ``degraded`` while any of them is not healthy. Never cached."""
        return as_json(await read_status())

    return routes
