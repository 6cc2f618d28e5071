"""REST over HTTP to one chain's providers (Esplora), tried in order with failover.

The providers, their circuit breakers, the failover loop, the network's failures, credentials
and the metrics are :mod:`~keel.coinpay.chains.providers`' (the same as the JSON-RPC client's,
so a chain's breakers show as ``keel_circuit_state{name="coinpay_rpc:<CHAIN>:<provider>"}``
whichever API its URLs speak). A request's path is appended to each provider's URL
(``https://host/api`` + ``/blocks/tip/hash``). What an answer means:

* 2xx: the body, read by the caller's ``parse``; a body it cannot read
  (:class:`~keel.coinpay.chains.providers.MalformedResponse`, ``ValueError``…) fails the
  provider (``invalid_response``): garbage from one provider is another's chance to answer;
* a status the request names in ``rejected`` (404 where a block or transaction may not exist,
  400 where the node behind the provider refuses a transaction): the request's own answer,
  raised at once as :class:`~keel.coinpay.errors.RestCallRejected`; the provider is healthy;
* anything else (429, 5xx, a 404 where the thing must exist, 401/403 for a wrong key) fails
  the provider, which is counted and skipped for the next one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from decimal import Decimal
from typing import Any, Final, TypeVar

import httpx

from keel.coinpay.chains.providers import (
    DEFAULT_TIMEOUT_SECONDS,
    MalformedResponse,
    Provider,
    ProviderFailure,
    ProviderPool,
    default_breaker,
)
from keel.coinpay.errors import InvalidAmount, RestCallRejected
from keel.core.resilience import CircuitBreaker

__all__ = ["RestClient", "json_body", "text_body"]

T = TypeVar("T")
_SNIPPET: Final = 200


class RestClient:
    """A REST client of one chain's providers (module docstring); ``speaks`` names the API in
    errors and logs. The other parameters are :class:`ProviderPool`'s."""

    def __init__(
        self,
        chain: str,
        urls: Sequence[str],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        rounds: int = 2,
        round_pause_seconds: float = 0.2,
        breaker: Callable[[str], CircuitBreaker] = default_breaker,
        client: httpx.AsyncClient | None = None,
        speaks: str = "Esplora",
    ) -> None:
        self._pool = ProviderPool(
            chain,
            urls,
            timeout_seconds=timeout_seconds,
            rounds=rounds,
            round_pause_seconds=round_pause_seconds,
            breaker=breaker,
            client=client,
            speaks=speaks,
        )
        self.chain = chain
        self.providers: tuple[Provider, ...] = self._pool.providers

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> RestClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def get(
        self,
        path: str,
        *,
        name: str,
        parse: Callable[[bytes], T],
        rejected: Collection[int] = (),
        timeout_seconds: float | None = None,
    ) -> T:
        """``GET path`` read by ``parse``. ``name`` is the request's shape for metrics and
        logs (``GET /block/:hash/raw``: never a hash, so labels stay few). Raises
        RestCallRejected for a ``rejected`` status, ChainUnavailable when no provider answered."""
        return await self._exchange("GET", path, None, name, parse, rejected, timeout_seconds)

    async def post(
        self,
        path: str,
        content: bytes,
        *,
        name: str,
        parse: Callable[[bytes], T],
        rejected: Collection[int] = (),
        timeout_seconds: float | None = None,
    ) -> T:
        """``POST path`` with ``content`` (``text/plain``), otherwise as :meth:`get`."""
        return await self._exchange("POST", path, content, name, parse, rejected, timeout_seconds)

    async def _exchange(
        self,
        verb: str,
        path: str,
        content: bytes | None,
        name: str,
        parse: Callable[[bytes], T],
        rejected: Collection[int],
        timeout_seconds: float | None,
    ) -> T:
        if not path.startswith("/"):
            raise ValueError("a REST path starts with /")
        headers = {"Content-Type": "text/plain"} if content is not None else None

        async def attempt(provider: Provider, seconds: float) -> T:
            response = await self._pool.send(
                provider, name, seconds, verb=verb, path=path, content=content, headers=headers
            )
            return self._read(response, parse, rejected)

        return await self._pool.failover(name, attempt, timeout_seconds=timeout_seconds)

    def _read(
        self, response: httpx.Response, parse: Callable[[bytes], T], rejected: Collection[int]
    ) -> T:
        status = response.status_code
        if status in rejected:
            message = response.text[:_SNIPPET]
            raise RestCallRejected(
                f"{self.chain}: the provider refused the request: {status} {message}",
                status=status,
                message=message,
            )
        if status == 429:
            raise ProviderFailure("rate_limited", "HTTP 429 (rate limited)")
        if not 200 <= status < 300:
            raise ProviderFailure(
                f"http_{status // 100}xx", f"HTTP {status}: {response.text[:_SNIPPET]!r}"
            )
        try:
            return parse(response.content)
        except (
            MalformedResponse,
            InvalidAmount,
            KeyError,
            TypeError,
            ValueError,
            IndexError,
            RecursionError,
        ) as exc:
            detail = f"unreadable answer: {exc}"[:_SNIPPET]
            raise ProviderFailure("invalid_response", detail) from exc


def text_body(content: bytes) -> str:
    """A text answer (a hash, a height), surrounding whitespace stripped."""
    return content.decode("ascii").strip()


def json_body(content: bytes) -> Any:
    """A JSON answer; numbers with a fraction read as Decimal, never as floats."""
    return json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite JSON number {name}")
