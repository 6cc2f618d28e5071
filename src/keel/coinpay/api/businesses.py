"""Business settings over the API: payout wallets, webhook endpoints, delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from keel.coinpay import businesses, models, notify
from keel.coinpay.api.deps import gateway, ok, principal
from keel.coinpay.api.schemas import WalletBody, WebhookBody
from keel.coinpay.apikeys import Principal
from keel.core.errors import Forbidden, NotFound

router = APIRouter(tags=["businesses"])

Caller = Annotated[Principal, Depends(principal)]


def _own(caller: Principal, business_id: str, scope: str) -> None:
    caller.require(scope)
    if business_id != caller.business_id:
        raise Forbidden("This API key belongs to another business")


@router.get("/businesses/{business_id}/wallets")
async def list_wallets(business_id: str, request: Request, caller: Caller) -> Response:
    """The business's payout wallets."""
    _own(caller, business_id, "payments:read")
    gw = gateway(request)
    t = models.wallets
    async with gw.sessions() as session:
        rows = await session.execute(
            select(t.c.coin, t.c.address).where(t.c.business_id == business_id).order_by(t.c.coin)
        )
        wallets = [{"cryptocurrency": r.coin, "wallet_address": r.address} for r in rows.all()]
    return ok(wallets=wallets)


@router.post("/businesses/{business_id}/wallets")
async def set_wallet(
    business_id: str, body: WalletBody, request: Request, caller: Caller
) -> Response:
    """Set the payout address for a coin (needs the ``*`` scope)."""
    _own(caller, business_id, "*")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        address = await businesses.set_wallet(
            session,
            gw.clock,
            business_id=business_id,
            coin=body.cryptocurrency,
            address=body.wallet_address,
        )
    return ok(wallet={"cryptocurrency": body.cryptocurrency.upper(), "wallet_address": address})


@router.get("/businesses/{business_id}/webhooks")
async def list_webhooks(business_id: str, request: Request, caller: Caller) -> Response:
    """Webhook endpoints (secrets are never shown again after creation)."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    t = models.webhook_endpoints
    async with gw.sessions() as session:
        rows = await session.execute(
            select(t.c.id, t.c.url, t.c.events, t.c.active, t.c.created_at)
            .where(t.c.business_id == business_id)
            .order_by(t.c.created_at)
        )
        endpoints = [
            {"id": r.id, "url": r.url, "events": r.events, "active": r.active}
            for r in rows.all()
        ]
    return ok(webhooks=endpoints)


@router.post("/businesses/{business_id}/webhooks", status_code=201)
async def create_webhook(
    business_id: str, body: WebhookBody, request: Request, caller: Caller
) -> Response:
    """Add an endpoint; the reply carries its signing secret, shown this once."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        endpoint_id, secret = await notify.create_endpoint(
            session,
            gw.box,
            gw.clock,
            business_id=business_id,
            url=body.url,
            events=body.events,
            allow_private=gw.settings.webhook_allow_private,
        )
    reply = ok(webhook={"id": endpoint_id, "url": body.url, "events": body.events, "secret": secret})
    reply.status_code = 201
    return reply


@router.delete("/businesses/{business_id}/webhooks/{endpoint_id}")
async def delete_webhook(
    business_id: str, endpoint_id: str, request: Request, caller: Caller
) -> Response:
    """Stop delivering to an endpoint (its history stays)."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    t = models.webhook_endpoints
    async with gw.sessions() as session, session.begin():
        result = await session.execute(
            t.update()
            .where(t.c.id == endpoint_id, t.c.business_id == business_id)
            .values(active=False)
        )
        if not result.rowcount:
            raise NotFound("Webhook endpoint not found")
    return ok()


@router.post("/businesses/{business_id}/webhooks/{endpoint_id}/rotate-secret")
async def rotate_webhook_secret(
    business_id: str, endpoint_id: str, request: Request, caller: Caller
) -> Response:
    """A new secret; the old one keeps signing beside it for 24 hours."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        secret = await notify.rotate_secret(
            session, gw.box, gw.clock, business_id=business_id, endpoint_id=endpoint_id
        )
    return ok(webhook={"id": endpoint_id, "secret": secret})


@router.get("/webhooks")
async def delivery_log(
    request: Request,
    caller: Caller,
    payment_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Recent events and each delivery attempt."""
    caller.require("webhooks:manage")
    gw = gateway(request)
    ev, dl = models.webhook_events, models.webhook_deliveries
    query = (
        select(ev.c.id, ev.c.type, ev.c.payment_id, ev.c.created_at)
        .where(ev.c.business_id == caller.business_id, ev.c.mode == caller.mode)
        .order_by(ev.c.created_at.desc(), ev.c.id)
        .limit(limit)
    )
    if payment_id:
        query = query.where(ev.c.payment_id == payment_id)
    async with gw.sessions() as session:
        events = (await session.execute(query)).all()
        ids = [e.id for e in events]
        attempts = (
            await session.execute(select(dl).where(dl.c.event_id.in_(ids)).order_by(dl.c.id))
        ).all()
    by_event: dict[str, list[dict[str, object]]] = {}
    for a in attempts:
        by_event.setdefault(a.event_id, []).append(
            {
                "endpoint_id": a.endpoint_id,
                "attempt": a.attempt,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "at": a.created_at.isoformat().replace("+00:00", "Z"),
            }
        )
    return ok(
        events=[
            {
                "id": e.id,
                "type": e.type,
                "payment_id": e.payment_id,
                "created_at": e.created_at.isoformat().replace("+00:00", "Z"),
                "deliveries": by_event.get(e.id, []),
            }
            for e in events
        ]
    )


@router.post("/webhooks/events/{event_id}/redeliver")
async def redeliver(event_id: str, request: Request, caller: Caller) -> Response:
    """Send an event again to every matching active endpoint."""
    caller.require("webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        queued = await notify.redeliver(
            session, gw.queue, business_id=caller.business_id, event_id=event_id
        )
    return ok(queued=queued)
