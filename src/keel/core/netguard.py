"""Outbound HTTP that refuses internal destinations (SSRF protection).

Anything that fetches a user-supplied URL (webhook delivery, callbacks) must go
through :func:`guarded_client`. The check runs inside the connection layer,
*after* DNS resolution, and the socket is opened to the exact address that was
vetted. Checking the URL first and letting the HTTP library resolve again would
be a TOCTOU hole: a DNS-rebinding attacker answers the first lookup with a
public address and the second with ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from keel.core.errors import Forbidden

__all__ = [
    "BlockedDestination",
    "GuardedNetworkBackend",
    "UnresolvableHost",
    "guarded_client",
    "is_public_ip",
    "resolve_public",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Everything here is "not globally reachable" per the IANA special-purpose
# registries, plus deprecated anycast. Whole blocks are refused even where IANA
# marks a few single addresses global: a webhook never legitimately targets them.
_BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = (
    _V4("0.0.0.0/8"),  # "this network"; 0.0.0.0 reaches localhost on Linux
    _V4("10.0.0.0/8"),
    _V4("100.64.0.0/10"),  # CGNAT shared space: internal to the carrier
    _V4("127.0.0.0/8"),
    _V4("169.254.0.0/16"),  # link-local, incl. cloud metadata 169.254.169.254
    _V4("172.16.0.0/12"),
    _V4("192.0.0.0/24"),  # IETF protocol assignments
    _V4("192.0.2.0/24"),  # TEST-NET-1
    _V4("192.88.99.0/24"),  # deprecated 6to4 relay anycast
    _V4("192.168.0.0/16"),
    _V4("198.18.0.0/15"),  # benchmarking
    _V4("198.51.100.0/24"),  # TEST-NET-2
    _V4("203.0.113.0/24"),  # TEST-NET-3
    _V4("224.0.0.0/4"),  # multicast
    _V4("240.0.0.0/4"),  # reserved, incl. broadcast 255.255.255.255
)

# Only global unicast (2000::/3) can be public; everything outside it is
# loopback, ULA, link-/site-local, multicast or unassigned.
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = (
    _V6("2001::/23"),  # IETF protocol assignments, incl. Teredo 2001::/32
    _V6("2001:db8::/32"),  # documentation
    _V6("3fff::/20"),  # documentation (RFC 9637)
)
_IPV4_COMPAT_V6 = _V6("::/96")  # deprecated IPv4-compatible form
_NAT64_V6 = _V6("64:ff9b::/96")  # well-known NAT64 prefix: embeds a v4 address


def is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` is a globally routable unicast address safe to connect to.

    IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4
    ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the embedded address,
    because the packet ultimately reaches that IPv4 host.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in _BLOCKED_V4)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return is_public_ip(embedded)
    if ip in _IPV4_COMPAT_V6:
        # Deprecated since RFC 4291 and never legitimately used; also covers :: and ::1.
        return False
    if ip not in _GLOBAL_UNICAST_V6:
        return False
    return not any(ip in net for net in _BLOCKED_V6)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_V6:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class BlockedDestination(Forbidden):
    """The outbound destination is not allowed."""

    code = "destination_blocked"
    title = "Destination blocked"

    def __init__(self, host: str, reason: str) -> None:
        # Only the host is named: a full URL could carry secrets in its query string.
        self.host = host
        self.reason = reason
        super().__init__(f"destination {host!r} is not allowed: {reason}", host=host)


class UnresolvableHost(BlockedDestination):
    """The destination host name does not resolve."""

    code = "destination_unresolvable"
    title = "Destination unresolvable"


def _parse_ip_literal(host: str) -> IPAddress | None:
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


async def resolve_public(host: str, port: int) -> list[str]:
    """Resolve ``host`` and return its addresses, all verified public.

    Raises :class:`BlockedDestination` if the host is a non-public IP literal or
    if *any* resolved address is non-public (an attacker controlling DNS can
    mix a public and a private answer), and :class:`UnresolvableHost` if the
    name does not resolve.
    """
    literal = _parse_ip_literal(host)
    if literal is not None:
        if not is_public_ip(literal):
            raise BlockedDestination(host, f"{literal} is not a public address")
        return [str(literal)]

    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(host, f"does not resolve ({exc})") from exc

    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(host, "resolves to no IPv4/IPv6 address")
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not is_public_ip(ip):
            raise BlockedDestination(host, f"resolves to non-public address {ip}")
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to vetted public addresses.

    ``connect_tcp`` resolves the host itself, refuses it if any address is
    non-public, then connects the inner backend to the vetted IP literal, so no
    second lookup can be rebound. TLS still uses the hostname: httpcore passes
    it separately to ``start_tls`` for SNI and certificate checks.
    """

    def __init__(
        self,
        inner: httpcore.AsyncNetworkBackend | None = None,
        *,
        resolve: Resolver = resolve_public,
    ) -> None:
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()
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
            # DNS failure is a (usually transient) connection error, not a policy
            # refusal: map it so httpx raises ConnectError like it normally would.
            raise httpcore.ConnectError(exc.detail) from exc
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        # Belt and braces: re-check whatever the (injectable) resolver returned.
        for address in addresses:
            if not is_public_ip(ipaddress.ip_address(address)):
                raise BlockedDestination(host, f"resolves to non-public address {address}")

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
    ) -> None:
        limits = limits if limits is not None else _DEFAULT_LIMITS
        # One context shared by both pools: loading the CA bundle is not free.
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(
            verify=ssl_context, http1=http1, http2=http2, limits=limits, trust_env=False
        )
        if not allow_private:
            # httpx 0.28 has no public knob for the httpcore network backend, so
            # swap in a pool built with the same settings plus our backend.
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                http1=http1,
                http2=http2,
                network_backend=backend if backend is not None else GuardedNetworkBackend(),
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme not in _ALLOWED_SCHEMES:
            raise BlockedDestination(
                request.url.host, f"scheme {request.url.scheme!r} is not allowed"
            )
        return await super().handle_async_request(request)


def guarded_client(
    *, allow_private: bool = False, timeout: float = 10.0, **httpx_kwargs: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that refuses non-public destinations.

    Every connection (including redirect hops, if the caller enables
    ``follow_redirects``) is checked after DNS resolution; refusal raises
    :class:`BlockedDestination`, DNS failure ``httpx.ConnectError``. Only
    http/https are allowed. ``timeout`` is in seconds. ``allow_private=True``
    disables the address check (development and tests only). Environment
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
    transport = _GuardedTransport(allow_private=allow_private, **transport_kwargs)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **httpx_kwargs)
