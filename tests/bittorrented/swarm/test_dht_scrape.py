from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.bittorrented.swarm.base import SwarmCounts
from keel.bittorrented.swarm.dht_scrape import DhtScraper, ScrapeFilter, parse_endpoint
from keel.bittorrented.torrent import bencode
from keel.core import netguard
from tests.bittorrented.swarm.conftest import Swarm, synthetic_hash
from tests.bittorrented.swarm.fakes import scrape_count, udp_server

A, B = synthetic_hash("a"), synthetic_hash("b")

# BEP 33's test vector: 192.0.2.0-192.0.2.255 and 2001:DB8::-2001:DB8::3E7 inserted.
BEP33_VECTOR = bytes.fromhex(
    "F6C3F5EAA07FFD91BDE89F777F26FB2BFF37BDB8FB2BBAA2FD3DDDE7BACFFF75EE7CCBAE"
    "FE5EEDB1FBFAFF67F6ABFF5E43DDBCA3FD9B9FFDF4FFD3E9DFF12D1BDF59DB53DBE9FA5B"
    "7FF3B8FDFCDE1AFB8BEDD7BE2F3EE71EBBBFE93BCDEEFE148246C2BC5DBFF7E7EFDCF24F"
    "D8DC7ADFFD8FFFDFDDFFF7A4BBEEDF5CB95CE81FC7FCFF1FF4FFFFDFE5F7FDCBB7FD79B3"
    "FA1FC77BFE07FFF905B7B7FFC7FEFEFFE0B8370BB0CD3F5B7F2BD93FEB4386CFDD6F7FD5"
    "BFAF2E9EBFFFFEECD67ADBF7C67F17EFD5D75EBA6FFEBA7FFF47A91EB1BFBB53E8ABFB57"
    "62ABE8FF237279BFEFBFEEF5FFC5FEBFDFE5ADFFADFEE1FB737FFFFBFD9F6AEFFEEE76B6"
    "FD8F72EF"
)


def ipv4s(start: int, count: int) -> list[bytes]:
    return [ipaddress.IPv4Address(start + n).packed for n in range(count)]


def fast(nodes: list[str], **kwargs: object) -> DhtScraper:
    options: dict[str, object] = {
        "allow_private": True,
        "query_timeout_seconds": 0.2,
        "lookup_timeout_seconds": 1.0,
        "bind_host": "127.0.0.1",
    }
    options.update(kwargs)
    return DhtScraper(nodes, **options)  # type: ignore[arg-type]


def compact_node(node_id: bytes, port: int) -> bytes:
    return node_id + ipaddress.IPv4Address("127.0.0.1").packed + port.to_bytes(2, "big")


def krpc_node(
    answer: Callable[[dict[bytes, bencode.Value]], dict[bytes, bencode.Value] | None],
    node_id: bytes | None = None,
) -> Callable[[bytes], bytes | None]:
    """A fake DHT node: decodes a query, lets ``answer`` build the ``r`` dict (None: silent)."""
    own_id = node_id or os.urandom(20)

    def handle(data: bytes) -> bytes | None:
        query = bencode.decode(data)
        assert isinstance(query, dict)
        body = answer(query)
        if body is None:
            return None
        return bencode.encode({b"t": query[b"t"], b"y": b"r", b"r": {b"id": own_id, **body}})

    return handle


def test_matches_the_bep33_test_vector() -> None:
    v4 = [ipaddress.IPv4Address("192.0.2.0") + n for n in range(256)]
    v6 = [ipaddress.IPv6Address("2001:db8::") + n for n in range(0x3E8 + 1)]
    bloom = ScrapeFilter.of_ips(ip.packed for ip in [*v4, *v6])
    assert bloom.bits == BEP33_VECTOR
    assert bloom.estimate() == pytest.approx(1224.9308, abs=1e-4)


def test_an_empty_filter_counts_zero_and_a_full_one_saturates() -> None:
    assert ScrapeFilter().count() == 0
    assert ScrapeFilter.of_ips([b"\x7f\x00\x00\x01"]).count() == 1
    assert 7000 < ScrapeFilter(b"\xff" * 256).estimate() < 8000


def test_refuses_a_filter_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="256 bytes"):
        ScrapeFilter(b"\x00" * 255)


@settings(max_examples=150, deadline=None)
@given(st.sets(st.integers(0, 2**32 - 1), max_size=300))
def test_the_estimate_of_n_random_peers_is_close_to_n(addresses: set[int]) -> None:
    bloom = ScrapeFilter.of_ips(ipaddress.IPv4Address(a).packed for a in addresses)
    n = len(addresses)
    # The estimator's standard deviation is ~5 at n = 300 and under 1 at n = 50.
    assert abs(bloom.estimate() - n) <= max(2.0, 0.1 * n)


@settings(max_examples=100, deadline=None)
@given(
    st.sets(st.integers(0, 2**32 - 1), max_size=150),
    st.sets(st.integers(0, 2**32 - 1), max_size=150),
)
def test_or_ing_filters_estimates_the_union(left: set[int], right: set[int]) -> None:
    def bloom(addresses: set[int]) -> ScrapeFilter:
        return ScrapeFilter.of_ips(ipaddress.IPv4Address(a).packed for a in addresses)

    union = len(left | right)
    assert bloom(left) | bloom(right) == bloom(left | right)
    assert abs((bloom(left) | bloom(right)).estimate() - union) <= max(2.0, 0.1 * union)


@pytest.mark.parametrize(
    ("text", "endpoint"),
    [("router.example:6881", ("router.example", 6881)), ("[2001:db8::1]:80", ("2001:db8::1", 80))],
)
def test_parses_endpoints(text: str, endpoint: tuple[str, int]) -> None:
    assert parse_endpoint(text) == endpoint


@pytest.mark.parametrize("text", ["router.example", "h:0", "h:70000", ":80", "h:x"])
def test_refuses_bad_endpoints(text: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        parse_endpoint(text)


async def test_libtorrent_answers_scrapes_with_bloom_filters(swarm: Swarm) -> None:
    # The seeder is sessions[0]; ask from another node so the walk has to find the data.
    scraper = DhtScraper(swarm.dht_nodes[-1:], allow_private=True, bind_host="127.0.0.1")
    deadline = time.monotonic() + 5.0
    while True:
        found = await scraper.scrape([swarm.info_hash, A])
        if swarm.info_hash in found or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    # Every peer of a loopback swarm is 127.0.0.1, and BEP 33 counts IP addresses.
    assert found == {swarm.info_hash: SwarmCounts(1, 0)}


async def test_asks_get_peers_with_scrape_read_only() -> None:
    queries: list[dict[bytes, bencode.Value]] = []

    def answer(query: dict[bytes, bencode.Value]) -> dict[bytes, bencode.Value]:
        queries.append(query)
        return {b"token": b"x"}

    async with udp_server(krpc_node(answer)) as node:
        assert await fast([node.endpoint]).scrape([A]) == {}  # nothing stored: unknown
    assert len(queries) == 1
    arguments = queries[0][b"a"]
    assert isinstance(arguments, dict)
    assert queries[0][b"q"] == b"get_peers"
    assert queries[0][b"ro"] == 1
    assert arguments[b"info_hash"] == A
    assert arguments[b"scrape"] == 1
    assert isinstance(arguments[b"id"], bytes)
    assert len(arguments[b"id"]) == 20


async def test_combines_the_filters_of_every_node_on_the_way_before_estimating() -> None:
    seeds_far, seeds_near = ipv4s(0x0A000000, 40), ipv4s(0x0A000000 + 20, 40)  # 20 shared
    peers = ipv4s(0x0B000000, 10)

    async with udp_server(
        krpc_node(
            lambda q: {
                b"BFsd": ScrapeFilter.of_ips(seeds_near).bits,
                b"BFpe": ScrapeFilter.of_ips(peers).bits,
            },
            node_id=A,  # nearest possible to A
        )
    ) as near:
        near_node = compact_node(A, near.port)
        async with udp_server(
            krpc_node(
                lambda q: {
                    b"BFsd": ScrapeFilter.of_ips(seeds_far).bits,
                    b"BFpe": ScrapeFilter().bits,
                    b"nodes": near_node,
                }
            )
        ) as far:
            found = await fast([far.endpoint]).scrape([A])
    assert len(near.received) == 1
    counts = found[A]
    assert abs(counts.seeders - 60) <= 6  # the union, not 80, the sum
    assert abs(counts.leechers - 10) <= 2


async def test_plain_values_count_as_peers_unless_a_seed_filter_has_them() -> None:
    seeds = ipv4s(0x0C000000, 5)
    values = [ip + b"\x1a\xe1" for ip in [*seeds[:2], *ipv4s(0x0D000000, 3)]]
    async with udp_server(krpc_node(lambda q: {b"values": values})) as legacy:
        legacy_node = compact_node(os.urandom(20), legacy.port)
        answer = {
            b"BFsd": ScrapeFilter.of_ips(seeds).bits,
            b"BFpe": ScrapeFilter().bits,
            b"nodes": legacy_node,
        }
        async with udp_server(krpc_node(lambda q: answer)) as modern:
            found = await fast([modern.endpoint]).scrape([A])
    assert found == {A: SwarmCounts(5, 3)}


@pytest.mark.parametrize(
    "reply",
    [
        None,  # silent
        b"\x00garbage",
        b"d1:t2:zz1:y1:re",  # someone else's transaction
        "error",
        "short filter",
    ],
)
async def test_a_useless_reply_leaves_the_torrent_unknown(reply: bytes | str | None) -> None:
    def handle(data: bytes) -> bytes | None:
        query = bencode.decode(data)
        assert isinstance(query, dict)
        if reply == "error":
            return bencode.encode({b"t": query[b"t"], b"y": b"e", b"e": [202, b"Server Error"]})
        if reply == "short filter":
            body = {b"id": A, b"BFsd": b"\x01" * 255, b"BFpe": b"\x00" * 256}
            return bencode.encode({b"t": query[b"t"], b"y": b"r", b"r": body})
        return reply if isinstance(reply, bytes) else None

    started = time.monotonic()
    async with udp_server(handle) as node:
        assert await fast([node.endpoint]).scrape([A, B]) == {}
    assert time.monotonic() - started < 0.6


async def test_a_reply_from_another_address_is_not_taken() -> None:
    async with udp_server(lambda data: None) as impostor:

        def overheard(data: bytes) -> None:
            # The real node stays silent; the impostor answers the query it overheard.
            query = bencode.decode(data)
            assert isinstance(query, dict)
            body = {b"id": A, b"BFsd": b"\xff" * 256, b"BFpe": b"\xff" * 256}
            forged = bencode.encode({b"t": query[b"t"], b"y": b"r", b"r": body})
            assert impostor.protocol.transport is not None
            impostor.protocol.transport.sendto(forged, node.protocol.senders[-1])

        async with udp_server(overheard) as node:
            assert await fast([node.endpoint]).scrape([A]) == {}
            assert len(node.received) == 1


async def test_loopback_nodes_are_refused_unless_private_addresses_are_allowed() -> None:
    before = scrape_count("dht", "refused")
    async with udp_server(krpc_node(lambda q: {b"BFsd": bytes(256), b"BFpe": bytes(256)})) as n:
        assert await DhtScraper([n.endpoint]).scrape([A]) == {}
        assert n.received == []
    assert scrape_count("dht", "refused") == before + 1


async def test_a_node_cannot_point_the_lookup_at_a_private_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def pretend_public(host: str, port: int, **_: object) -> list[str]:
        return [host]  # the configured start passes as if it were public

    monkeypatch.setattr(netguard, "resolve", pretend_public)
    async with udp_server(krpc_node(lambda q: {b"token": b"t"})) as inner:
        pointer = compact_node(A, inner.port)  # 127.0.0.1: private
        async with udp_server(krpc_node(lambda q: {b"nodes": pointer})) as start:
            scraper = fast([start.endpoint], allow_private=False)
            assert await scraper.scrape([A]) == {}
            assert len(start.received) == 1
        assert inner.received == []


async def test_a_lookup_stops_at_its_query_budget() -> None:
    # Each reply names 16 new nodes (nobody listens there): the walk must not run forever.
    def flood(query: dict[bytes, bencode.Value]) -> dict[bytes, bencode.Value]:
        return {b"nodes": b"".join(compact_node(os.urandom(20), 1 + n) for n in range(16))}

    started = time.monotonic()
    async with udp_server(krpc_node(flood)) as node:
        scraper = fast([node.endpoint], max_queries=7, query_timeout_seconds=0.05)
        assert await scraper.scrape([A]) == {}
    assert time.monotonic() - started < 0.5


@settings(max_examples=60, deadline=None)
@given(
    reply=st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from([b"BFsd", b"BFpe", b"values", b"nodes", b"id", b"token"]),
            st.one_of(
                st.binary(min_size=250, max_size=260),
                st.binary(max_size=60),
                st.lists(st.binary(min_size=5, max_size=19), max_size=4),
                st.integers(-5, 5),
            ),
            max_size=5,
        ),
    )
)
def test_random_replies_are_unknown_or_sane_never_an_exception(
    reply: bytes | dict[bytes, bencode.Value],
) -> None:
    def handle(data: bytes) -> bytes:
        if isinstance(reply, bytes):
            return reply
        query = bencode.decode(data)
        assert isinstance(query, dict)
        return bencode.encode({b"t": query[b"t"], b"y": b"r", b"r": reply})

    async def scenario() -> dict[bytes, SwarmCounts]:
        async with udp_server(handle) as node:
            return await fast([node.endpoint], query_timeout_seconds=0.03).scrape([A])

    found = asyncio.run(scenario())
    assert set(found) <= {A}
    assert all(c.seeders >= 0 and c.leechers >= 0 for c in found.values())
