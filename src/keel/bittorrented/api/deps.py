"""Shared pieces of the routers: the indexer, the API-key guard, rate limits, parsing helpers."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import Request

from keel.bittorrented.indexer import Indexer
from keel.core import ratelimit_http
from keel.core.errors import BadRequest, Unauthorized
from keel.core.openapi import problem_responses
from keel.core.ratelimit import RateLimiter

# Any route can answer bad input and a 500; the others are added per route.
_ANY_ROUTE = (400, 500)
_DESCRIPTIONS = {
    401: "This server has an API key and the request did not carry it",
    403: "The torrent's name is on the banned list",
    404: "No torrent or saved search with that id",
    429: "Too many requests from this client (its API key, else its address) in the window",
    503: "The search ran past its time limit, or the peer network is unreachable",
    504: "No peer sent the magnet's metadata in time",
}
# Size bounds a client may send (8 PiB): 2**53, so that the bound a JSON number can state and
# the one we check are the same integer (2**63 - 1 is not a double).
MAX_SIZE_BYTES = 2**53
# An info hash in a path: 40 hex digits (the v1 SHA-1).
INFO_HASH = re.compile("[0-9a-fA-F]{40}")


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json responses a route documents: the common ones plus ``statuses``."""
    return problem_responses(*sorted({*_ANY_ROUTE, *statuses}), descriptions=_DESCRIPTIONS)


Limited = Literal["search", "torznab", "uploads"]


class MissingApiKey(Unauthorized):
    """This server needs an API key: send X-Api-Key or ?apikey=."""

    code = "missing_api_key"


def indexer(request: Request) -> Indexer:
    found: Indexer = request.app.state.indexer
    return found


def _sent_key_is_valid(request: Request) -> bool:
    configured = indexer(request).settings.api_key
    if configured is None:
        return False
    sent = request.headers.get("x-api-key") or request.query_params.get("apikey") or ""
    return hmac.compare_digest(sent.encode(), configured.get_secret_value().encode())


def require_api_key(request: Request) -> None:
    """Refuse the request unless the configured key (if any) came with it."""
    if indexer(request).settings.api_key is not None and not _sent_key_is_valid(request):
        raise MissingApiKey()


def client_id(request: Request) -> str:
    """Whom a rate limit counts: the API key when a valid one came, else the client's address
    (an IPv6 client owns a whole /64, so that is one client). A wrong key counts as its
    address, so guessing keys cannot open fresh buckets."""
    if _sent_key_is_valid(request):
        return "key"
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host}"
    if address.version == 6:
        return f"ip:{ipaddress.ip_network((address, 64), strict=False)}"
    return f"ip:{address}"


def rate_limited(kind: Limited) -> Callable[[Request], Awaitable[None]]:
    """A dependency that counts the request against the client's ``kind`` limit (429 past it)."""

    async def count(request: Request) -> None:
        settings = indexer(request).settings
        limit = {
            "search": settings.rate_limit_search,
            "torznab": settings.rate_limit_torznab,
            "uploads": settings.rate_limit_uploads,
        }[kind]
        limiter: RateLimiter = request.app.state.limiter
        bucket = f"{kind}:{client_id(request)}"
        await ratelimit_http.enforce(request, limiter, {bucket: limit}, app="bittorrented")

    return count


def info_hash_param(value: str) -> bytes:
    """A 40-hex-digit info hash (:data:`INFO_HASH`) from a path or query parameter."""
    if INFO_HASH.fullmatch(value) is None:
        raise BadRequest("info_hash must be 40 hexadecimal digits")
    return bytes.fromhex(value)


def csv_pattern(allowed: frozenset[str]) -> str:
    """The JSON Schema pattern of what :func:`csv_param` accepts."""
    choice = "|".join(sorted(allowed))
    return f"^(?:(?:{choice})(?:,(?:{choice}))*)?$"


def csv_param(value: str | None, *, allowed: frozenset[str], name: str) -> tuple[str, ...]:
    """Comma-separated values, each one of ``allowed`` (e.g. ``movie,tv_show``; empty: none),
    deduplicated; BadRequest naming the first that is not."""
    if not value:
        return ()
    items = value.split(",")
    unknown = [v for v in items if v not in allowed]
    if unknown:
        raise BadRequest(f"unknown {name} {unknown[0][:40]!r}; expected one of {sorted(allowed)}")
    return tuple(dict.fromkeys(items))
