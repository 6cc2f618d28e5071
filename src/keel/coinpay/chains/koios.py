"""Koios REST calls (``/api/v1``) over the JSON-RPC client's provider failover.

Koios is PostgREST in front of cardano-db-sync: ``GET`` views with query filters
(``/blocks?block_height=eq.5``), ``POST`` functions with a JSON body (``/tx_info``), and
``POST /submittx`` with the raw transaction as ``application/cbor``.

A thin adapter: :class:`KoiosClient` is an :class:`~keel.coinpay.chains.rpc.RpcClient` whose
requests are REST requests instead of JSON-RPC posts, sent through the same
:class:`~keel.coinpay.chains.providers.ProviderPool`: the provider list and its labels and
basic-auth credentials, one circuit breaker per provider (``default_breaker``), the passes over
the providers with a jittered pause and ``ChainUnavailable`` when none answers, and the failure
metrics and log line. What moves a call on to the next provider:

* the network (refused, reset, timeout) and HTTP 429, 5xx, 3xx and 4xx other than 400 and 413
  (a 401 or 404 is a provider that is not Koios v1 or not ours);
* a body that is not JSON, or that ``parse`` cannot read (:class:`MalformedResponse`).

HTTP 400 and 413 blame the call (a bad filter, a rejected transaction, too many hashes): they
raise :class:`~keel.coinpay.errors.RpcCallRejected` with the status as ``rpc_code`` and the
body's text as ``rpc_message``, and the provider counts as healthy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

import httpx

from keel.coinpay.chains.rpc import MalformedResponse, Provider, ProviderFailure, RpcClient
from keel.coinpay.errors import InvalidAmount, RpcCallRejected

__all__ = ["KoiosClient"]

T = TypeVar("T")

_CALL_ERRORS: Final = frozenset({400, 413})
_SNIPPET: Final = 200
_MESSAGE: Final = 2000


class KoiosClient(RpcClient):
    """REST client of one chain's Koios providers (module docstring). Built like an
    ``RpcClient``: ``KoiosClient("ADA", urls, timeout_seconds=...)``, each URL the API's base
    (``https://api.koios.rest/api/v1``)."""

    async def get(
        self,
        path: str,
        query: Mapping[str, str],
        *,
        parse: Callable[[Any], T],
        timeout_seconds: float | None = None,
    ) -> T:
        """``GET <base><path>?<query>`` read by ``parse``; RpcCallRejected, ChainUnavailable."""
        return await self._rest(
            {"verb": "GET", "path": path, "query": dict(query)}, parse, timeout_seconds
        )

    async def post(
        self,
        path: str,
        body: Mapping[str, object],
        *,
        parse: Callable[[Any], T],
        timeout_seconds: float | None = None,
    ) -> T:
        """``POST <base><path>`` with a JSON body, read by ``parse``."""
        return await self._rest(
            {"verb": "POST", "path": path, "json": dict(body)}, parse, timeout_seconds
        )

    async def post_cbor(
        self,
        path: str,
        data: bytes,
        *,
        parse: Callable[[Any], T],
        timeout_seconds: float | None = None,
    ) -> T:
        """``POST <base><path>`` with ``data`` as ``application/cbor`` (``/submittx``)."""
        return await self._rest(
            {"verb": "POST", "path": path, "cbor": data.hex()}, parse, timeout_seconds
        )

    async def _rest(
        self, request: dict[str, Any], parse: Callable[[Any], T], timeout_seconds: float | None
    ) -> T:
        def read(body: object) -> T:
            try:
                return parse(body)
            except (MalformedResponse, InvalidAmount, KeyError, TypeError, ValueError) as exc:
                raise ProviderFailure(
                    "invalid_response", f"unreadable result: {exc}"[:_SNIPPET]
                ) from exc

        async def attempt(provider: Provider, seconds: float) -> T:
            response = await self._pool.send(
                provider,
                request["path"],
                seconds,
                verb=request["verb"],
                path=request["path"],
                params=request.get("query"),
                **_content(request),
            )
            return read(self._rest_body(response))

        return await self._pool.failover(request["path"], attempt, timeout_seconds=timeout_seconds)

    def _rest_body(self, response: httpx.Response) -> object:
        status = response.status_code
        if status == 429:
            raise ProviderFailure("rate_limited", "HTTP 429 (rate limited)")
        if status in _CALL_ERRORS:
            text = response.text[:_MESSAGE]
            raise RpcCallRejected(
                f"{self.chain}: the provider rejected the call: HTTP {status} {text[:_SNIPPET]}",
                rpc_code=status,
                rpc_message=text,
            )
        if status >= 300:
            raise ProviderFailure(f"http_{status // 100}xx", f"HTTP {status}")
        try:
            return json.loads(response.content, parse_float=Decimal)
        except (ValueError, RecursionError):
            raise ProviderFailure(
                "invalid_response", f"HTTP {status} without JSON: {response.text[:_SNIPPET]!r}"
            ) from None


def _content(request: Mapping[str, Any]) -> dict[str, Any]:
    if request.get("cbor") is not None:
        return {
            "content": bytes.fromhex(request["cbor"]),
            "headers": {"Content-Type": "application/cbor", "Accept": "application/json"},
        }
    if request.get("json") is not None:
        return {
            "content": json.dumps(request["json"]).encode(),
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
        }
    return {"headers": {"Accept": "application/json"}}
