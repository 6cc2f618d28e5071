"""Scrape a UDP tracker (BEP 15): connect for a connection id, then scrape up to 74 hashes a
packet.

BEP 15 retransmits after 15 * 2^n seconds, which suits a client that announces once and waits.
A refresh round scrapes hundreds of trackers, most of them dead, so we retry on a much shorter
doubling schedule (``first_wait_seconds``) inside one total budget per exchange
(``timeout_seconds``): a dead tracker costs that budget once, not an hour.
"""

from __future__ import annotations

import asyncio
import secrets
import struct
import time
from collections.abc import Callable, Sequence
from socket import SOCK_DGRAM
from typing import cast
from urllib.parse import urlsplit

from keel.bittorrented.swarm import metrics
from keel.bittorrented.swarm.base import Outcome, SwarmCounts, plausible
from keel.bittorrented.torrent.values import INFO_HASH_BYTES
from keel.core import netguard

__all__ = ["MAX_HASHES_PER_PACKET", "UdpTracker", "parse_udp_url"]

PROTOCOL_ID = 0x41727101980  # BEP 15's magic constant, sent in every connect request
ACTION_CONNECT, ACTION_SCRAPE, ACTION_ERROR = 0, 2, 3
# 16-byte header + 74 * 20 bytes stays under a 1500-byte MTU with IP/UDP headers.
MAX_HASHES_PER_PACKET = 74
# BEP 15: a client may use a connection id until one minute after it received it.
CONNECTION_ID_SECONDS = 60.0
_HEADER = struct.Struct(">II")  # action, transaction id
_CONNECT = struct.Struct(">QII")  # protocol id / connection id, action, transaction id
_COUNTS = struct.Struct(">III")  # seeders, completed, leechers
_INBOX = 64  # datagrams queued before we drop (a flood, not a tracker)


def parse_udp_url(url: str) -> tuple[str, int]:
    """``udp://host:port[/path]`` → (host, port); ValueError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme != "udp" or not parts.hostname:
        raise ValueError("not a udp:// tracker URL")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("bad port in tracker URL") from exc
    if not port:
        raise ValueError("a udp:// tracker URL needs a port")
    return parts.hostname, port


class _Failed(Exception):
    """The exchange ended with an outcome other than OK."""

    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(detail or outcome.value)
        self.outcome = outcome


class _Channel(asyncio.DatagramProtocol):
    """A connected UDP socket to one tracker: only its datagrams (and ICMP errors) arrive."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes | OSError] = asyncio.Queue(_INBOX)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not self.inbox.full():
            self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError) and not self.inbox.full():
            self.inbox.put_nowait(exc)

    def send(self, packet: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(packet)


class UdpTracker:
    """A :class:`~keel.bittorrented.swarm.base.Scraper` for one ``udp://`` tracker.

    ``timeout_seconds`` bounds one exchange (connect plus one scrape packet, retries included);
    a timed-out or unreachable tracker is not asked again for the rest of the call. Keep one
    instance per tracker to reuse its connection id across calls within a minute (each call
    has its own socket; a tracker that ties ids to the source port answers with an error, and
    we connect again).
    """

    transport = "udp"

    def __init__(
        self,
        url: str,
        *,
        allow_private: bool = False,
        timeout_seconds: float = 4.0,
        first_wait_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_seconds <= 0 or first_wait_seconds <= 0:
            raise ValueError("timeouts must be positive")
        self.url = url
        self.host, self.port = parse_udp_url(url)
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self.first_wait_seconds = first_wait_seconds
        self._clock = clock
        self._connection: tuple[bytes, float] | None = None  # id, when we received it

    async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
        """Counts for the hashes the tracker answered; see the Protocol."""
        hashes = list(dict.fromkeys(h for h in info_hashes if len(h) == INFO_HASH_BYTES))
        if not hashes:
            return {}
        started = time.monotonic()
        try:
            # A magnet's tracker URL: vetted after DNS, then the socket goes to that address.
            addresses = await netguard.resolve(
                self.host, self.port, allow_private=self.allow_private, socket_type=SOCK_DGRAM
            )
        except netguard.UnresolvableHost:
            metrics.record(self.transport, Outcome.UNREACHABLE, time.monotonic() - started)
            return {}
        except netguard.BlockedDestination:
            metrics.record(self.transport, Outcome.REFUSED, time.monotonic() - started)
            return {}
        loop = asyncio.get_running_loop()
        try:
            transport, channel = await loop.create_datagram_endpoint(
                _Channel, remote_addr=(addresses[0], self.port)
            )
        except OSError:
            metrics.record(self.transport, Outcome.UNREACHABLE, time.monotonic() - started)
            return {}
        found: dict[bytes, SwarmCounts] = {}
        try:
            for at in range(0, len(hashes), MAX_HASHES_PER_PACKET):
                chunk = hashes[at : at + MAX_HASHES_PER_PACKET]
                started = time.monotonic()
                try:
                    found.update(await self._scrape_packet(channel, chunk))
                except _Failed as failed:
                    metrics.record(self.transport, failed.outcome, time.monotonic() - started)
                    if failed.outcome in (Outcome.TIMEOUT, Outcome.UNREACHABLE):
                        break  # a dead tracker: do not spend the budget again per chunk
                else:
                    metrics.record(self.transport, Outcome.OK, time.monotonic() - started)
        finally:
            transport.close()
        return found

    async def _scrape_packet(
        self, channel: _Channel, chunk: list[bytes]
    ) -> dict[bytes, SwarmCounts]:
        deadline = asyncio.get_running_loop().time() + self.timeout_seconds
        reused = self._fresh_connection_id() is not None
        try:
            body = await self._scrape_once(channel, chunk, deadline)
        except _Failed as failed:
            if failed.outcome is not Outcome.FAILED or not reused:
                raise
            # Trackers answer an expired or foreign connection id with an error: connect anew.
            body = await self._scrape_once(channel, chunk, deadline)
        found: dict[bytes, SwarmCounts] = {}
        # Entries come in request order; a short reply leaves the rest unknown.
        for index, info_hash in enumerate(chunk[: len(body) // _COUNTS.size]):
            seeders, completed, leechers = _COUNTS.unpack_from(body, index * _COUNTS.size)
            counts = plausible(seeders, leechers, completed)
            if counts is not None:
                found[info_hash] = counts
        return found

    async def _scrape_once(self, channel: _Channel, chunk: list[bytes], deadline: float) -> bytes:
        cached = self._fresh_connection_id()
        connection_id = cached if cached is not None else await self._connect(channel, deadline)
        payload = b"".join(chunk)
        try:
            return await self._exchange(
                channel,
                lambda tid: connection_id + _HEADER.pack(ACTION_SCRAPE, tid) + payload,
                ACTION_SCRAPE,
                deadline,
            )
        except _Failed as failed:
            if failed.outcome is Outcome.FAILED:
                self._connection = None
            raise

    async def _connect(self, channel: _Channel, deadline: float) -> bytes:
        body = await self._exchange(
            channel,
            lambda tid: _CONNECT.pack(PROTOCOL_ID, ACTION_CONNECT, tid),
            ACTION_CONNECT,
            deadline,
        )
        if len(body) < 8:
            raise _Failed(Outcome.MALFORMED, "connect reply shorter than 16 bytes")
        connection_id = body[:8]
        self._connection = (connection_id, self._clock())
        return connection_id

    def _fresh_connection_id(self) -> bytes | None:
        if self._connection is None:
            return None
        connection_id, received = self._connection
        if self._clock() - received >= CONNECTION_ID_SECONDS:
            self._connection = None
            return None
        return connection_id

    async def _exchange(
        self,
        channel: _Channel,
        build: Callable[[int], bytes],
        action: int,
        deadline: float,
    ) -> bytes:
        """Send ``build(tid)`` until a reply with one of our transaction ids arrives; returns
        the bytes after its 8-byte header. Replies to an earlier attempt count: UDP is slow,
        not wrong. Anything else (other ids, short packets) is ignored as noise."""
        loop = asyncio.get_running_loop()
        sent: set[int] = set()
        wait = self.first_wait_seconds
        while True:
            tid = secrets.randbits(32)
            sent.add(tid)
            channel.send(build(tid))
            attempt_end = min(loop.time() + wait, deadline)
            reply = await _receive(channel, sent, attempt_end)
            if reply is not None:
                got_action, body = reply
                if got_action == ACTION_ERROR:
                    message = body.decode("utf-8", "replace")[:200]
                    raise _Failed(Outcome.FAILED, message)
                if got_action != action:
                    raise _Failed(Outcome.MALFORMED, f"action {got_action}, expected {action}")
                return body
            if loop.time() >= deadline:
                raise _Failed(Outcome.TIMEOUT)
            wait *= 2


async def _receive(channel: _Channel, sent: set[int], until: float) -> tuple[int, bytes] | None:
    """The next datagram answering one of ``sent``, or None at ``until``."""
    try:
        async with asyncio.timeout_at(until):
            while True:
                item = await channel.inbox.get()
                if isinstance(item, OSError):
                    # ICMP port unreachable on a connected socket: nobody listens there.
                    raise _Failed(Outcome.UNREACHABLE, str(item))
                if len(item) < _HEADER.size:
                    continue
                action, tid = _HEADER.unpack_from(item)
                if tid in sent:
                    return action, item[_HEADER.size :]
    except TimeoutError:
        return None
