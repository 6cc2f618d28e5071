"""What the HTTP providers share: one GET returning JSON parsed without floats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal

import httpx

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates.model import utc_now

DEFAULT_TIMEOUT_SECONDS = 5.0


class HttpRateSource:
    """What every exchange-API provider holds: a shared client, its base URL, a timeout and
    the clock used for ``as_of`` when the API gives no time of its own."""

    BASE_URL = ""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._base_url = (base_url or self.BASE_URL).rstrip("/")
        self._timeout = timeout
        self._clock = clock


_SNIPPET = 200


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite JSON number {name}")


def loads_decimal(text: str) -> object:
    """``json.loads`` where every non-integer number is a ``Decimal`` (NaN/Infinity rejected)."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


async def get_json(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    timeout_seconds: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> object:
    """GET ``url`` and return its JSON body; any failure is ``RateUnavailable`` (cause chained).

    ``timeout_seconds`` bounds each network phase (httpx) and the whole exchange (asyncio).
    """
    try:
        async with asyncio.timeout(timeout_seconds):
            response = await client.get(
                url, params=params, headers=headers, timeout=timeout_seconds
            )
    except (httpx.HTTPError, TimeoutError) as exc:
        raise RateUnavailable(
            f"{provider}: request failed: {type(exc).__name__}: {exc}", provider=provider
        ) from exc
    try:
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        raise RateUnavailable(
            f"{provider}: HTTP {response.status_code}: {response.text[:_SNIPPET]}",
            provider=provider,
            status=response.status_code,
        ) from exc
    try:
        return loads_decimal(response.text)
    except (ValueError, RecursionError) as exc:
        raise RateUnavailable(
            f"{provider}: malformed JSON: {response.text[:_SNIPPET]!r}", provider=provider
        ) from exc


def field(provider: str, obj: object, key: str) -> object:
    """``obj[key]`` for a JSON object, or ``RateUnavailable`` naming the missing key."""
    if not isinstance(obj, dict):
        raise RateUnavailable(
            f"{provider}: expected a JSON object holding {key!r}, got {type(obj).__name__}",
            provider=provider,
        )
    if key not in obj:
        raise RateUnavailable(f"{provider}: response lacks {key!r}", provider=provider)
    value: object = obj[key]
    return value
