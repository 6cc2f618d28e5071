"""The hosted checkout page and its live status stream (Server-Sent Events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from keel.coinpay import payments, presentation
from keel.coinpay.api.deps import gateway
from keel.coinpay.assets import get_coin
from keel.coinpay.lifecycle import Status
from keel.coinpay.money import format_units

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

FINAL = {Status.FORWARDED.value, Status.FAILED.value}  # nothing can change after these
POLL_SECONDS = 1.0
KEEPALIVE_SECONDS = 15.0
MAX_STREAM_SECONDS = 3600.0


def public_status(row: payments.Payment) -> dict[str, Any]:
    """What the customer may see: no metadata, no merchant details."""
    coin = get_coin(row.blockchain)
    return {
        "id": row.id,
        "status": row.status,
        "paid_partial": row.paid_partial,
        "paid_over": row.paid_over,
        "paid_late": row.paid_late,
        "amount_received": format_units(row.received_amount, coin.decimals),
        "crypto_amount": format_units(row.crypto_amount, coin.decimals),
        "confirmations": row.confirmations,
        "required_confirmations": row.required_confirmations,
        "expires_at": presentation.iso(row.expires_at),
    }


@router.get("/pay/{payment_id}", response_class=HTMLResponse)
async def checkout_page(payment_id: str, request: Request) -> Response:
    gw = gateway(request)
    row = await payments.get_public(gw, payment_id)
    coin = get_coin(row.blockchain)
    return templates.TemplateResponse(
        request,
        "checkout.html",
        {
            "payment": presentation.to_wire(row, gw.live_chains),
            "coin": coin,
            "uri": presentation.payment_uri(row, gw.live_chains),
            "status": public_status(row),
        },
        headers={
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'",
            "Cache-Control": "no-store",
        },
    )


@router.get("/pay/{payment_id}/status")
async def checkout_status(payment_id: str, request: Request) -> Response:
    row = await payments.get_public(gateway(request), payment_id)
    return Response(json.dumps(public_status(row)), media_type="application/json")


@router.get("/pay/{payment_id}/events")
async def checkout_events(payment_id: str, request: Request) -> StreamingResponse:
    """SSE: one ``status`` event now and one per change. Reads the database, so it works
    whichever process moved the payment."""
    gw = gateway(request)
    await payments.get_public(gw, payment_id)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        last: dict[str, Any] | None = None
        idle = 0.0
        waited = 0.0
        yield "retry: 2000\n\n"
        while waited < MAX_STREAM_SECONDS:
            if await request.is_disconnected():
                return
            current = public_status(await payments.get_public(gw, payment_id))
            if current != last:
                yield f"event: status\ndata: {json.dumps(current)}\n\n"
                last, idle = current, 0.0
                if current["status"] in FINAL:
                    return
            elif idle >= KEEPALIVE_SECONDS:
                yield ": keepalive\n\n"
                idle = 0.0
            await asyncio.sleep(POLL_SECONDS)
            idle += POLL_SECONDS
            waited += POLL_SECONDS

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
