"""HTTP, JSON and JSON-RPC as every source speaks them, errors translated to ours.

* Transport errors and timeouts: SourceUnavailable. HTTP 429: SourceRateLimited. HTTP 401:
  SourceMisconfigured (our key). Any other status >= 400: SourceUnavailable.
* JSON numbers with a fraction or exponent are read as Decimal, never float, and then refused
  wherever an amount or a count is expected: money is integers in base units.
* A source is named by its label in every message, never by its URL (a node URL often
  carries an API key in its path, Etherscan's in its query).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import httpx

from keel.coach.payments.errors import (
    MalformedResponse,
    SourceMisconfigured,
    SourceRateLimited,
    SourceUnavailable,
)

__all__ = [
    "JsonRpc",
    "base_units",
    "display_units",
    "field",
    "hex_int",
    "json_int",
    "request_json",
    "text",
]

_SNIPPET: Final = 120
_QUANTITY: Final = re.compile(r"0x[0-9a-fA-F]{1,64}", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]{1,78}", re.ASCII)
_DECIMAL: Final = re.compile(r"[0-9]{1,78}\.[0-9]{1,78}", re.ASCII)
# EIP-1474 "limit exceeded", and the 429 some providers (Solana's public RPC) put in the body.
_RATE_LIMIT_CODES: Final = frozenset({-32005, 429})


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite JSON number {name}")


def loads(content: bytes, source: str) -> Any:
    try:
        return json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedResponse(f"{source}: not JSON: {content[:_SNIPPET]!r}") from exc


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    source: str,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: object = None,
    accept_status: frozenset[int] = frozenset(),
) -> tuple[int, Any]:
    """(status, JSON body) of one request. Statuses >= 400 raise as the module docstring says
    unless listed in ``accept_status`` (a source whose error bodies mean something)."""
    content = None if body is None else json.dumps(body, default=str).encode()
    send_headers = dict(headers or {})
    if content is not None:
        send_headers["Content-Type"] = "application/json"
    try:
        response = await client.request(
            method, url, params=params, headers=send_headers, content=content
        )
    except httpx.TimeoutException as exc:
        raise SourceUnavailable(f"{source}: timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise SourceUnavailable(f"{source}: {type(exc).__name__}") from exc
    status = response.status_code
    if status >= 400 and status not in accept_status:
        snippet = response.content[:_SNIPPET]
        if status == 429:
            raise SourceRateLimited(f"{source}: HTTP 429 {snippet!r}")
        if status == 401:
            raise SourceMisconfigured(f"{source}: HTTP 401 (check the API key) {snippet!r}")
        raise SourceUnavailable(f"{source}: HTTP {status} {snippet!r}")
    return status, loads(response.content, source)


class JsonRpc:
    """JSON-RPC 2.0 calls to one node URL. Every JSON-RPC error is SourceUnavailable (rate
    limits SourceRateLimited): the hashes we ask about are validated, so an error is the
    node's trouble, not the request's."""

    def __init__(self, client: httpx.AsyncClient, url: str, *, source: str) -> None:
        self._client = client
        self._url = url
        self._source = source
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[object]) -> Any:
        request_id = next(self._ids)
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        # Nodes send a JSON-RPC error with 4xx/5xx statuses too; its body says more.
        _, reply = await request_json(
            self._client,
            "POST",
            self._url,
            source=self._source,
            body=body,
            accept_status=frozenset({400, 403, 404, 500, 503}),
        )
        return read_reply(reply, request_id, method, self._source)


def read_reply(reply: Any, request_id: int | None, method: str, source: str) -> Any:
    """The result of a JSON-RPC 2.0 reply, its error raised as ours."""
    if not isinstance(reply, dict):
        raise MalformedResponse(f"{source}: {method}: not a JSON-RPC reply")
    error = reply.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        detail = f"{source}: {method}: error {code}: {message[:_SNIPPET]}"
        if code in _RATE_LIMIT_CODES:
            raise SourceRateLimited(detail)
        raise SourceUnavailable(detail)
    if "result" not in reply or (request_id is not None and reply.get("id") != request_id):
        raise MalformedResponse(f"{source}: {method}: not the reply to this request")
    return reply["result"]


def field(value: Any, key: str, source: str) -> Any:
    """``value[key]`` of a JSON object; MalformedResponse when it is not there."""
    if not isinstance(value, dict) or key not in value:
        raise MalformedResponse(f"{source}: no {key!r} in the answer")
    return value[key]


def text(value: Any, what: str, source: str) -> str:
    if not isinstance(value, str):
        raise MalformedResponse(f"{source}: {what} is not a string: {value!r:.{_SNIPPET}}")
    return value


def hex_int(value: Any, what: str, source: str) -> int:
    """An EVM QUANTITY (``0x``-hex) as an int."""
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise MalformedResponse(f"{source}: {what} is not a hex quantity: {value!r:.{_SNIPPET}}")
    return int(value, 16)


def json_int(value: Any, what: str, source: str) -> int:
    """A JSON integer (never a bool, a float or a Decimal)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedResponse(f"{source}: {what} is not an integer: {value!r:.{_SNIPPET}}")
    return value


def base_units(value: Any, what: str, source: str) -> int:
    """An amount the source writes as a string of base units (``"10000000"``); anything but
    digits (a fraction, an exponent, a sign, a JSON number) is refused."""
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise MalformedResponse(f"{source}: {what} is not base units: {value!r:.{_SNIPPET}}")
    return int(value)


def display_units(value: Any, decimals: Any, what: str, source: str) -> int:
    """An amount the source writes for display (``"10.5"``, ``"10"``), in base units: scaled
    by ``decimals`` and required to come out whole. Floats and exponents are refused."""
    places = json_int(decimals, f"{what} decimals", source)
    if not isinstance(value, str) or not 0 <= places <= 77:
        raise MalformedResponse(f"{source}: {what} is not an amount: {value!r:.{_SNIPPET}}")
    if _DIGITS.fullmatch(value):
        value += "."
    elif not _DECIMAL.fullmatch(value):
        raise MalformedResponse(f"{source}: {what} is not an amount: {value!r:.{_SNIPPET}}")
    # String arithmetic, not Decimal: a context's precision (28 digits) would round.
    whole, fraction = value.split(".")
    if fraction[places:].strip("0"):
        raise MalformedResponse(f"{source}: {what} {value} has more than {places} decimals")
    return int(whole + fraction[:places].ljust(places, "0"))
