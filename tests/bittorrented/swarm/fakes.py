"""Scripted UDP servers on 127.0.0.1 for the cases a real tracker or node will not produce on
demand: lost packets, wrong transaction ids, error replies, garbage."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import cast

from prometheus_client import REGISTRY

Handler = Callable[[bytes], bytes | list[bytes] | None]  # reply, replies in order, or none


class _Server(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.received: list[bytes] = []
        self.senders: list[tuple[str, int]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport is not a DatagramTransport subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.received.append(data)
        self.senders.append((str(addr[0]), int(str(addr[1]))))
        reply = self.handler(data)
        replies = [reply] if isinstance(reply, bytes) else reply or []
        for one in replies:
            if self.transport is not None:
                self.transport.sendto(one, addr)


@dataclass
class UdpServer:
    port: int
    protocol: _Server

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def received(self) -> list[bytes]:
        return self.protocol.received


@asynccontextmanager
async def udp_server(handler: Handler) -> AsyncIterator[UdpServer]:
    """Serve ``handler(datagram)`` on a random 127.0.0.1 UDP port."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Server(handler), local_addr=("127.0.0.1", 0)
    )
    try:
        yield UdpServer(transport.get_extra_info("sockname")[1], protocol)
    finally:
        transport.close()


PROTOCOL_ID = 0x41727101980


@dataclass
class FakeUdpTracker:
    """BEP 15 as a tracker speaks it, with knobs to misbehave."""

    # info hash -> (seeders, completed, leechers), in BEP 15's order
    counts: dict[bytes, tuple[int, int, int]] = field(default_factory=dict)
    connects: int = 0
    scrapes: list[list[bytes]] = field(default_factory=list)
    connection_id: bytes = b"\x11" * 8
    drop_scrapes: int = 0  # lose this many scrape packets before answering
    tid_offset: int = 0  # answer with the wrong transaction id
    error_on_scrape: bool = False  # answer every scrape with an error (action 3)

    def handle(self, data: bytes) -> bytes | None:
        if len(data) < 16:
            return None
        if struct.unpack_from(">Q", data)[0] == PROTOCOL_ID and data[8:12] == b"\0\0\0\0":
            self.connects += 1
            tid = struct.unpack_from(">I", data, 12)[0]
            return struct.pack(">II", 0, (tid + self.tid_offset) % 2**32) + self.connection_id
        action, tid = struct.unpack_from(">II", data, 8)
        if action != 2:
            return None
        reply_tid = (tid + self.tid_offset) % 2**32
        # A connection id we did not hand out (or an old one) gets an error, as trackers do.
        if self.error_on_scrape or data[:8] != self.connection_id:
            return struct.pack(">II", 3, reply_tid) + b"Connection ID missmatch."
        hashes = [data[at : at + 20] for at in range(16, len(data), 20)]
        self.scrapes.append(hashes)
        if self.drop_scrapes:
            self.drop_scrapes -= 1
            return None
        body = b"".join(struct.pack(">III", *self.counts.get(h, (0, 0, 0))) for h in hashes)
        return struct.pack(">II", 2, reply_tid) + body


def scrape_count(transport: str, outcome: str) -> float:
    """How many scrape exchanges of ``transport`` ended in ``outcome`` so far."""
    value = REGISTRY.get_sample_value(
        "bittorrented_swarm_scrapes_total", {"transport": transport, "outcome": outcome}
    )
    return value or 0.0
