"""Which IP addresses are public: the IANA special-purpose registries, whole blocks refused,
and the IPv6 forms that embed an IPv4 address judged by the address they embed."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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
    # RFC 8215's local-use NAT64 prefix: translates into the operator's own IPv4 network,
    # and where in the address the IPv4 part sits depends on the prefix length (RFC 6052).
    (_V6("64:ff9b:1::/48"), "local-use NAT64"),
    (_V6("fc00::/7"), "unique-local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)
_BLOCKED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    # Teredo tunnels to an IPv4 client (its address obfuscated in the last 32 bits) through
    # a relay we do not choose; refused whatever the client is.
    (_V6("2001::/32"), "Teredo"),
    (_V6("2001::/23"), "IETF protocol"),
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


_LOOPBACK_V4 = _V4("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address(1)


def is_loopback_ip(ip: IPAddress) -> bool:
    """Whether ``ip`` is this machine's loopback: 127.0.0.0/8, ``::1``, or an IPv6 form that
    embeds a 127.x address (as :func:`non_public_reason` reads them)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip == _LOOPBACK_V6:
            return True
        embedded = _embedded_ipv4(ip)
        return embedded is not None and embedded in _LOOPBACK_V4
    return ip in _LOOPBACK_V4


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_V6:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
