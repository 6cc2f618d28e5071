"""One chain's providers, tried in order with failover: what talking to a chain's nodes is,
whatever they speak (JSON-RPC in :mod:`~keel.coinpay.chains.rpc`, REST in
:mod:`~keel.coinpay.chains.rest`).

A chain is configured with several provider URLs (``KEEL_COINPAY_<CHAIN>_RPC_URLS``): the first
is preferred, the next ones take over while it fails. Each provider has its own circuit breaker
(``keel.core.resilience``), so a dead node costs one refused connection, then nothing until its
breaker lets a probe through again. :class:`ProviderPool` owns that loop; a client hands it one
*attempt* (ask this provider, read its answer) and raises :class:`ProviderFailure` from it when
the provider, not the request, is at fault. Everything else an attempt raises (a call's own
error) leaves the loop at once and counts as the provider working.

The network's failures are the pool's: connection refused or reset, a timeout
(``timeout_seconds`` bounds the whole exchange), a malformed HTTP exchange.

Credentials: ``http://user:pass@host`` is sent as HTTP basic auth, and a provider is shown in
logs, errors and metric labels only as ``scheme://host:port`` (:func:`provider_label`): hosted
providers put their API key in the path (``/v3/<key>``), so the path is never shown either.

Metrics: ``coinpay_rpc_errors_total{chain,provider,kind}`` counts provider failures,
``coinpay_rpc_seconds{chain,provider,method}`` times round trips, and each provider's breaker
state is ``keel_circuit_state{name="coinpay_rpc:<CHAIN>:<provider>"}`` (exported by the breaker).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import httpx
import structlog
from prometheus_client import Counter, Histogram

from keel.coinpay.errors import ChainUnavailable
from keel.core.resilience import CircuitBreaker, CircuitOpen

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "MalformedResponse",
    "Provider",
    "ProviderFailure",
    "ProviderPool",
    "breaker_name",
    "default_breaker",
    "provider_label",
    "send_breaker",
]

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS: Final = 10.0

log = structlog.get_logger("keel.coinpay.chains.rpc")

RPC_ERRORS = Counter(
    "coinpay_rpc_errors_total",
    "Chain provider failures (the call moved on to the next provider) by kind.",
    ["chain", "provider", "kind"],
)
RPC_SECONDS = Histogram(
    "coinpay_rpc_seconds",
    "Chain provider round trips to one provider, answered or not.",
    ["chain", "provider", "method"],
)


class MalformedResponse(Exception):
    """A node's result is not what the method returns: the provider is broken (or not the chain
    we think), so the call moves on to the next provider. Raised by ``parse`` functions."""


class ProviderFailure(Exception):
    """One provider failed (not the call): it is counted, and the call moves on to the next
    provider. Never leaves a :class:`ProviderPool`; a breaker factory passed to it must count
    exactly this as failure (``failure_on=(ProviderFailure,)``)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def provider_label(url: str) -> str:
    """``scheme://host:port`` of a provider URL: no user, password, path or query (hosted
    providers carry their API key in the path). Raises ValueError for a URL httpx rejects."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError("not a valid URL") from exc
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme, 0)
    host = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    return f"{parsed.scheme}://{host}:{port}"


def breaker_name(chain: str, label: str) -> str:
    """The circuit breaker's name (and ``keel_circuit_state`` label) of one provider."""
    return f"coinpay_rpc:{chain}:{label}"


def default_breaker(name: str) -> CircuitBreaker:
    """Opens when half of at least 4 calls within a minute failed; probes again after 30 s
    with one call. Only provider failures count: a rejected call means the node works."""
    return CircuitBreaker(
        name,
        minimum_calls=4,
        failure_rate_threshold=0.5,
        window_seconds=60.0,
        open_seconds=30.0,
        half_open_max_calls=1,
        failure_on=(ProviderFailure,),
    )


def send_breaker(name: str) -> CircuitBreaker:
    """A sender's own breaker per provider (``<name>:send``): a sweep's calls never share
    the scanner's breaker, so ``keel_circuit_state`` tells the two apart."""
    return default_breaker(f"{name}:send")


@dataclass(frozen=True)
class Provider:
    """One node: where requests go (``url`` holds no credentials but may hold a key in its
    path, so it is never shown), its basic-auth credentials, and its breaker."""

    label: str
    url: str
    auth: httpx.BasicAuth | None
    breaker: CircuitBreaker

    def __repr__(self) -> str:
        return f"Provider({self.label!r})"


def _provider(
    chain: str, index: int, raw: str, labels: set[str], breaker: Callable[[str], CircuitBreaker]
) -> Provider:
    label = provider_label(raw)
    if label in labels:  # two URLs on one host:port (different paths): keep labels unique
        label = f"{label}#{index + 1}"
    labels.add(label)
    parsed = httpx.URL(raw)
    auth = None
    if parsed.userinfo:
        auth = httpx.BasicAuth(parsed.username, parsed.password)
        parsed = parsed.copy_with(username=None, password=None)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"provider {index + 1} ({label}) is not an http(s) URL with a host")
    return Provider(label, str(parsed), auth, breaker(breaker_name(chain, label)))


Attempt = Callable[[Provider, float], Awaitable[T]]


class ProviderPool:
    """The providers of one chain and the loop that tries them (see the module docstring).

    ``urls`` are tried in order. ``client`` is shared when given (and then not closed by
    :meth:`aclose`); otherwise one is made that ignores proxy variables in the environment.
    ``breaker`` makes each provider's breaker from its name (:func:`default_breaker`; another
    factory must count only :class:`ProviderFailure` as failure). A call makes ``rounds``
    passes over the providers, pausing up to ``round_pause_seconds`` (jittered) between
    passes. ``speaks`` names the protocol in messages (``RPC``, ``Esplora``).
    """

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
        speaks: str = "RPC",
    ) -> None:
        if not urls:
            raise ValueError(f"{chain}: at least one {speaks} URL is needed")
        if timeout_seconds <= 0 or rounds < 1 or round_pause_seconds < 0:
            raise ValueError("timeout_seconds must be positive, rounds at least 1")
        self.chain = chain
        self.speaks = speaks
        labels: set[str] = set()
        self.providers: tuple[Provider, ...] = tuple(
            _provider(chain, i, url, labels, breaker) for i, url in enumerate(urls)
        )
        self.timeout_seconds = timeout_seconds
        self._rounds = rounds
        self._pause = round_pause_seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            trust_env=False, headers={"User-Agent": "keel-coinpay"}
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def failover(
        self, method: str, attempt: Attempt[T], *, timeout_seconds: float | None = None
    ) -> T:
        """What ``attempt(provider, seconds)`` returns for the first provider it succeeds on,
        over ``rounds`` passes; a ProviderFailure it raises is counted against that provider
        (metric, log, breaker) and the next one is tried. Anything else it raises is the call's
        own outcome and propagates at once. Raises ChainUnavailable when no provider answered."""
        timeout = timeout_seconds or self.timeout_seconds
        failures: list[str] = []
        for round_ in range(self._rounds):
            if round_:
                await asyncio.sleep(random.random() * self._pause)
            for provider in self.providers:
                try:
                    async with provider.breaker.guard():
                        try:
                            return await attempt(provider, timeout)
                        except ProviderFailure as exc:
                            self._count(provider, method, exc)
                            raise
                except CircuitOpen:
                    failures.append(f"{provider.label}: circuit open")
                except ProviderFailure as exc:
                    failures.append(f"{provider.label}: {exc.detail}")
        raise ChainUnavailable(
            f"{self.chain}: no {self.speaks} provider answered {method}: "
            + "; ".join(failures[-4:]),
            chain=self.chain,
        )

    async def send(
        self,
        provider: Provider,
        method: str,
        seconds: float,
        *,
        verb: str = "POST",
        path: str = "",
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One HTTP exchange with ``provider`` (``path`` appended to its URL's own path, its
        query kept, ``params`` added to it), timed in ``coinpay_rpc_seconds`` under ``method``.
        A network failure or a timeout raises ProviderFailure; any answer, whatever its
        status, is returned."""
        url = httpx.URL(provider.url)
        if path:
            url = url.copy_with(path=url.path.rstrip("/") + path)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(seconds):
                return await self._client.request(
                    verb,
                    url,
                    content=content,
                    headers=headers,
                    params=params,
                    auth=provider.auth or httpx.USE_CLIENT_DEFAULT,
                    timeout=seconds,
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise ProviderFailure("timeout", f"no answer within {seconds:g} s") from exc
        except httpx.ConnectError as exc:
            raise ProviderFailure("connect", f"cannot connect: {exc}") from exc
        except httpx.TransportError as exc:
            raise ProviderFailure("transport", f"{type(exc).__name__}: {exc}") from exc
        finally:
            RPC_SECONDS.labels(self.chain, provider.label, method).observe(
                time.perf_counter() - started
            )

    def _count(self, provider: Provider, method: str, exc: ProviderFailure) -> None:
        RPC_ERRORS.labels(self.chain, provider.label, exc.kind).inc()
        log.warning(
            "chain rpc provider failed",
            chain=self.chain,
            provider=provider.label,
            method=method,
            kind=exc.kind,
            error=exc.detail,
        )
