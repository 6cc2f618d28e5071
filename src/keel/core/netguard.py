"""Outbound HTTP that refuses internal destinations (SSRF protection): the one policy.

Anything that fetches a user-supplied URL (webhook delivery, callbacks) must go
through :func:`guarded_client`. The check runs inside the connection layer,
*after* DNS resolution, and the socket is opened to the exact address that was
vetted. Checking the URL first and letting the HTTP library resolve again would
be a TOCTOU hole: a DNS-rebinding attacker answers the first lookup with a
public address and the second with ``127.0.0.1``.

Registration-time checks (:func:`vet_url`) run the same code on the same host
string the client will hand to its connection layer (``httpx.URL(url).host``),
so a URL accepted at registration is judged identically at delivery. A host is
read as a browser would (WHATWG URL host parsing, :func:`parse_host`), which is
at least as strict as the C library the client resolves with: ``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1`` and ``%31%32%37.0.0.1`` are all ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

import httpcore
import httpx
import idna

from keel.core.errors import Forbidden

__all__ = [
    "BlockedDestination",
    "GuardedNetworkBackend",
    "Lookup",
    "UnresolvableHost",
    "guarded_client",
    "is_public_ip",
    "non_public_reason",
    "parse_host",
    "resolve",
    "resolve_public",
    "system_lookup",
    "vet_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> addresses. ``resolve_public`` and ``resolve`` fit it (they vet), and so does
# a plain name lookup like ``system_lookup`` (the seam tests replace with a fake DNS).
Resolver = Callable[[str, int], Awaitable[list[str]]]
Lookup = Resolver

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Everything here is "not globally reachable" per the IANA special-purpose
# registries, plus deprecated anycast. Whole blocks are refused even where IANA
# marks a few single addresses global: a webhook never legitimately targets them.
_BLOCKED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),  # "this network"; 0.0.0.0 reaches localhost on Linux
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "shared (CGNAT)"),  # internal to the carrier
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),  # incl. cloud metadata 169.254.169.254
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "IETF protocol"),
    (_V4("192.0.2.0/24"), "documentation"),  # TEST-NET-1
    (_V4("192.88.99.0/24"), "6to4 relay anycast"),  # deprecated
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),  # TEST-NET-2
    (_V4("203.0.113.0/24"), "documentation"),  # TEST-NET-3
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # incl. broadcast 255.255.255.255
)

# Only global unicast (2000::/3) can be public; everything outside it is
# loopback, ULA, link-/site-local, multicast or unassigned.
_GLOBAL_UNICAST_V6 = _V6("2000::/3")
_OUTSIDE_GLOBAL_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("fc00::/7"), "unique-local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("2001::/23"), "IETF protocol"),  # incl. Teredo 2001::/32
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("3fff::/20"), "documentation"),  # RFC 9637
)
_IPV4_COMPAT_V6 = _V6("::/96")  # deprecated IPv4-compatible form
_NAT64_V6 = _V6("64:ff9b::/96")  # well-known NAT64 prefix: embeds a v4 address


def non_public_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be connected to (e.g. ``"loopback 127.0.0.1"``); None if public.

    IPv6 forms that embed an IPv4 address (mapped ``::ffff:a.b.c.d``, 6to4
    ``2002::/16``, NAT64 ``64:ff9b::/96``) are judged by the embedded address,
    because the packet ultimately reaches that IPv4 host.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return next((f"{label} {ip}" for net4, label in _BLOCKED_V4 if ip in net4), None)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = non_public_reason(embedded)
        return None if reason is None else f"{reason} (embedded in {ip})"
    if ip in _IPV4_COMPAT_V6:
        # Deprecated since RFC 4291 and never legitimately used; also covers :: and ::1.
        label = {0: "unspecified", 1: "loopback"}.get(int(ip), "IPv4-compatible")
        return f"{label} {ip}"
    if ip not in _GLOBAL_UNICAST_V6:
        label = next((lb for net, lb in _OUTSIDE_GLOBAL_V6 if ip in net), "reserved")
        return f"{label} {ip}"
    return next((f"{label} {ip}" for net6, label in _BLOCKED_V6 if ip in net6), None)


def is_public_ip(ip: IPAddress) -> bool:
    """Whether ``ip`` is a globally routable unicast address safe to connect to."""
    return non_public_reason(ip) is None


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
    """The destination host name does not resolve.

    ``transient`` is True when the resolver failed (timeout, server failure) rather than
    answering that the name does not exist: such a failure may heal, so the connection layer
    reports it as an ordinary ``httpx.ConnectError`` instead of a refusal.
    """

    code = "destination_unresolvable"
    title = "Destination unresolvable"

    def __init__(self, host: str, reason: str, *, transient: bool = False) -> None:
        super().__init__(host, reason)
        self.transient = transient


# ---------------------------------------------------------------------------- host parsing

# WHATWG "forbidden domain code points": none of these can be in a host after decoding.
_FORBIDDEN_IN_DOMAIN = frozenset(" #%/:<>?@[\\]^|") | {chr(c) for c in range(0x20)} | {"\x7f"}
_HEX = frozenset("0123456789abcdefABCDEF")
_DEC = frozenset("0123456789")
_OCT = frozenset("01234567")
_MAX_IPV4_PART = 64  # characters; only leading zeros could make a real one longer than 35


def parse_host(host: str) -> IPAddress | str:
    """The address ``host`` denotes, or its normalised ASCII domain name.

    Follows the WHATWG URL standard's host parser, which is what browsers do and a superset
    of what the C library's resolver reads as a number: a bracketed (or bare) IPv6 literal;
    percent-decoding; IDNA/UTS-46 mapping (fullwidth digits and dots, case); and the IPv4
    number forms of ``inet_aton`` (1 to 4 parts, each decimal, ``0``-prefixed octal or
    ``0x`` hex, the last part filling the remaining bytes), with one trailing dot allowed.
    A domain is returned lower-cased, without a trailing dot. Raises
    :class:`BlockedDestination` for a host that no client can connect to (``1.2.3.4.5``,
    ``0x100000000``, an empty or undecodable host).
    """
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise BlockedDestination(host, "is not a valid IPv6 address") from exc
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)  # httpx hands the connection layer no brackets
        except ValueError as exc:
            raise BlockedDestination(host, "is not a valid host") from exc
    try:
        decoded = unquote_to_bytes(host).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlockedDestination(host, "is not a valid host (percent-encoding)") from exc
    if decoded.isascii():
        ascii_host = decoded.lower()
    else:
        try:
            ascii_host = idna.encode(decoded, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise BlockedDestination(host, f"is not a valid host ({exc})") from exc
    if not ascii_host.strip(".") or _FORBIDDEN_IN_DOMAIN.intersection(ascii_host):
        raise BlockedDestination(host, "is not a valid host")
    ipv4 = _parse_ipv4(host, ascii_host)
    if ipv4 is not None:
        return ipv4
    return ascii_host[:-1] if ascii_host.endswith(".") else ascii_host


def _parse_ipv4(original: str, host: str) -> ipaddress.IPv4Address | None:
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    last = parts[-1]
    ends_in_number = bool(last) and (
        set(last) <= _DEC or (last[:2] in ("0x", "0X") and set(last[2:]) <= _HEX)
    )
    if not ends_in_number:
        return None  # a domain name
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or None in numbers:
        raise BlockedDestination(original, "ends in a number but is not an IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise BlockedDestination(original, "is an IPv4 address out of range")
    value = values[-1]
    for i, n in enumerate(values[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _ipv4_number(part: str) -> int | None:
    # Explicit digit sets: int() would also take "_", "+", spaces and non-ASCII digits.
    if len(part) > _MAX_IPV4_PART:
        return None  # no 32-bit number needs it; int() refuses long decimal strings anyway
    if part[:2] in ("0x", "0X"):
        digits = part[2:]
        if not digits:
            return 0  # WHATWG: a bare "0x" is zero
        return int(digits, 16) if set(digits) <= _HEX else None
    if len(part) > 1 and part.startswith("0"):
        return int(part[1:], 8) if set(part[1:]) <= _OCT else None
    return int(part) if part and set(part) <= _DEC else None


def _is_localhost(name: str) -> bool:
    # RFC 6761: "localhost" and its subdomains are loopback whatever DNS says.
    return name == "localhost" or name.endswith(".localhost")


# ---------------------------------------------------------------------------- the policy


async def system_lookup(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (de-duplicated, in order).

    Raises :class:`UnresolvableHost`, ``transient`` unless the answer was "no such name".
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        transient = exc.errno not in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None))
        raise UnresolvableHost(host, f"does not resolve ({exc})", transient=transient) from exc
    except UnicodeError as exc:
        raise UnresolvableHost(host, f"does not resolve ({exc})") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _refuse_unless_allowed(host: str, ip: IPAddress, *, allow_private: bool) -> None:
    reason = non_public_reason(ip)
    if reason is not None and not allow_private:
        raise BlockedDestination(host, f"resolves to {reason}")


async def resolve(
    host: str,
    port: int,
    *,
    allow_private: bool = False,
    lookup: Lookup = system_lookup,
    resolve_names: bool = True,
) -> list[str]:
    """The addresses to connect to for ``host``: the one SSRF policy.

    ``host`` is parsed by :func:`parse_host`; an address is checked directly, a name is
    looked up with ``lookup`` and *every* answer must be public (an attacker controlling DNS
    can mix a public and a private answer). ``allow_private`` (development and tests) lets
    non-public addresses through but still parses and resolves. With ``resolve_names``
    False a name is not looked up and ``[]`` is returned for it (registration in
    ``allow_private`` mode: nothing to refuse, nothing to connect to yet). Raises
    :class:`BlockedDestination` naming the reason ("resolves to loopback 127.0.0.1") and
    :class:`UnresolvableHost` when the name has no address.
    """
    parsed = parse_host(host)
    if not isinstance(parsed, str):
        _refuse_unless_allowed(host, parsed, allow_private=allow_private)
        return [str(parsed)]
    if _is_localhost(parsed) and not allow_private:
        raise BlockedDestination(host, "resolves to loopback (localhost, RFC 6761)")
    if not resolve_names:
        return []
    # Look up the name as the client spelled it (lower-cased, IDNA), not percent-decoded.
    answers = await lookup(host, port)
    if not answers:
        raise UnresolvableHost(host, "resolves to no IPv4/IPv6 address")
    addresses: list[str] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError as exc:
            raise UnresolvableHost(host, f"resolver answered a non-address {answer!r}") from exc
        _refuse_unless_allowed(host, ip, allow_private=allow_private)
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses


_policy_resolve = resolve  # the backend's ``resolve`` parameter shadows the name


async def resolve_public(host: str, port: int) -> list[str]:
    """:func:`resolve` with the system resolver and no exception for private addresses."""
    return await resolve(host, port)


_DEFAULT_PORTS = {"http": 80, "https": 443}


async def vet_url(
    url: str,
    *,
    allow_private: bool = False,
    lookup: Lookup = system_lookup,
    timeout: float = 5.0,  # noqa: ASYNC109 - bounds the lookup, like the client's connect timeout
) -> list[str]:
    """Check ``url``'s destination now, exactly as the guarded client will when it connects.

    The host is the one the HTTP client hands its connection layer (``httpx.URL(url).host``),
    judged by :func:`resolve`. In ``allow_private`` mode names are not looked up. Returns the
    vetted addresses; raises :class:`BlockedDestination` (reason in ``.reason``) or
    :class:`UnresolvableHost` (also when the lookup takes over ``timeout`` seconds).
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        # httpx refuses some hosts a browser would read as an address (``0177.0.0.1``):
        # name that address if it is internal, so the refusal says why.
        try:
            raw_host = urlsplit(url).hostname or ""
        except ValueError:
            raw_host = ""
        if raw_host:
            literal = parse_host(raw_host)
            if not isinstance(literal, str):
                _refuse_unless_allowed(raw_host, literal, allow_private=allow_private)
        raise BlockedDestination(
            raw_host, f"is not a valid host for the HTTP client ({exc})"
        ) from exc
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme, 80)
    try:
        async with asyncio.timeout(timeout):
            return await resolve(
                parsed.host,
                port,
                allow_private=allow_private,
                lookup=lookup,
                resolve_names=not allow_private,
            )
    except TimeoutError as exc:
        raise UnresolvableHost(
            parsed.host, f"did not resolve within {timeout:g} s", transient=True
        ) from exc


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
                return await _policy_resolve(host, port, allow_private=allow_private, lookup=lookup)

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
            _refuse_unless_allowed(
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
    **httpx_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that refuses non-public destinations.

    Every connection (including redirect hops, if the caller enables
    ``follow_redirects``) is checked after DNS resolution by :func:`resolve`;
    refusal raises :class:`BlockedDestination` (:class:`UnresolvableHost` for a
    name that does not exist), a failing resolver ``httpx.ConnectError``. Only
    http/https are allowed. ``timeout`` is in seconds. ``allow_private=True``
    lets non-public addresses through (development and tests only). ``lookup``
    replaces the system resolver (tests). Environment
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
    transport = _GuardedTransport(allow_private=allow_private, lookup=lookup, **transport_kwargs)
    return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, **httpx_kwargs)
