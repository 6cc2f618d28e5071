"""create_app(settings) -> the coach Product: Telegram's webhook, coinpay's webhook, status.

The bot runs inside the app's lifespan when a token is set: long polling (the default) as a
background task, or, in webhook mode, fed by ``POST /coach/telegram/webhook``. Without a
token the app still serves its status and coinpay's webhook, so a payment is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from keel.coach import bootstrap, workers
from keel.coach.api import coinpay_webhook
from keel.coach.bootstrap import Wired
from keel.coach.bot.runner import SECRET_HEADER, WEBHOOK_PATH, BotRunner
from keel.coach.settings import CoachSettings
from keel.core import apidocs, status
from keel.core.app import (
    Product,
    RequestContextMiddleware,
    install_problem_handlers,
    read_body,
)
from keel.core.clock import Clock
from keel.core.errors import BadRequest, Unauthorized, Unavailable
from keel.core.openapi import document_problems
from keel.core.pages import Link

UPDATE_MAX_BYTES = 1 << 20  # Telegram's updates are a few kB; a photo arrives as a file id


def create_app(
    settings: CoachSettings, *, data_dir: str = "var", clock: Clock | None = None
) -> Product:
    """Build coach. Nothing touches the database or Telegram until the lifespan is entered."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI | None = None) -> AsyncIterator[None]:
        wired = await bootstrap.open_coach(settings, data_dir=data_dir, clock=clock)
        runner: BotRunner | None = None
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if settings.telegram_token is not None:
            runner = BotRunner(wired.coach, wired.paying, settings, settings.telegram_token)
            wired.notify = runner.notify_unlocked
            await runner.prepare()
            if settings.mode == "polling" and settings.run_workers:
                tasks.append(asyncio.create_task(runner.poll(stop)))
            if settings.run_workers:
                tasks.append(asyncio.create_task(runner.watch(wired.watches, wired.clock, stop)))
        if settings.run_workers:
            tasks.append(asyncio.create_task(workers.reconcile_payments(wired, stop)))
        app.state.coach = wired
        app.state.runner = runner
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if runner is not None:
                await runner.close()
            await wired.close()

    app = FastAPI(
        title="Keel coach",
        version="1.0",
        description="A Telegram trading-psychology coach: streaming answers, token risk scans "
        "and checked payments. The bot talks to people on Telegram; this API takes the "
        "webhooks of Telegram and coinpay and shows the bot's status.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, app_name="coach")
    app.include_router(coinpay_webhook.router)

    @app.post(WEBHOOK_PATH, tags=["telegram"], status_code=200)
    async def telegram_webhook(request: Request) -> Response:
        """Telegram's updates in webhook mode, checked by the secret token it sends."""
        runner: BotRunner | None = getattr(request.app.state, "runner", None)
        if runner is None or settings.mode != "webhook":
            raise Unavailable("the bot does not take webhook updates here")
        if not runner.secret_matches(request.headers.get(SECRET_HEADER)):
            raise Unauthorized("missing or wrong secret token")
        body = await read_body(request, UPDATE_MAX_BYTES)
        try:
            update: Any = json.loads(body)
        except ValueError as exc:
            raise BadRequest("the update is not JSON") from exc
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise BadRequest("an update is an object with an integer update_id")
        if not runner.accept(update):
            raise Unavailable("too many updates in progress", retry_after=1)
        return JSONResponse({"ok": True})

    async def read_status() -> status.Status:
        wired: Wired | None = getattr(app.state, "coach", None)
        return await status.read(breakers="coach", caches=[wired.cache] if wired else [])

    app.include_router(status.router(read_status, name="coach"))
    document_problems(app)
    apidocs.install(app)

    async def ready() -> bool:
        wired: Wired | None = getattr(app.state, "coach", None)
        if wired is None:
            return False
        async with wired.database.reading() as connection:
            await connection.execute(text("SELECT 1"))
        return True

    async def detail() -> dict[str, Any]:
        """What /readyz shows beside the verdict: how the bot runs and Telegram's latest
        flood waits (each recorded when a 429 came back)."""
        runner: BotRunner | None = getattr(app.state, "runner", None)
        if runner is None:
            return {"bot": "off (no KEEL_COACH_TELEGRAM_TOKEN)"}
        waits = [
            {
                "chat_id": p.chat_id,
                "method": p.method,
                "retry_after_seconds": p.retry_after_seconds,
                "at": p.at.isoformat(),
            }
            for p in runner.pacer.penalties()[-10:]
        ]
        return {"bot": settings.mode, "flood_waits": waits}

    return Product(
        name="coach",
        app=app,
        lifespan=lambda: lifespan(None),
        ready=ready,
        detail=detail,
        links=(Link("Status", "/status", "the bot's models, breakers and flood waits"),),
    )
