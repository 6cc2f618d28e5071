"""Where a scrape may go: resolve a tracker's or DHT node's host, refusing internal addresses.

Tracker URLs come from users' magnets and DHT nodes from other nodes' replies, so both are
SSRF and reflection vectors: a magnet naming ``udp://10.0.0.5:53`` would have us send packets
into the operator's network. As in ``keel.core.netguard`` the check runs after DNS resolution
and the socket then goes to the vetted address, so a rebinding DNS answer cannot slip past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from keel.core import netguard
from keel.core.netguard import BlockedDestination, UnresolvableHost

__all__ = ["BlockedDestination", "UnresolvableHost", "allowed_ip", "resolve"]


async def resolve(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The IP addresses to send to for ``host``, all public unless ``allow_private``.

    Raises ``BlockedDestination`` when any address is non-public (and that is not allowed) and
    ``UnresolvableHost`` when the name does not resolve.
    """
    if not allow_private:
        return await netguard.resolve_public(host, port)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(host, f"does not resolve ({exc})") from exc
    addresses: list[str] = []
    for family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if family in (socket.AF_INET, socket.AF_INET6) and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableHost(host, "resolves to no IPv4/IPv6 address")
    return addresses


def allowed_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool) -> bool:
    """Whether a literal address (a DHT node another node told us about) may be queried."""
    return allow_private or netguard.is_public_ip(ip)
