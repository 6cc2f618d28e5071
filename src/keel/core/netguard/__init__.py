"""Outbound connections that refuse internal destinations (SSRF protection): the one policy.

Anything that connects to an address a user or a peer supplied (webhook delivery, callbacks,
trackers from magnets, DHT nodes from other nodes' replies) is judged here and nowhere else:
HTTP goes through :func:`guarded_client`, other sockets through :func:`resolve` (with their
``socket_type``), and an address already in hand (a DHT node) through :func:`is_public_ip`.

The check runs *after* DNS resolution, and the socket is opened to the exact address that was
vetted. Checking the URL first and letting the HTTP library resolve again would be a TOCTOU
hole: a DNS-rebinding attacker answers the first lookup with a public address and the second
with ``127.0.0.1``.

Registration-time checks (:func:`vet_url`) run the same code on the same host string the
client will hand to its connection layer (``httpx.URL(url).host``), so a URL accepted at
registration is judged identically at delivery. A host is read as a browser would (WHATWG URL
host parsing, :func:`parse_host`), which is at least as strict as the C library the client
resolves with: ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1`` and ``%31%32%37.0.0.1``
are all ``127.0.0.1``. An IPv6 address that embeds an IPv4 one (mapped, compatible, 6to4,
NAT64) is judged by the address it embeds: ``ipaddress``'s ``is_global`` is not (on Python
3.11 it takes ``2002:a00:1::1`` and ``64:ff9b::a00:1``, both 10.0.0.1), so nothing else
decides whether an address is public.

    addresses.py   which IP addresses are public (and which are loopback)
    hosts.py       a host read as a browser reads it
    resolution.py  the policy: parse, look up, vet every answer; vet_url
    client.py      the guarded httpx client and its network backend
    errors.py      BlockedDestination, UnresolvableHost
"""

from __future__ import annotations

from keel.core.netguard.addresses import (
    IPAddress,
    is_loopback_ip,
    is_public_ip,
    non_public_reason,
)
from keel.core.netguard.client import GuardedNetworkBackend, guarded_client
from keel.core.netguard.errors import BlockedDestination, UnresolvableHost
from keel.core.netguard.hosts import is_localhost_name, is_loopback, parse_host
from keel.core.netguard.resolution import (
    Lookup,
    Resolver,
    resolve,
    resolve_public,
    system_lookup,
    vet_url,
)

__all__ = [
    "BlockedDestination",
    "GuardedNetworkBackend",
    "IPAddress",
    "Lookup",
    "Resolver",
    "UnresolvableHost",
    "guarded_client",
    "is_localhost_name",
    "is_loopback",
    "is_loopback_ip",
    "is_public_ip",
    "non_public_reason",
    "parse_host",
    "resolve",
    "resolve_public",
    "system_lookup",
    "vet_url",
]
