"""Shared pieces of the routers: the gateway, the caller, rate limits, wire responses."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from keel.coinpay import apikeys
from keel.coinpay.gateway import Gateway
from keel.coinpay.wire import dumps
from keel.core import ratelimit_http
from keel.core.openapi import problem_responses

# Errors any route can answer: bad input (including values the database refuses) and a 500.
_ANY_ROUTE = (400, 500)
# ... and behind an API key: unknown key, missing scope or another business, rate limit.
_KEYED_ROUTE = (*_ANY_ROUTE, 401, 403, 429)


_DESCRIPTIONS = {
    401: "Missing, malformed or unknown API key",
    403: "The key lacks the scope, or the resource belongs to another business",
    404: "No such resource for this key's business and mode",
    409: "The payment no longer accepts this (closed, or not a test payment)",
    422: "No wallet for the coin, no node watched for its chain (live), or an Idempotency-Key "
    "reused with another body",
    503: "No fresh exchange rate, no master seed, or the index space is exhausted",
}


def errors(*statuses: int, keyed: bool = True) -> dict[int | str, dict[str, Any]]:
    """The problem+json responses a route documents: the common ones plus ``statuses``."""
    common = _KEYED_ROUTE if keyed else _ANY_ROUTE
    return problem_responses(*sorted({*common, *statuses}), descriptions=_DESCRIPTIONS)


class WireJSONResponse(JSONResponse):
    """JSON with exact decimals (fiat amounts are JSON numbers, never floats in between)."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode()


def ok(**fields: Any) -> WireJSONResponse:
    return WireJSONResponse({"success": True, **fields})


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    api_key = request.headers.get("x-api-key", "").strip()
    if api_key:
        return api_key
    raise apikeys.InvalidApiKey("Missing API key: send Authorization: Bearer cp_live_…")


async def principal(request: Request) -> apikeys.Principal:
    """Authenticate the key, then count the request against its rate limits: the key's own,
    and its business's in the key's mode (a flood of test calls leaves live keys alone)."""
    gw = gateway(request)
    who = await apikeys.authenticate(gw.lookups, gw.box, _bearer(request))
    await apikeys.note_use(gw.sessions, gw.clock, who)
    limits = {
        f"key:{who.key_id}": gw.settings.rate_limit_per_key,
        f"business:{who.business_id}:{who.mode}": gw.settings.rate_limit_per_business,
    }
    await ratelimit_http.enforce(request, gw.limiter, limits, app="coinpay")
    return who
