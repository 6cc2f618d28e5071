"""Business settings over the API: payout wallets, webhook endpoints, delivery logs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.coinpay import businesses, notify
from keel.coinpay.api.deps import errors, gateway, ok, principal
from keel.coinpay.api.schemas import WalletBody, WebhookBody
from keel.coinpay.apikeys import Principal
from keel.core.errors import Forbidden

router = APIRouter(tags=["businesses"])

Caller = Annotated[Principal, Depends(principal)]


def _own(caller: Principal, business_id: str, scope: str) -> None:
    caller.require(scope)
    if business_id != caller.business_id:
        raise Forbidden("This API key belongs to another business")


@router.get("/businesses/{business_id}/wallets", responses=errors())
async def list_wallets(business_id: str, request: Request, caller: Caller) -> Response:
    """The business's payout wallets."""
    _own(caller, business_id, "payments:read")
    gw = gateway(request)
    async with gw.sessions() as session:
        wallets = await businesses.list_wallets(session, business_id)
    return ok(wallets=wallets)


@router.post("/businesses/{business_id}/wallets", responses=errors())
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


@router.get("/businesses/{business_id}/webhooks", responses=errors())
async def list_webhooks(business_id: str, request: Request, caller: Caller) -> Response:
    """Webhook endpoints (secrets are never shown again after creation)."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session:
        endpoints = await notify.list_endpoints(session, business_id)
    return ok(webhooks=endpoints)


@router.post("/businesses/{business_id}/webhooks", status_code=201, responses=errors())
async def create_webhook(
    business_id: str, body: WebhookBody, request: Request, caller: Caller
) -> Response:
    """Add an endpoint; the reply carries its signing secret, shown this once.

    The URL must reach a public address: a host that is, or resolves to, a loopback, private,
    link-local or other internal address (in any spelling, e.g. ``2130706433``) is refused
    with a 400 naming why. Delivery is at least once: receivers dedupe on the event ``id``,
    also sent as ``X-CoinPay-Event-Id``.
    """
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
        # Read back, so the reply shows what deliveries will use (normalised), not the input.
        stored = await notify.get_endpoint(
            session, business_id=business_id, endpoint_id=endpoint_id
        )
    reply = ok(webhook={**stored, "secret": secret})
    reply.status_code = 201
    return reply


@router.delete("/businesses/{business_id}/webhooks/{endpoint_id}", responses=errors(404))
async def delete_webhook(
    business_id: str, endpoint_id: str, request: Request, caller: Caller
) -> Response:
    """Stop delivering to an endpoint (its history stays)."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        await notify.deactivate_endpoint(session, business_id=business_id, endpoint_id=endpoint_id)
    return ok()


@router.post(
    "/businesses/{business_id}/webhooks/{endpoint_id}/rotate-secret", responses=errors(404)
)
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


@router.get("/webhooks", responses=errors())
async def delivery_log(
    request: Request,
    caller: Caller,
    payment_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Recent events and each delivery attempt.

    An attempt is logged before its request is sent: ``sending`` while in flight, then
    ``success``, ``retry``, ``dead``, or ``interrupted`` if its worker stopped before hearing
    back (the receiver may have got it: delivery is at least once, dedupe on the event id).
    """
    caller.require("webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session:
        events = await notify.delivery_log(
            session,
            business_id=caller.business_id,
            mode=caller.mode,
            payment_id=payment_id,
            limit=limit,
        )
    return ok(events=events)


@router.post("/webhooks/events/{event_id}/redeliver", responses=errors(404))
async def redeliver(event_id: str, request: Request, caller: Caller) -> Response:
    """Send an event again to every matching active endpoint."""
    caller.require("webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        queued = await notify.redeliver(
            session, gw.queue, business_id=caller.business_id, event_id=event_id
        )
    return ok(queued=queued)
