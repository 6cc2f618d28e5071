"""create_app(settings) -> the coinpay Product: its FastAPI app, lifespan and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from keel.coinpay import bootstrap, rates
from keel.coinpay.addresses import IndexAllocator
from keel.coinpay.api import businesses as business_routes
from keel.coinpay.api import coins as coin_routes
from keel.coinpay.api import payments as payment_routes
from keel.coinpay.api.schemas import CoinpayProblem
from keel.coinpay.chains.base import ChainSource
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Network
from keel.coinpay.web import checkout
from keel.core import apidocs
from keel.core.app import Product, RequestContextMiddleware, install_problem_handlers
from keel.core.clock import Clock
from keel.core.openapi import document_problems
from keel.core.pages import Link
from keel.core.ratelimit import RateLimitStore
from keel.core.ratelimit_http import RateLimitHeaders


def _coinpay_error_fields(_status: int, _code: str, detail: str) -> dict[str, Any]:
    # CoinPayPortal's clients read {success: false, error}; problem+json fields sit beside it.
    return {"success": False, "error": detail}


def create_app(
    settings: CoinpaySettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    rate_provider: rates.RateProvider | None = None,
    allocator: IndexAllocator | None = None,
    run_workers: bool | None = None,
    rate_limits: RateLimitStore | None = None,
    sources: Sequence[ChainSource] | None = None,
    networks: Mapping[str, Network] | None = None,
) -> Product:
    """Build coinpay. Nothing touches the database until the lifespan is entered."""
    workers = settings.run_workers if run_workers is None else run_workers

    @asynccontextmanager
    async def lifespan(_app: FastAPI | None = None) -> AsyncIterator[None]:
        gw = await bootstrap.open_gateway(
            settings,
            data_dir=data_dir,
            clock=clock,
            rate_provider=rate_provider,
            allocator=allocator,
            rate_limits=rate_limits,
            sources=sources,
            networks=networks,
        )
        app.state.gateway = gw
        try:
            if workers:
                async with bootstrap.running_worker(gw) as worker:
                    app.state.worker = worker
                    yield
            else:
                yield
        finally:
            await bootstrap.close_gateway(gw)

    app = FastAPI(
        title="Keel coinpay",
        version="1.0",
        description="Multi-chain crypto payment gateway (CoinPayPortal-compatible merchant API).",
        lifespan=lifespan,
    )
    install_problem_handlers(app, extras=_coinpay_error_fields)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestContextMiddleware, app_name="coinpay", extras=_coinpay_error_fields)
    for router in (payment_routes.router, coin_routes.router, business_routes.router):
        app.include_router(router, prefix="/api")
    app.include_router(checkout.router)
    document_problems(app, CoinpayProblem)
    apidocs.install(app)

    async def ready() -> bool:
        gw: Gateway | None = getattr(app.state, "gateway", None)
        if gw is None:
            return False
        async with gw.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def detail() -> dict[str, Any]:
        gw: Gateway = app.state.gateway
        return {"chains": {c: await s.health() for c, s in gw.scanners.items()}}

    checkout_page = Link(
        "Checkout page",
        "/pay/{payment_id}",
        "one per payment: create a test payment as the README shows, then open its id here",
    )
    return Product(
        name="coinpay",
        app=app,
        lifespan=lambda: lifespan(None),
        ready=ready,
        links=(checkout_page,),
        detail=detail,
    )
