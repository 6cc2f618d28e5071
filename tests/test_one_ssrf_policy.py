"""One SSRF policy (``keel.core.netguard``), applied by every caller that reaches an address a
user or a peer chose: bittorrented's DHT node filter, its tracker and DHT-node destinations,
and coinpay's webhook URL check. Each IPv6 form that embeds the private 10.0.0.1 is refused by
each caller, literal or behind a name; a public address passes each. A caller that went back to
its own check (``ipaddress``'s ``is_global`` takes four of these on Python 3.11) fails here."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import Any

import pytest

from keel.bittorrented.dht.nodes import NodePool, is_public
from keel.bittorrented.swarm.dht_scrape import DhtScraper
from keel.bittorrented.swarm.udp_tracker import UdpTracker
from keel.coinpay import notify
from keel.core import netguard
from keel.core.errors import BadRequest
from tests.bittorrented.swarm.fakes import scrape_count

PRIVATE = ipaddress.IPv4Address("10.0.0.1")
EMBEDDING_PRIVATE = {
    "6to4": "2002:a00:1::1",
    "NAT64 64:ff9b::/96": "64:ff9b::a00:1",
    "local-use NAT64 64:ff9b:1::/48, RFC 6052 /48 layout": "64:ff9b:1:a00:0:100::",
    "local-use NAT64 64:ff9b:1::/48, /96 layout": "64:ff9b:1::a00:1",
    "IPv4-mapped": "::ffff:10.0.0.1",
    "IPv4-compatible": "::10.0.0.1",
    "Teredo, client 10.0.0.1": "2001:0:4136:e378:8000:63bf:f5ff:fffe",
}
PUBLIC = "2606:4700:4700::1111"
CASES = [pytest.param(address, id=name) for name, address in EMBEDDING_PRIVATE.items()]
INFO_HASH = bytes(range(20))


def test_every_case_embeds_the_private_address() -> None:
    embedded = {
        "6to4": lambda ip: ip.sixtofour,
        "NAT64 64:ff9b::/96": lambda ip: ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),
        "local-use NAT64 64:ff9b:1::/48, RFC 6052 /48 layout": lambda ip: ipaddress.IPv4Address(
            ((int(ip) >> 64) & 0xFFFF) << 16 | (int(ip) >> 40) & 0xFFFF
        ),
        "local-use NAT64 64:ff9b:1::/48, /96 layout": lambda ip: ipaddress.IPv4Address(
            int(ip) & 0xFFFFFFFF
        ),
        "IPv4-mapped": lambda ip: ip.ipv4_mapped,
        "IPv4-compatible": lambda ip: ipaddress.IPv4Address(int(ip)),
        "Teredo, client 10.0.0.1": lambda ip: ip.teredo[1],
    }
    for name, address in EMBEDDING_PRIVATE.items():
        assert embedded[name](ipaddress.IPv6Address(address)) == PRIVATE, name
    assert netguard.is_public_ip(ipaddress.ip_address(PUBLIC))


# --- The DHT node filter ---------------------------------------------------------------------


@pytest.mark.parametrize("address", CASES)
def test_the_dht_node_filter_refuses_it(address: str) -> None:
    assert not is_public((address, 6881))
    assert NodePool().add((address, 6881)) is False


def test_the_dht_node_filter_takes_a_public_node() -> None:
    assert is_public((PUBLIC, 6881))
    assert NodePool().add((PUBLIC, 6881)) is True


# --- The swarm's destinations: a tracker from a magnet, a configured DHT node ------------------


def _fake_dns(answers: dict[str, str], seen: list[int]) -> Callable[..., Any]:
    """socket.getaddrinfo answering ``answers`` (asyncio's resolver calls it at call time)."""

    def getaddrinfo(
        host: str, port: int, family: int = 0, type: int = 0, *_: Any, **__: Any
    ) -> list[Any]:
        seen.append(type)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6, socket.SOCK_DGRAM, 17, "", (answers[host], port, 0, 0))]

    return getaddrinfo


@pytest.mark.parametrize("address", CASES)
async def test_a_udp_tracker_there_is_refused(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns({"tracker.test": address}, seen))
    before = scrape_count("udp", "refused")
    for url in (f"udp://[{address}]:6969/announce", "udp://tracker.test:6969/announce"):
        assert await UdpTracker(url).scrape([INFO_HASH]) == {}
    assert scrape_count("udp", "refused") == before + 2
    assert seen == [socket.SOCK_DGRAM]  # the name was looked up for a UDP socket


async def test_a_public_udp_tracker_is_let_through(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[tuple[str, int]] = []

    async def no_network(*_args: Any, remote_addr: tuple[str, int], **_kw: Any) -> Any:
        tried.append(remote_addr)  # the policy let it through; tests send nothing out
        raise OSError("no network in tests")

    monkeypatch.setattr(asyncio.get_running_loop(), "create_datagram_endpoint", no_network)
    before = scrape_count("udp", "refused")
    assert await UdpTracker(f"udp://[{PUBLIC}]:6969/announce").scrape([INFO_HASH]) == {}
    assert tried == [(PUBLIC, 6969)]
    assert scrape_count("udp", "refused") == before


@pytest.mark.parametrize("address", CASES)
async def test_a_dht_start_node_there_is_refused(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(socket, "getaddrinfo", _fake_dns({"node.test": address}, seen))
    before = scrape_count("dht", "refused")
    for node in (f"[{address}]:6881", "node.test:6881"):
        assert await DhtScraper([node]).scrape([INFO_HASH]) == {}
    assert scrape_count("dht", "refused") == before + 2
    assert seen == [socket.SOCK_DGRAM]


async def test_a_public_dht_start_node_is_let_through() -> None:
    before = scrape_count("dht", "refused")
    # Vetted and kept; then left out only because BEP 5's socket is IPv4 (nothing is sent).
    assert await DhtScraper([f"[{PUBLIC}]:6881"]).scrape([INFO_HASH]) == {}
    assert scrape_count("dht", "refused") == before


# --- coinpay's webhook URL check --------------------------------------------------------------


def _lookup(answers: dict[str, str]) -> netguard.Lookup:
    async def lookup(host: str, port: int) -> list[str]:
        return [answers[host]]

    return lookup


@pytest.mark.parametrize("address", CASES)
async def test_a_webhook_url_there_is_refused(address: str) -> None:
    lookup = _lookup({"hooks.test": address})
    for url in (f"https://[{address}]/hook", "https://hooks.test/hook"):
        with pytest.raises(BadRequest, match="Webhook URL refused"):
            await notify.validate_url(url, allow_private=False, lookup=lookup)


async def test_a_public_webhook_url_is_accepted() -> None:
    lookup = _lookup({"hooks.test": PUBLIC})
    for url in (f"https://[{PUBLIC}]/hook", "https://hooks.test/hook"):
        assert await notify.validate_url(url, allow_private=False, lookup=lookup) == url
