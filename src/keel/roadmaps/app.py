"""create_app(settings) -> the roadmaps Product: pages, API, lifespan, readiness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.types import Scope

from keel.core import apidocs, status
from keel.core.app import Product, RequestContextMiddleware, install_problem_handlers
from keel.core.clock import Clock
from keel.core.csp import SecurityHeadersMiddleware
from keel.core.identity import Accounts
from keel.core.identity import web as identity_web
from keel.core.loadshed import LoadShedder, LoadShedMiddleware
from keel.core.openapi import document_problems
from keel.core.ratelimit import RateLimitStore
from keel.core.ratelimit_http import RateLimitHeaders
from keel.roadmaps import bootstrap
from keel.roadmaps.api import accounts as accounts_api
from keel.roadmaps.api import billing, deps
from keel.roadmaps.api import roadmaps as roadmaps_api
from keel.roadmaps.bootstrap import Roadmaps
from keel.roadmaps.settings import RoadmapsSettings
from keel.roadmaps.web import accounts as accounts_pages
from keel.roadmaps.web import pages
from keel.roadmaps.web.render import HERE as WEB


def create_app(
    settings: RoadmapsSettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    rate_limits: RateLimitStore | None = None,
) -> Product:
    """Build roadmaps. Nothing touches the database until the lifespan is entered."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI | None = None) -> AsyncIterator[None]:
        wired = await bootstrap.open_roadmaps(
            settings, data_dir=data_dir, clock=clock, shedder=shedder
        )
        app.state.roadmaps = wired
        app.state.rate_limits = rate_limits or RateLimitStore()
        shedder.start()
        stop = asyncio.Event()
        worker = (
            asyncio.create_task(wired.build_worker().run(stop)) if settings.run_workers else None
        )
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            await shedder.stop()
            await wired.close()

    app = FastAPI(
        title="Keel roadmaps",
        version="1.0",
        description="Personalised learning roadmaps: generate from a goal, a syllabus URL or "
        "a PDF, track progress, publish and discover.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    # One shedder for the app's life; the wiring (rebuilt per lifespan) reads the same one.
    shedder = LoadShedder("roadmaps")
    identity_web.install(
        app,
        accounts=_accounts,
        cookies=identity_web.CookiePolicy("roadmaps_session", secure=settings.secure_cookies),
        app_name="roadmaps",
        login_route="roadmaps-login",
    )
    app.add_middleware(RateLimitHeaders)
    # Behind HTTPS (secure cookies) browsers are also told to stay on HTTPS for a year.
    app.add_middleware(
        SecurityHeadersMiddleware, hsts_max_age=365 * 86400 if settings.secure_cookies else 0
    )
    app.add_middleware(RequestContextMiddleware, app_name="roadmaps")
    app.add_middleware(LoadShedMiddleware, shedder=shedder)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="roadmaps-static")
    app.include_router(accounts_api.router)
    app.include_router(accounts_pages.router)
    app.include_router(billing.router, prefix="/api")
    app.include_router(
        roadmaps_api.router, prefix="/api", dependencies=[Depends(deps.rate_limited)]
    )
    app.include_router(pages.router)

    async def read_status() -> status.Status:
        wired: Roadmaps | None = getattr(app.state, "roadmaps", None)
        return await status.read(breakers="roadmaps", caches=[wired.cache] if wired else [])

    app.include_router(status.router(read_status, name="roadmaps"))
    document_problems(app)
    apidocs.install(app)

    async def ready() -> bool:
        wired: Roadmaps | None = getattr(app.state, "roadmaps", None)
        if wired is None:
            return False
        async with wired.database.reading() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    return Product(name="roadmaps", app=app, lifespan=lambda: lifespan(None), ready=ready)


def _accounts(scope: Scope) -> Accounts | None:
    wired: Roadmaps | None = getattr(scope["app"].state, "roadmaps", None)
    return wired.accounts if wired is not None else None
