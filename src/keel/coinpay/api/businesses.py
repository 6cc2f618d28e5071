"""Business settings over the API: payout wallets, webhook endpoints, delivery logs, API keys
and the audit log.

A key sees and changes only its own world: its business and its mode (ADR 0009). Changes are
audited and announced as ``business.updated`` to the endpoints of the same mode.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.coinpay import apikeys, audit, businesses, notify
from keel.coinpay.api.deps import errors, gateway, ok, principal
from keel.coinpay.api.schemas import ApiKeyBody, WalletBody, WebhookBody
from keel.coinpay.apikeys import Principal
from keel.core import ratelimit_http
from keel.core.errors import Forbidden

router = APIRouter(tags=["businesses"])

Caller = Annotated[Principal, Depends(principal)]


def _own(caller: Principal, business_id: str, scope: str) -> None:
    caller.require(scope)
    if business_id != caller.business_id:
        raise Forbidden("This API key belongs to another business")


async def _may_change(request: Request, caller: Principal, business_id: str, scope: str) -> None:
    """A configuration change: the caller's own business, the scope, and the per-hour budget of
    changes in its world (counted in the database, so it holds across processes and restarts,
    and before the change's own transaction opens)."""
    _own(caller, business_id, scope)
    gw = gateway(request)
    bucket = f"config:{business_id}:{caller.mode}"
    await ratelimit_http.enforce(
        request, gw.security_limiter, {bucket: gw.settings.config_changes_per_hour}, app="coinpay"
    )


@router.get("/businesses/{business_id}/wallets", responses=errors())
async def list_wallets(business_id: str, request: Request, caller: Caller) -> Response:
    """The payout wallets of the key's mode."""
    _own(caller, business_id, "payments:read")
    gw = gateway(request)
    async with gw.sessions() as session:
        wallets = await businesses.list_wallets(session, business_id, caller.mode)
    return ok(wallets=wallets)


@router.post("/businesses/{business_id}/wallets", responses=errors())
async def set_wallet(
    business_id: str, body: WalletBody, request: Request, caller: Caller
) -> Response:
    """Set the payout address for a coin in the key's mode (needs ``wallets:manage``, which a
    live key must carry by name). Audited; announced as ``business.updated``. A live UTXO
    chain configured for a test network takes that network's addresses (e.g. ``rltc1…``)."""
    await _may_change(request, caller, business_id, "wallets:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        address = await businesses.set_wallet(
            session,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            coin=body.cryptocurrency,
            address=body.wallet_address,
            networks=gw.networks_of(caller.mode),
        )
    return ok(wallet={"cryptocurrency": body.cryptocurrency.upper(), "wallet_address": address})


@router.get("/businesses/{business_id}/webhooks", responses=errors())
async def list_webhooks(business_id: str, request: Request, caller: Caller) -> Response:
    """Webhook endpoints of the key's mode (secrets are never shown again after creation)."""
    _own(caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session:
        endpoints = await notify.list_endpoints(session, business_id=business_id, mode=caller.mode)
    return ok(webhooks=endpoints)


@router.post("/businesses/{business_id}/webhooks", status_code=201, responses=errors())
async def create_webhook(
    business_id: str, body: WebhookBody, request: Request, caller: Caller
) -> Response:
    """Add an endpoint for the key's mode; the reply carries its signing secret, shown this
    once. Audited; announced as ``business.updated``.

    The URL must reach a public address: a host that is, or resolves to, a loopback, private,
    link-local or other internal address (in any spelling, e.g. ``2130706433``) is refused
    with a 400 naming why. Delivery is at least once: receivers dedupe on the event ``id``,
    also sent as ``X-CoinPay-Event-Id``.
    """
    await _may_change(request, caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        endpoint_id, secret = await notify.create_endpoint(
            session,
            gw.box,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            url=body.url,
            events=body.events,
            allow_private=gw.settings.webhook_allow_private,
        )
        # Read back, so the reply shows what deliveries will use (normalised), not the input.
        stored = await notify.get_endpoint(
            session, business_id=business_id, mode=caller.mode, endpoint_id=endpoint_id
        )
    reply = ok(webhook={**stored, "secret": secret})
    reply.status_code = 201
    return reply


@router.delete("/businesses/{business_id}/webhooks/{endpoint_id}", responses=errors(404))
async def delete_webhook(
    business_id: str, endpoint_id: str, request: Request, caller: Caller
) -> Response:
    """Stop delivering to an endpoint of the key's mode (its history stays). Audited."""
    await _may_change(request, caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        await notify.deactivate_endpoint(
            session,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            endpoint_id=endpoint_id,
        )
    return ok()


@router.post(
    "/businesses/{business_id}/webhooks/{endpoint_id}/rotate-secret", responses=errors(404)
)
async def rotate_webhook_secret(
    business_id: str, endpoint_id: str, request: Request, caller: Caller
) -> Response:
    """A new secret; the old one keeps signing beside it for 24 hours. Audited."""
    await _may_change(request, caller, business_id, "webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        secret = await notify.rotate_secret(
            session,
            gw.box,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            endpoint_id=endpoint_id,
        )
    return ok(webhook={"id": endpoint_id, "secret": secret})


@router.get("/webhooks", responses=errors())
async def delivery_log(
    request: Request,
    caller: Caller,
    payment_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Recent events of the key's mode and each delivery attempt.

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
    """Send an event of the key's mode again to every matching active endpoint of that mode."""
    caller.require("webhooks:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        queued = await notify.redeliver(
            session,
            gw.queue,
            business_id=caller.business_id,
            mode=caller.mode,
            event_id=event_id,
        )
    return ok(queued=queued)


@router.get("/businesses/{business_id}/api-keys", responses=errors())
async def list_api_keys(business_id: str, request: Request, caller: Caller) -> Response:
    """The API keys of the key's mode, with when each was last used (to the minute); never
    the key itself."""
    _own(caller, business_id, "keys:manage")
    gw = gateway(request)
    async with gw.sessions() as session:
        keys = await apikeys.list_keys(session, business_id=business_id, mode=caller.mode)
    return ok(api_keys=keys)


@router.post("/businesses/{business_id}/api-keys", status_code=201, responses=errors())
async def create_api_key(
    business_id: str, body: ApiKeyBody, request: Request, caller: Caller
) -> Response:
    """A new key in the caller's mode with at most the caller's scopes; the reply carries the
    key, shown this once. Audited."""
    await _may_change(request, caller, business_id, "keys:manage")
    scopes = apikeys.grantable(caller, body.scopes)
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        key_id, token = await apikeys.create_key(
            session,
            gw.box,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            scopes=scopes,
        )
        created = await apikeys.describe_key(session, key_id)
    reply = ok(api_key={**created, "key": token})
    reply.status_code = 201
    return reply


@router.delete("/businesses/{business_id}/api-keys/{key_id}", responses=errors(404))
async def revoke_api_key(
    business_id: str, key_id: str, request: Request, caller: Caller
) -> Response:
    """Revoke a key of the caller's mode at once (a key may revoke itself). Audited."""
    await _may_change(request, caller, business_id, "keys:manage")
    gw = gateway(request)
    async with gw.sessions() as session, session.begin():
        revoked = await apikeys.revoke_key(
            session,
            caller.actor(gw.queue, gw.clock),
            business_id=business_id,
            mode=caller.mode,
            key_id=key_id,
        )
    return ok(api_key=revoked)


@router.get("/businesses/{business_id}/audit-log", responses=errors())
async def audit_log(
    business_id: str,
    request: Request,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Configuration changes in the key's mode, newest first: who, what, when."""
    _own(caller, business_id, "payments:read")
    gw = gateway(request)
    async with gw.sessions() as session:
        entries = await audit.entries(
            session, business_id=business_id, mode=caller.mode, limit=limit
        )
    return ok(entries=entries)
