"""Shared pieces of the routers: the wired product, bearer credentials, clients, errors."""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import Request
from starlette.requests import HTTPConnection

from keel.core import ratelimit_http
from keel.core.openapi import problem_responses
from keel.core.ratelimit import RateLimiter
from keel.pairux.bootstrap import Pairux
from keel.pairux.errors import InvalidAccountKey, InvalidToken, RoomNotFound
from keel.pairux.joins import JoinGuard
from keel.pairux.rooms import Participant, Room
from keel.pairux.store import Account
from keel.pairux.tokens import ACCOUNT_PREFIX

_ANY_ROUTE = (400, 500)
_DESCRIPTIONS = {
    401: "No participant token (Authorization: Bearer pxp_…), or an unknown one",
    403: "Only the room's host may do this",
    404: "No such room for this caller, no live room with that code, or an invalid invite",
    409: "The room is full",
    410: "The room has ended",
    429: "Too many rooms created, or too many failed code joins, from this address",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*sorted({*_ANY_ROUTE, *statuses}), descriptions=_DESCRIPTIONS)


def pairux(request: HTTPConnection) -> Pairux:
    wired: Pairux = request.app.state.pairux
    return wired


def guard(request: Request) -> JoinGuard:
    found: JoinGuard = request.app.state.join_guard
    return found


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not value.strip():
        raise InvalidToken("Authorization must be 'Bearer <token>'")
    return value.strip()


async def participant(request: Request, room_id: str) -> tuple[Participant, Room]:
    """The caller, a participant of ``room_id`` by its token; a token of another room is as
    good as none here (404, so room ids cannot be probed)."""
    token = _bearer(request)
    if token is None:
        raise InvalidToken()
    found = await pairux(request).store.by_token(token)
    if found is None:
        raise InvalidToken()
    if found[1].id != room_id:
        raise RoomNotFound()
    return found


async def account(request: Request) -> Account | None:
    """The account whose key (``pxa_…``) came as the bearer, or None for a guest."""
    key = _bearer(request)
    if key is None:
        return None
    if not key.startswith(ACCOUNT_PREFIX):
        raise InvalidAccountKey("Send an account key (pxa_…) here, or no Authorization")
    found = await pairux(request).store.account_by_key(key)
    if found is None:
        raise InvalidAccountKey()
    return found


def client_id(request: Request) -> str:
    """Whom a limit counts: the client's address (an IPv6 client owns a whole /64)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64]}"
    if address.version == 6:
        return f"ip:{ipaddress.ip_network((address, 64), strict=False)}"
    return f"ip:{address}"


async def limit_room_creation(request: Request) -> None:
    limiter: RateLimiter = request.app.state.limiter
    limit = pairux(request).settings.rooms_per_ip
    bucket = f"rooms:{client_id(request)}"
    await ratelimit_http.enforce(request, limiter, {bucket: limit}, app="pairux")
