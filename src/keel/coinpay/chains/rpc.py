"""JSON-RPC 2.0 over HTTP to one chain's nodes, tried in order with failover.

The providers, their circuit breakers, the failover loop, the network's failures, credentials
and the metrics are :mod:`~keel.coinpay.chains.providers`' (shared with the REST client); this
module says what a JSON-RPC answer means. What moves a call on to the next provider, and counts
against the provider's breaker, on top of the network's failures:

* the server: HTTP 429 or any other status without a JSON-RPC answer in its body (5xx, a 401
  for wrong credentials, a proxy's 502), a body that is not the JSON-RPC reply to the request;
* a JSON-RPC error the server raised about itself: ``-32603`` (internal error), ``-32000`` to
  ``-32099`` (the spec's "server error" range: geth's "header not found" on a lagging node,
  providers' "limit exceeded") and the codes a source adds (Bitcoin Core's ``-28``, warming up);
* a result the caller's ``parse`` cannot read (:class:`MalformedResponse`).

Any other JSON-RPC error is the call's own fault (bad parameters, unknown transaction, method
not found): it is raised at once as :class:`~keel.coinpay.errors.RpcCallRejected` and the node
counts as healthy. A call may name server-range codes that blame it rather than the node
(``rejected_codes``): EVM nodes refuse a transaction with ``-32000`` (geth: "already known",
"nonce too low") or ``-32003`` (EIP-1474 "transaction rejected", anvil), which another provider
would refuse just the same, and which must not open a healthy node's breaker. Bitcoin Core
sends a call's own error with HTTP 500 or 404, so the JSON body decides, not the status. When
no provider answers, :class:`~keel.coinpay.errors.ChainUnavailable` is raised (after ``rounds``
passes over the list, with a short jittered pause between passes).

Nodes that frame JSON-RPC their own way (rippled wraps ``params`` in a one-element list and
reports a call's error inside ``result``) plug in a :class:`Framing`: it writes the request and
turns the node's reply into the JSON-RPC 2.0 shape above, so the failover rules apply unchanged
(a framed node's "node is not ready" codes go in ``transient_codes``).

JSON numbers with a fraction or exponent are read as ``Decimal`` (a UTXO node writes amounts in
whole coins), never as floats; requests are written the same way.

Metrics: ``coinpay_rpc_errors_total{chain,provider,kind}``, ``coinpay_rpc_seconds{chain,provider,
method}`` and ``keel_circuit_state{name="coinpay_rpc:<CHAIN>:<provider>"}`` (see providers.py).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Protocol, TypeVar, overload

import httpx
import simplejson

from keel.coinpay.chains.providers import (
    DEFAULT_TIMEOUT_SECONDS,
    MalformedResponse,
    Provider,
    ProviderFailure,
    ProviderPool,
    breaker_name,
    default_breaker,
    provider_label,
)
from keel.coinpay.errors import InvalidAmount, RpcCallRejected
from keel.core.resilience import CircuitBreaker

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "Framing",
    "MalformedResponse",
    "Provider",
    "ProviderFailure",
    "RpcClient",
    "breaker_name",
    "default_breaker",
    "provider_label",
]

T = TypeVar("T")
Params = Sequence[object] | Mapping[str, object]


class Framing(Protocol):
    """How a node family writes a JSON-RPC call and its reply when not as JSON-RPC 2.0 does."""

    def request(self, request_id: int, method: str, params: Params) -> object:
        """The JSON body of one call."""
        ...

    def reply(self, body: object, request_id: int) -> object:
        """The node's reply as a JSON-RPC 2.0 reply to ``request_id`` (``{"id", "result"}`` or
        ``{"id", "error": {"code", "message"}}``); MalformedResponse when it is neither."""
        ...


# JSON-RPC 2.0: -32603 internal error, -32099..-32000 reserved for implementation-defined
# server errors. The other reserved codes (-32700 parse, -32600 invalid request, -32601 method
# not found, -32602 invalid params) blame the request.
_INTERNAL_ERROR: Final = -32603
_SERVER_ERRORS: Final = range(-32099, -31999)
_SNIPPET: Final = 200
_JSON: Final = {"Content-Type": "application/json"}


def _reject_constant(name: str) -> object:
    raise ValueError(f"non-finite JSON number {name}")


def _loads(content: bytes) -> object:
    return json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)


class RpcClient:
    """JSON-RPC 2.0 client for one chain's providers (see the module docstring).

    ``urls`` are tried in order. ``client`` is shared when given (and then not closed by
    :meth:`aclose`); otherwise one is made that ignores proxy variables in the environment.
    ``transient_codes`` are JSON-RPC error codes that mean "this node cannot answer now" on
    this chain family, on top of the spec's server-error codes. ``breaker`` makes each
    provider's breaker from its name (:func:`default_breaker`; another factory must count
    only :class:`ProviderFailure` as failure). A call makes ``rounds`` passes over the
    providers, pausing up to ``round_pause_seconds`` (jittered) between passes. ``framing``
    adapts a node that is not JSON-RPC 2.0 on the wire (:class:`Framing`; ``batch`` then is
    not available).
    """

    def __init__(
        self,
        chain: str,
        urls: Sequence[str],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        rounds: int = 2,
        round_pause_seconds: float = 0.2,
        transient_codes: Sequence[int] = (),
        breaker: Callable[[str], CircuitBreaker] = default_breaker,
        client: httpx.AsyncClient | None = None,
        framing: Framing | None = None,
    ) -> None:
        self._pool = ProviderPool(
            chain,
            urls,
            timeout_seconds=timeout_seconds,
            rounds=rounds,
            round_pause_seconds=round_pause_seconds,
            breaker=breaker,
            client=client,
        )
        self.chain = chain
        self.providers: tuple[Provider, ...] = self._pool.providers
        self.timeout_seconds = timeout_seconds
        self._transient = frozenset(transient_codes)
        self._framing = framing
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    @overload
    async def call(
        self,
        method: str,
        params: Params = (),
        *,
        timeout_seconds: float | None = None,
        rejected_codes: Collection[int] = (),
    ) -> Any: ...

    @overload
    async def call(
        self,
        method: str,
        params: Params = (),
        *,
        parse: Callable[[Any], T],
        timeout_seconds: float | None = None,
        rejected_codes: Collection[int] = (),
    ) -> T: ...

    async def call(
        self,
        method: str,
        params: Params = (),
        *,
        parse: Callable[[Any], Any] | None = None,
        timeout_seconds: float | None = None,
        rejected_codes: Collection[int] = (),
    ) -> Any:
        """``method(params)``'s result, read by ``parse`` (which raises MalformedResponse for a
        result it cannot read). Raises RpcCallRejected for the call's own JSON-RPC error (and
        for ``rejected_codes``, which this call's server errors mean) and ChainUnavailable when
        no provider answered."""
        request_id = next(self._ids)
        framing = self._framing
        payload: object = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        if framing is not None:
            payload = framing.request(request_id, method, params)

        def read(body: object) -> Any:
            if framing is not None:
                try:
                    body = framing.reply(body, request_id)
                except MalformedResponse as exc:
                    raise ProviderFailure("invalid_response", str(exc)[:_SNIPPET]) from exc
            return _parse(parse, self._result(body, request_id, rejected_codes))

        return await self._failover(method, payload, read, timeout_seconds)

    async def batch(
        self,
        calls: Sequence[tuple[str, Params]],
        *,
        parse: Callable[[Any], T],
        timeout_seconds: float | None = None,
    ) -> list[T | RpcCallRejected]:
        """Several calls in one HTTP request (a JSON-RPC batch), answered in the order given:
        each a result read by ``parse`` or the RpcCallRejected of that call alone. A transient
        error in any item fails the provider for the whole batch. Raises ChainUnavailable."""
        if self._framing is not None:
            raise TypeError(f"{self.chain}: a framed RPC client sends no JSON-RPC batches")
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        label = calls[0][0] if len({m for m, _ in calls}) == 1 else "batch"

        def read(body: object) -> list[T | RpcCallRejected]:
            if not isinstance(body, list):
                raise ProviderFailure("invalid_response", "a batch answered with a non-list")
            by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
            out: list[T | RpcCallRejected] = []
            for request_id in ids:
                if request_id not in by_id:
                    raise ProviderFailure("invalid_response", f"batch lacks reply {request_id}")
                try:
                    out.append(_parse(parse, self._result(by_id[request_id], request_id)))
                except RpcCallRejected as exc:
                    out.append(exc)
            return out

        result: list[T | RpcCallRejected] = await self._failover(
            label, payload, read, timeout_seconds
        )
        return result

    async def _failover(
        self,
        method: str,
        payload: object,
        read: Callable[[object], T],
        timeout_seconds: float | None,
    ) -> T:
        content = simplejson.dumps(payload, use_decimal=True).encode()

        async def attempt(provider: Provider, seconds: float) -> T:
            response = await self._pool.send(
                provider, method, seconds, content=content, headers=_JSON
            )
            return read(self._body(response))

        return await self._pool.failover(method, attempt, timeout_seconds=timeout_seconds)

    @staticmethod
    def _body(response: httpx.Response) -> object:
        status = response.status_code
        if status == 429:
            raise ProviderFailure("rate_limited", "HTTP 429 (rate limited)")
        try:
            body = _loads(response.content)
        except (ValueError, RecursionError):
            kind = f"http_{status // 100}xx" if status >= 300 else "invalid_response"
            raise ProviderFailure(
                kind, f"HTTP {status} without JSON: {response.text[:_SNIPPET]!r}"
            ) from None
        # Bitcoin Core answers a call's own error with HTTP 500/404 and a JSON-RPC body: the
        # body decides. Anything else not 2xx is the server failing.
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return body
        if isinstance(body, list) and status < 300:
            return body
        if status >= 300:
            raise ProviderFailure(f"http_{status // 100}xx", f"HTTP {status}")
        return body

    def _result(
        self, body: object, request_id: int, rejected_codes: Collection[int] = ()
    ) -> object:
        if not isinstance(body, dict) or body.get("id") != request_id:
            raise ProviderFailure("invalid_response", "not the JSON-RPC reply to the request")
        error = body.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            message = str(error.get("message", ""))[:_SNIPPET] if isinstance(error, dict) else ""
            if not isinstance(code, int) or isinstance(code, bool):
                raise ProviderFailure("invalid_response", f"malformed error {error!r:.200}")
            server = code == _INTERNAL_ERROR or code in _SERVER_ERRORS or code in self._transient
            if server and code not in rejected_codes:
                raise ProviderFailure("rpc_server", f"error {code}: {message}")
            raise RpcCallRejected(
                f"{self.chain}: the node rejected the call: {code} {message}",
                rpc_code=code,
                rpc_message=message,
            )
        if "result" not in body:
            raise ProviderFailure("invalid_response", "a reply with neither result nor error")
        return body["result"]


def _parse(parse: Callable[[Any], T] | None, result: object) -> T:
    if parse is None:
        return result  # type: ignore[return-value]
    try:
        return parse(result)
    except (MalformedResponse, InvalidAmount, KeyError, TypeError, ValueError) as exc:
        raise ProviderFailure("invalid_response", f"unreadable result: {exc}"[:_SNIPPET]) from exc
