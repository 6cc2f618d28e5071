"""DHT scrapes (BEP 33): ask the nodes nearest a torrent for Bloom filters of its peers.

A ``get_peers`` query with ``scrape: 1`` makes a node that stores peers for the hash add two
256-byte Bloom filters to its reply: ``BFsd`` (seeds) and ``BFpe`` (other peers), each holding
the peers' IP addresses. Announces scatter over a dozen nodes around the hash, no one of them
has the whole swarm and they overlap, so counts cannot be added; Bloom filters can be OR-ed into
the filter of the union, whose size BEP 33's formula then estimates. That is why every node's
filters are combined before estimating, never the estimates.

Peers are counted by IP (BEP 33 stores one entry per IP), so many peers behind one address,
or a whole loopback test swarm, count once. The estimate saturates near 8,000 per filter.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
import os
import secrets
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias, TypeGuard, cast

from keel.bittorrented.errors import MalformedTorrent
from keel.bittorrented.swarm import metrics
from keel.bittorrented.swarm.base import Outcome, SwarmCounts, plausible
from keel.bittorrented.torrent import bencode
from keel.bittorrented.torrent.values import INFO_HASH_BYTES
from keel.core import netguard

__all__ = ["FILTER_BYTES", "DhtScraper", "ScrapeFilter", "parse_endpoint"]

# BEP 33's fixed parameters: m = 2048 bits, k = 2 hash functions.
FILTER_BYTES = 256
FILTER_BITS = FILTER_BYTES * 8
_K = 2
_COMPACT_NODE = 26  # 20-byte id + 4-byte IPv4 + 2-byte port (BEP 5)
_CLOSEST = 8  # Kademlia's K: the lookup ends once the 8 nearest nodes seen have been asked
_NODES_PER_REPLY = 16  # a reply carries K = 8; more is a node trying to flood our lookup
_MAX_PACKET = 8192  # a KRPC reply fits one datagram; anything larger is not one

Endpoint: TypeAlias = tuple[str, int]


@dataclass(frozen=True, slots=True)
class ScrapeFilter:
    """A BEP 33 Bloom filter of IP addresses: 256 bytes, 2048 bits, two bits per address."""

    bits: bytes = bytes(FILTER_BYTES)

    def __post_init__(self) -> None:
        if len(self.bits) != FILTER_BYTES:
            raise ValueError(f"a scrape filter is {FILTER_BYTES} bytes")

    @classmethod
    def of_ips(cls, ips: Iterable[bytes]) -> ScrapeFilter:
        """The filter holding ``ips``, each packed (4 bytes IPv4, 16 bytes IPv6)."""
        bits = bytearray(FILTER_BYTES)
        for ip in ips:
            for index in _indices(ip):
                bits[index // 8] |= 1 << (index % 8)
        return cls(bytes(bits))

    def __or__(self, other: ScrapeFilter) -> ScrapeFilter:
        merged = int.from_bytes(self.bits, "little") | int.from_bytes(other.bits, "little")
        return ScrapeFilter(merged.to_bytes(FILTER_BYTES, "little"))

    def contains(self, ip: bytes) -> bool:
        """Whether ``ip`` may be in the filter (Bloom filters have false positives)."""
        return all(self.bits[i // 8] & (1 << (i % 8)) for i in _indices(ip))

    def estimate(self) -> float:
        """BEP 33's estimate of how many addresses the filter holds:
        ``log(c / m) / (k * log(1 - 1/m))`` with ``c`` the zero bits, clamped to [1, m - 1]
        so an empty filter gives ~0.5 and a full one ~7,800 rather than a division by zero."""
        ones = int.from_bytes(self.bits, "little").bit_count()
        zeros = min(FILTER_BITS - 1, max(1, FILTER_BITS - ones))
        return math.log(zeros / FILTER_BITS) / (_K * math.log(1 - 1 / FILTER_BITS))

    def count(self) -> int:
        """:meth:`estimate` rounded half up to whole peers (0 for an empty filter): one address
        whose two bits coincide estimates 0.5 and is still one peer."""
        return math.floor(self.estimate() + 0.5) if any(self.bits) else 0


def _indices(ip: bytes) -> tuple[int, int]:
    # BEP 33: two little-endian 16-bit words of SHA-1(ip), each taken modulo m.
    digest = _sha1(ip)
    return (digest[0] | digest[1] << 8) % FILTER_BITS, (digest[2] | digest[3] << 8) % FILTER_BITS


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def parse_endpoint(text: str) -> Endpoint:
    """``host:port`` or ``[v6]:port`` → (host, port); ValueError otherwise."""
    host, colon, port = text.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a host:port endpoint: {text!r}")
    return host, int(port)


class _Krpc(asyncio.DatagramProtocol):
    """One UDP socket for every query of a scrape; replies are matched by transaction id and
    source address, so a stray or spoofed packet cannot answer someone else's query."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: dict[bytes, tuple[Endpoint, asyncio.Future[dict[bytes, object]]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if len(data) > _MAX_PACKET:
            return
        try:
            message = bencode.decode(data, strict=False, max_bytes=_MAX_PACKET)
        except MalformedTorrent:
            return
        if not isinstance(message, dict):
            return
        tid = message.get(b"t")
        waiting = self.pending.get(tid) if isinstance(tid, bytes) else None
        if waiting is None or (str(addr[0]), addr[1]) != waiting[0] or waiting[1].done():
            return
        waiting[1].set_result(dict(message))

    def error_received(self, exc: Exception) -> None:
        # Unconnected UDP reports no useful errors; the query's timeout decides.
        pass

    async def ask(
        self, endpoint: Endpoint, message: dict[bytes, bencode.Value], wait_seconds: float
    ) -> dict[bytes, object] | None:
        """Send one query and wait for its reply; None on timeout."""
        assert self.transport is not None
        tid = secrets.token_bytes(4)
        while tid in self.pending:
            tid = secrets.token_bytes(4)
        future: asyncio.Future[dict[bytes, object]] = asyncio.get_running_loop().create_future()
        self.pending[tid] = (endpoint, future)
        try:
            self.transport.sendto(bencode.encode({**message, b"t": tid}), endpoint)
            async with asyncio.timeout(wait_seconds):
                return await future
        except TimeoutError:
            return None
        except OSError:
            return None  # e.g. the network is unreachable: same as no answer
        finally:
            del self.pending[tid]


@dataclass
class _Lookup:
    """One torrent's walk towards its nearest nodes, and the filters gathered on the way."""

    info_hash: bytes
    seeds: ScrapeFilter = field(default_factory=ScrapeFilter)
    peers: ScrapeFilter = field(default_factory=ScrapeFilter)
    legacy_ips: set[bytes] = field(default_factory=set)
    answered: bool = False
    # endpoint -> node id (None for a configured endpoint, whose id we do not know yet)
    nodes: dict[Endpoint, bytes | None] = field(default_factory=dict)
    asked: set[Endpoint] = field(default_factory=set)

    def distance(self, endpoint: Endpoint) -> int:
        node_id = self.nodes[endpoint]
        if node_id is None:
            # A configured endpoint: ask it first (the walk starts there); once asked and still
            # nameless (it never answered) it must not hold a place among the nearest.
            return -1 if endpoint not in self.asked else 1 << 160
        return int.from_bytes(node_id, "big") ^ int.from_bytes(self.info_hash, "big")

    def next_batch(self, size: int) -> list[Endpoint]:
        """The nearest unasked nodes, or none once the nearest K seen have all been asked."""
        ranked = sorted(self.nodes, key=self.distance)
        if all(endpoint in self.asked for endpoint in ranked[:_CLOSEST]):
            return []
        return [endpoint for endpoint in ranked if endpoint not in self.asked][:size]

    def counts(self) -> SwarmCounts | None:
        if not self.answered:
            return None
        # BEP 33's legacy rule: plain ``values`` count as peers unless a seed filter has them.
        extra = ScrapeFilter.of_ips(ip for ip in self.legacy_ips if not self.seeds.contains(ip))
        return plausible(self.seeds.count(), (self.peers | extra).count())


class DhtScraper:
    """A :class:`~keel.bittorrented.swarm.base.Scraper` over the DHT (BEP 33).

    From the configured ``nodes`` (``host:port``) each torrent's lookup walks towards the
    nodes nearest its hash, up to ``max_queries`` queries, ``concurrency`` at a time, each
    waiting ``query_timeout_seconds``; ``lookup_timeout_seconds`` bounds a whole lookup. A
    torrent no node had filters or peers for is unknown. Queries carry ``ro: 1`` (BEP 43):
    we never answer queries, so other nodes must not add us to their routing tables.
    """

    transport = "dht"

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        allow_private: bool = False,
        query_timeout_seconds: float = 2.0,
        lookup_timeout_seconds: float = 10.0,
        max_queries: int = 32,
        concurrency: int = 3,
        parallel_lookups: int = 8,
        bind_host: str = "0.0.0.0",  # an ephemeral client port, not a server
    ) -> None:
        self.endpoints = [parse_endpoint(node) for node in nodes]
        self.allow_private = allow_private
        self.query_timeout_seconds = query_timeout_seconds
        self.lookup_timeout_seconds = lookup_timeout_seconds
        self.max_queries = max_queries
        self.concurrency = concurrency
        self.parallel_lookups = parallel_lookups
        self.bind_host = bind_host
        self.node_id = os.urandom(INFO_HASH_BYTES)

    async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
        """Estimated counts for the torrents some node stores peers for; see the Protocol."""
        hashes = list(dict.fromkeys(h for h in info_hashes if len(h) == INFO_HASH_BYTES))
        if not hashes or not self.endpoints:
            return {}
        starts = await self._resolve_starts()
        if not starts:
            return {}
        loop = asyncio.get_running_loop()
        try:
            transport, krpc = await loop.create_datagram_endpoint(
                _Krpc, local_addr=(self.bind_host, 0), family=socket.AF_INET
            )
        except OSError:
            return {}
        gate = asyncio.Semaphore(self.parallel_lookups)
        try:

            async def one(info_hash: bytes) -> tuple[bytes, SwarmCounts | None]:
                async with gate:
                    return info_hash, await self._lookup(krpc, info_hash, starts)

            results = await asyncio.gather(*(one(h) for h in hashes))
        finally:
            transport.close()
        return {h: counts for h, counts in results if counts is not None}

    async def _resolve_starts(self) -> list[Endpoint]:
        starts: list[Endpoint] = []
        for host, port in self.endpoints:
            began = time.monotonic()
            try:
                addresses = await netguard.resolve(
                    host, port, allow_private=self.allow_private, socket_type=socket.SOCK_DGRAM
                )
            except netguard.UnresolvableHost:
                metrics.record(self.transport, Outcome.UNREACHABLE, time.monotonic() - began)
                continue
            except netguard.BlockedDestination:
                metrics.record(self.transport, Outcome.REFUSED, time.monotonic() - began)
                continue
            # The socket is IPv4: BEP 5's compact node format is too, IPv6 needs BEP 32.
            starts += [(a, port) for a in addresses if ":" not in a and (a, port) not in starts]
        return starts

    async def _lookup(
        self, krpc: _Krpc, info_hash: bytes, starts: list[Endpoint]
    ) -> SwarmCounts | None:
        lookup = _Lookup(info_hash, nodes=dict.fromkeys(starts))
        try:
            async with asyncio.timeout(self.lookup_timeout_seconds):
                while len(lookup.asked) < self.max_queries:
                    room = min(self.concurrency, self.max_queries - len(lookup.asked))
                    batch = lookup.next_batch(room)
                    if not batch:
                        break
                    lookup.asked.update(batch)
                    await asyncio.gather(*(self._ask(krpc, lookup, node) for node in batch))
        except TimeoutError:
            pass  # keep what the nodes asked so far have said
        return lookup.counts()

    async def _ask(self, krpc: _Krpc, lookup: _Lookup, endpoint: Endpoint) -> None:
        query: dict[bytes, bencode.Value] = {
            b"y": b"q",
            b"q": b"get_peers",
            b"ro": 1,
            b"a": {b"id": self.node_id, b"info_hash": lookup.info_hash, b"scrape": 1},
        }
        began = time.monotonic()
        reply = await krpc.ask(endpoint, query, self.query_timeout_seconds)
        outcome = Outcome.TIMEOUT if reply is None else self._absorb(lookup, endpoint, reply)
        metrics.record(self.transport, outcome, time.monotonic() - began)

    def _absorb(self, lookup: _Lookup, endpoint: Endpoint, reply: dict[bytes, object]) -> Outcome:
        if reply.get(b"y") == b"e":
            return Outcome.FAILED
        body = reply.get(b"r")
        if reply.get(b"y") != b"r" or not isinstance(body, dict):
            return Outcome.MALFORMED
        node_id = body.get(b"id")
        if isinstance(node_id, bytes) and len(node_id) == INFO_HASH_BYTES:
            lookup.nodes[endpoint] = node_id
        sane = True
        seeds, peers = body.get(b"BFsd"), body.get(b"BFpe")
        if seeds is not None or peers is not None:
            if _is_filter(seeds) and _is_filter(peers):
                lookup.seeds |= ScrapeFilter(seeds)
                lookup.peers |= ScrapeFilter(peers)
                lookup.answered = True
            else:
                sane = False
        values = body.get(b"values")
        if isinstance(values, list):
            for value in values:
                # Compact peer info: 4-byte IPv4 + port, or 16-byte IPv6 + port (BEP 32).
                if isinstance(value, bytes) and len(value) in (6, 18):
                    lookup.legacy_ips.add(value[:-2])
                    lookup.answered = True
        nodes = body.get(b"nodes")
        if isinstance(nodes, bytes):
            self._learn(lookup, nodes)
        return Outcome.OK if sane else Outcome.MALFORMED

    def _learn(self, lookup: _Lookup, nodes: bytes) -> None:
        usable = min(len(nodes) // _COMPACT_NODE, _NODES_PER_REPLY) * _COMPACT_NODE
        for at in range(0, usable, _COMPACT_NODE):
            node_id = nodes[at : at + INFO_HASH_BYTES]
            ip = ipaddress.IPv4Address(nodes[at + 20 : at + 24])
            port = int.from_bytes(nodes[at + 24 : at + 26], "big")
            endpoint = (str(ip), port)
            # Another node's word is all we have for these: never let it aim us inward.
            if (
                port
                and endpoint not in lookup.nodes
                and (self.allow_private or netguard.is_public_ip(ip))
            ):
                lookup.nodes[endpoint] = node_id


def _is_filter(value: object) -> TypeGuard[bytes]:
    return isinstance(value, bytes) and len(value) == FILTER_BYTES
