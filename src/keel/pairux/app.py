"""create_app(settings) -> the pairux Product: rooms API, signaling socket, lifespan, readiness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from keel.core import apidocs, db
from keel.core.app import Product, RequestContextMiddleware, install_problem_handlers
from keel.core.clock import Clock
from keel.core.openapi import document_problems
from keel.core.ratelimit import RateLimitStore, open_limiter
from keel.core.ratelimit_http import RateLimitHeaders
from keel.pairux import bootstrap, models
from keel.pairux.api import rooms as room_routes
from keel.pairux.api import ws as ws_routes
from keel.pairux.bootstrap import Pairux
from keel.pairux.joins import JoinGuard
from keel.pairux.settings import PairuxSettings
from keel.pairux.web import viewer


def create_app(
    settings: PairuxSettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    rate_limits: RateLimitStore | None = None,
) -> Product:
    """Build pairux. Nothing touches the database until the lifespan is entered."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI | None = None) -> AsyncIterator[None]:
        wired = await bootstrap.open_pairux(settings, data_dir=data_dir, clock=clock)
        app.state.pairux = wired
        app.state.limiter = limiter = open_limiter(
            rate_limits or RateLimitStore(),
            namespace="pairux",
            window_seconds=settings.rate_limit_window_seconds,
            table=models.rate_limits,
            sessions=db.session_factory(wired.engine),
            clock=wired.clock,
        )
        app.state.join_guard = JoinGuard(
            limiter,
            per_client=settings.join_failures_per_ip,
            global_limit=settings.join_failures_global,
        )
        stop = asyncio.Event()
        sweeper = asyncio.create_task(wired.hub.run(stop))
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            wired.hub.close_all()
            await limiter.aclose()
            await wired.engine.dispose()

    app = FastAPI(
        title="Keel pairux",
        version="1.0",
        description="Screen sharing with remote control: rooms, join codes, WebSocket "
        "signaling, TURN credentials.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestContextMiddleware, app_name="pairux")
    app.include_router(room_routes.router, prefix="/api")
    app.include_router(ws_routes.router)
    viewer.install(app)
    document_problems(app)
    apidocs.install(app)

    async def ready() -> bool:
        wired: Pairux | None = getattr(app.state, "pairux", None)
        if wired is None:
            return False
        async with db.reading(wired.engine) as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def detail() -> dict[str, Any]:
        wired: Pairux = app.state.pairux
        hub = wired.hub
        return {
            "rooms_loaded": len(hub.rooms),
            "connections": sum(len(hub.connected(room_id)) for room_id in hub.rooms),
            "turn": bool(settings.turn_host),
            "sfu": settings.livekit_enabled,
        }

    return Product(
        name="pairux", app=app, lifespan=lambda: lifespan(None), ready=ready, detail=detail
    )
