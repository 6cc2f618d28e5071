"""A URL's host read as a browser reads it (WHATWG URL host parsing)."""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote_to_bytes

import idna

from keel.core.netguard.addresses import IPAddress, is_loopback_ip
from keel.core.netguard.errors import BlockedDestination

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


def is_localhost_name(name: str) -> bool:
    """RFC 6761: ``localhost`` and its subdomains are loopback whatever DNS says (``name`` as
    :func:`parse_host` returns it: lower case, no trailing dot)."""
    return name == "localhost" or name.endswith(".localhost")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, as a URL or a setting spells it) is this
    machine's loopback: see :func:`~keel.core.netguard.addresses.is_loopback_ip` and
    :func:`is_localhost_name`. A host no client could use is not."""
    try:
        parsed = parse_host(host)
    except BlockedDestination:
        return False
    return is_localhost_name(parsed) if isinstance(parsed, str) else is_loopback_ip(parsed)
