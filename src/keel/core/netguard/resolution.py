"""The one SSRF policy: a host parsed, looked up, and every address it names vetted."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpx

from keel.core.netguard.addresses import IPAddress, non_public_reason
from keel.core.netguard.errors import BlockedDestination, UnresolvableHost
from keel.core.netguard.hosts import is_localhost_name, parse_host

# (host, port) -> addresses. ``resolve_public`` and ``resolve`` fit it (they vet), and so does
# a plain name lookup like ``system_lookup`` (the seam tests replace with a fake DNS).
Resolver = Callable[[str, int], Awaitable[list[str]]]
Lookup = Resolver


async def system_lookup(
    host: str, port: int, *, socket_type: socket.SocketKind = socket.SOCK_STREAM
) -> list[str]:
    """The addresses the system resolver gives for ``host`` (de-duplicated, in order), for
    sockets of ``socket_type`` (TCP by default; UDP for trackers and DHT nodes).

    Raises :class:`UnresolvableHost`, ``transient`` unless the answer was "no such name".
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket_type)
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


def refuse_unless_allowed(host: str, ip: IPAddress, *, allow_private: bool) -> None:
    """Raise :class:`BlockedDestination` for a non-public ``ip`` unless ``allow_private``."""
    reason = non_public_reason(ip)
    if reason is not None and not allow_private:
        raise BlockedDestination(host, f"resolves to {reason}")


async def resolve(
    host: str,
    port: int,
    *,
    allow_private: bool = False,
    socket_type: socket.SocketKind = socket.SOCK_STREAM,
    lookup: Lookup | None = None,
    resolve_names: bool = True,
) -> list[str]:
    """The addresses to connect to for ``host``: the one SSRF policy.

    ``host`` is parsed by :func:`parse_host`; an address is checked directly, a name is
    looked up with ``lookup`` (default: the system resolver for sockets of ``socket_type``)
    and *every* answer must be public (an attacker controlling DNS can mix a public and a
    private answer). ``allow_private`` (development, tests, a lab DHT) lets non-public
    addresses through but still parses and resolves. With ``resolve_names``
    False a name is not looked up and ``[]`` is returned for it (registration in
    ``allow_private`` mode: nothing to refuse, nothing to connect to yet). Raises
    :class:`BlockedDestination` naming the reason ("resolves to loopback 127.0.0.1") and
    :class:`UnresolvableHost` when the name has no address.
    """
    parsed = parse_host(host)
    if not isinstance(parsed, str):
        refuse_unless_allowed(host, parsed, allow_private=allow_private)
        return [str(parsed)]
    if is_localhost_name(parsed) and not allow_private:
        raise BlockedDestination(host, "resolves to loopback (localhost, RFC 6761)")
    if not resolve_names:
        return []
    # Look up the name as the client spelled it (lower-cased, IDNA), not percent-decoded.
    if lookup is None:
        answers = await system_lookup(host, port, socket_type=socket_type)
    else:
        answers = await lookup(host, port)
    if not answers:
        raise UnresolvableHost(host, "resolves to no IPv4/IPv6 address")
    addresses: list[str] = []
    for answer in answers:
        try:
            ip = ipaddress.ip_address(answer)
        except ValueError as exc:
            raise UnresolvableHost(host, f"resolver answered a non-address {answer!r}") from exc
        refuse_unless_allowed(host, ip, allow_private=allow_private)
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses


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
                refuse_unless_allowed(raw_host, literal, allow_private=allow_private)
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
