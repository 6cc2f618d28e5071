"""The guarded HTTP client: every connection goes to an address the policy vetted."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from keel.core.netguard import resolution
from keel.core.netguard.errors import BlockedDestination, UnresolvableHost
from keel.core.netguard.resolution import Lookup, Resolver, refuse_unless_allowed, system_lookup


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to vetted public addresses.

    ``connect_tcp`` resolves the host itself, refuses it if any address is
    non-public, then connects the inner backend to the vetted IP literal, so no
    second lookup can be rebound. TLS still uses the hostname: httpcore passes
    it separately to ``start_tls`` for SNI and certificate checks. The host is
    judged by :func:`resolve` with ``allow_private`` and ``lookup``; ``resolve``
    replaces that whole step (its answer is still re-checked).
    """

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        resolve: Resolver | None = None,
        allow_private: bool = False,
        lookup: Lookup = system_lookup,
    ) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()
        self._allow_private = allow_private
        if resolve is None:

            async def policy(host: str, port: int) -> list[str]:
                return await resolution.resolve(
                    host, port, allow_private=allow_private, lookup=lookup
                )

            resolve = policy
        self._resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout_at(deadline):
                addresses = await self._resolve(host, port)
        except UnresolvableHost as exc:
            if not exc.transient:
                raise  # "no such name" is an answer: a refusal, like a private address
            # A failing resolver may heal: report it as the connection error httpx would.
            raise httpcore.ConnectError(exc.detail) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        # Belt and braces: re-check whatever the (injectable) resolver returned.
        for address in addresses:
            refuse_unless_allowed(
                host, ipaddress.ip_address(address), allow_private=self._allow_private
            )

        last_error: Exception = httpcore.ConnectError(f"{host!r} has no address to connect to")
        for address in addresses:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the next vetted address
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A unix socket is by definition local.
        raise BlockedDestination(path, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


_ALLOWED_SCHEMES = frozenset({"http", "https"})
_TRANSPORT_KWARGS = ("verify", "http1", "http2", "limits")
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
# The first five would route requests around the guarded transport; ``cert`` is
# deprecated in httpx and would be silently ignored (pass an SSLContext as verify).
_FORBIDDEN_KWARGS = ("transport", "mounts", "proxy", "trust_env", "app", "cert")


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        *,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits | None = None,
        backend: GuardedNetworkBackend | None = None,
        lookup: Lookup = system_lookup,
    ) -> None:
        limits = limits if limits is not None else _DEFAULT_LIMITS
        # One context shared by both pools: loading the CA bundle is not free.
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(
            verify=ssl_context, http1=http1, http2=http2, limits=limits, trust_env=False
        )
        if backend is None:
            backend = GuardedNetworkBackend(allow_private=allow_private, lookup=lookup)
        # httpx 0.28 has no public knob for the httpcore network backend, so swap in a
        # pool built with the same settings plus ours. ``allow_private`` goes through the
        # same backend: hosts are parsed and resolved by the one policy either way.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in _ALLOWED_SCHEMES:
            raise BlockedDestination(
                request.url.host, f"scheme {request.url.scheme!r} is not allowed"
            )
        return await super().handle_async_request(request)


def guarded_client(
    *,
    allow_private: bool = False,
    timeout: float = 10.0,
    lookup: Lookup = system_lookup,
    network: httpcore.AsyncNetworkBackend | None = None,
    **httpx_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that refuses non-public destinations.

    Every connection (including redirect hops, if the caller enables
    ``follow_redirects``) is checked after DNS resolution by :func:`resolve`;
    refusal raises :class:`BlockedDestination` (:class:`UnresolvableHost` for a
    name that does not exist), a failing resolver ``httpx.ConnectError``. Only
    http/https are allowed. ``timeout`` is in seconds. ``allow_private=True``
    lets non-public addresses through (development and tests only). ``lookup``
    replaces the system resolver (tests). ``network`` is the socket layer *under* the
    guard (default: real sockets); it is only ever handed addresses the guard vetted, so a
    test can route a public-looking address to a loopback server. Environment
    proxies are ignored; ``transport``/``mounts``/``proxy``/``trust_env``/``app``
    (which would bypass the check) and ``cert`` raise ``TypeError``. ``verify``,
    ``http1``, ``http2`` and ``limits`` configure the transport; other keyword
    arguments go to ``httpx.AsyncClient``.
    """
    for name in _FORBIDDEN_KWARGS:
        if name in httpx_kwargs:
            raise TypeError(f"guarded_client() does not accept {name!r}")
    transport_kwargs = {k: httpx_kwargs.pop(k) for k in _TRANSPORT_KWARGS if k in httpx_kwargs}
    httpx_kwargs.setdefault("follow_redirects", False)
    backend = GuardedNetworkBackend(network, allow_private=allow_private, lookup=lookup)
    transport = _GuardedTransport(allow_private=allow_private, backend=backend, **transport_kwargs)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **httpx_kwargs)
