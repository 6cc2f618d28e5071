"""create_app(settings) -> the bittorrented Product: its FastAPI app, lifespan and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text

from keel.bittorrented import bootstrap, models, workers
from keel.bittorrented.api import feeds as feed_routes
from keel.bittorrented.api import search as search_routes
from keel.bittorrented.api import torrents as torrent_routes
from keel.bittorrented.api import torznab as torznab_routes
from keel.bittorrented.dht import runtime as peers
from keel.bittorrented.indexer import Indexer, MetadataSource
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.web import search as search_page
from keel.core import apidocs, db
from keel.core.app import Product, RequestContextMiddleware, install_problem_handlers
from keel.core.clock import Clock
from keel.core.openapi import document_problems
from keel.core.pages import Link
from keel.core.ratelimit import RateLimitStore, open_limiter
from keel.core.ratelimit_http import RateLimitHeaders


def create_app(
    settings: BittorrentedSettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    metadata: MetadataSource | None = None,
    rate_limits: RateLimitStore | None = None,
) -> Product:
    """Build bittorrented. Nothing touches the database until the lifespan is entered."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI | None = None) -> AsyncIterator[None]:
        # The session opens on the first magnet (or now, to crawl), never just by starting.
        swarm = peers.swarm_for(settings)
        index = await bootstrap.open_indexer(
            settings, data_dir=data_dir, clock=clock, metadata=metadata or swarm
        )
        app.state.indexer = index
        app.state.limiter = limiter = open_limiter(
            rate_limits or RateLimitStore(),
            namespace="bittorrented",
            window_seconds=settings.rate_limit_window_seconds,
            table=models.rate_limits,
            sessions=db.session_factory(index.engine),
            clock=index.clock,
        )
        try:
            if settings.run_workers:
                async with workers.running(index, swarm):
                    yield
            else:
                yield
        finally:
            await swarm.aclose()
            await limiter.aclose()
            await index.engine.dispose()

    app = FastAPI(
        title="Keel bittorrented",
        version="1.0",
        description="Torrent metadata index: exact search, ingestion, Torznab.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestContextMiddleware, app_name="bittorrented")
    for router in (search_routes.router, torrent_routes.router):
        app.include_router(router, prefix="/api")
    app.include_router(torznab_routes.router)
    app.include_router(feed_routes.router)
    app.include_router(search_page.router)
    document_problems(app)
    apidocs.install(app)

    async def ready() -> bool:
        index: Indexer | None = getattr(app.state, "indexer", None)
        if index is None:
            return False
        async with db.reading(index.engine) as connection:
            await connection.execute(text("SELECT 1"))
        return True

    return Product(
        name="bittorrented",
        app=app,
        lifespan=lambda: lifespan(None),
        ready=ready,
        links=(Link("Search page", "/", "search the index in the browser"),),
    )
