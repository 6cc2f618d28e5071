from __future__ import annotations

import asyncio
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.bittorrented.swarm.base import SwarmCounts
from keel.bittorrented.swarm.udp_tracker import MAX_HASHES_PER_PACKET, UdpTracker, parse_udp_url
from tests.bittorrented.swarm.conftest import LEECHERS, QUIET, SEEDERS, Swarm, synthetic_hash
from tests.bittorrented.swarm.fakes import FakeUdpTracker, scrape_count, udp_server

A, B = synthetic_hash("a"), synthetic_hash("b")


def fast(url: str, **kwargs: object) -> UdpTracker:
    options: dict[str, object] = {
        "allow_private": True,
        "timeout_seconds": 0.3,
        "first_wait_seconds": 0.05,
    }
    options.update(kwargs)
    return UdpTracker(url, **options)  # type: ignore[arg-type]


async def test_scrapes_seeders_and_leechers_from_opentracker(swarm: Swarm) -> None:
    tracker = UdpTracker(swarm.tracker.udp_announce, allow_private=True)
    found = await tracker.scrape([swarm.info_hash, QUIET])
    assert found[swarm.info_hash].seeders == SEEDERS >= 1
    assert found[swarm.info_hash].leechers == LEECHERS
    assert found[QUIET] == SwarmCounts(0, 0, 0)


async def test_reuses_the_connection_id_for_a_minute_then_connects_again() -> None:
    fake = FakeUdpTracker(counts={A: (3, 9, 1)})
    now = [1000.0]
    async with udp_server(fake.handle) as server:
        tracker = fast(f"udp://127.0.0.1:{server.port}", clock=lambda: now[0])
        assert await tracker.scrape([A]) == {A: SwarmCounts(3, 1, 9)}
        now[0] += 59
        assert await tracker.scrape([A]) == {A: SwarmCounts(3, 1, 9)}
        assert fake.connects == 1
        now[0] += 2
        await tracker.scrape([A])
        assert fake.connects == 2


async def test_an_expired_connection_id_error_reconnects_once() -> None:
    fake = FakeUdpTracker(counts={A: (2, 0, 0)})
    async with udp_server(fake.handle) as server:
        tracker = fast(f"udp://127.0.0.1:{server.port}")
        await tracker.scrape([A])
        fake.connection_id = b"\x22" * 8  # the tracker forgot our id
        assert await tracker.scrape([A]) == {A: SwarmCounts(2, 0, 0)}
        assert fake.connects == 2


async def test_sends_at_most_74_hashes_a_packet() -> None:
    hashes = [synthetic_hash(str(n)) for n in range(2 * MAX_HASHES_PER_PACKET + 2)]
    fake = FakeUdpTracker(counts={h: (n, 0, n + 1) for n, h in enumerate(hashes)})
    async with udp_server(fake.handle) as server:
        found = await fast(f"udp://127.0.0.1:{server.port}").scrape(hashes)
    assert [len(p) for p in fake.scrapes] == [74, 74, 2]
    assert fake.connects == 1
    assert found == {h: SwarmCounts(n, n + 1, 0) for n, h in enumerate(hashes)}


async def test_a_lost_packet_is_sent_again() -> None:
    fake = FakeUdpTracker(counts={A: (1, 0, 0)}, drop_scrapes=2)
    async with udp_server(fake.handle) as server:
        found = await fast(f"udp://127.0.0.1:{server.port}", timeout_seconds=1.0).scrape([A])
    assert found == {A: SwarmCounts(1, 0, 0)}
    assert len(fake.scrapes) == 3


async def test_a_dead_port_is_unknown_within_the_timeout() -> None:
    async with udp_server(lambda data: None) as server:
        port = server.port  # closed when the block ends: nothing listens there afterwards
    before = scrape_count("udp", "unreachable") + scrape_count("udp", "timeout")
    started = time.monotonic()
    assert await fast(f"udp://127.0.0.1:{port}").scrape([A, B]) == {}
    assert time.monotonic() - started < 0.6
    assert scrape_count("udp", "unreachable") + scrape_count("udp", "timeout") == before + 1


async def test_a_silent_tracker_is_unknown_after_the_timeout() -> None:
    async with udp_server(lambda data: None) as server:
        started = time.monotonic()
        assert await fast(f"udp://127.0.0.1:{server.port}").scrape([A]) == {}
        elapsed = time.monotonic() - started
        sent = len(server.received)
    assert 0.25 < elapsed < 0.6
    assert sent >= 3  # 0.05 s, then 0.1 s, then the rest of the budget: backoff within 0.3 s


async def test_a_reply_with_the_wrong_transaction_id_is_ignored() -> None:
    fake = FakeUdpTracker(counts={A: (5, 0, 0)}, tid_offset=1)
    async with udp_server(fake.handle) as server:
        assert await fast(f"udp://127.0.0.1:{server.port}").scrape([A]) == {}
    assert fake.connects >= 2  # it kept asking, never took the forged connect reply


async def test_noise_before_the_real_reply_is_skipped() -> None:
    fake = FakeUdpTracker(counts={A: (4, 0, 2)})

    def noisy(data: bytes) -> list[bytes] | None:
        reply = fake.handle(data)
        if reply is None:
            return None
        forged = reply[:4] + bytes(b ^ 0xFF for b in reply[4:8]) + reply[8:]
        return [b"\x00\x01", forged, reply]  # too short, wrong transaction id, the answer

    async with udp_server(noisy) as server:
        tracker = fast(f"udp://127.0.0.1:{server.port}")
        assert await tracker.scrape([A]) == {A: SwarmCounts(4, 2, 0)}
    assert fake.connects == 1


async def test_an_error_reply_is_unknown_and_counted() -> None:
    fake = FakeUdpTracker(error_on_scrape=True)
    before = scrape_count("udp", "failed")
    async with udp_server(fake.handle) as server:
        assert await fast(f"udp://127.0.0.1:{server.port}").scrape([A]) == {}
    assert scrape_count("udp", "failed") == before + 1


async def test_loopback_is_refused_unless_private_addresses_are_allowed() -> None:
    fake = FakeUdpTracker(counts={A: (1, 0, 0)})
    before = scrape_count("udp", "refused")
    async with udp_server(fake.handle) as server:
        assert await UdpTracker(f"udp://127.0.0.1:{server.port}").scrape([A]) == {}
        assert await UdpTracker(f"udp://localhost:{server.port}").scrape([A]) == {}
        assert server.received == []
    assert scrape_count("udp", "refused") == before + 2


async def test_impossible_counts_are_unknown() -> None:
    fake = FakeUdpTracker(counts={A: (2**32 - 1, 0, 0), B: (1, 0, 1)})
    async with udp_server(fake.handle) as server:
        assert await fast(f"udp://127.0.0.1:{server.port}").scrape([A, B]) == {
            B: SwarmCounts(1, 1, 0)
        }


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("udp://tracker.example:6969/announce", ("tracker.example", 6969)),
        ("udp://[2001:db8::1]:80", ("2001:db8::1", 80)),
    ],
)
def test_parses_udp_tracker_urls(url: str, parsed: tuple[str, int]) -> None:
    assert parse_udp_url(url) == parsed


@pytest.mark.parametrize(
    "url", ["udp://tracker.example/announce", "http://t:1/announce", "udp://:80", "udp://h:x"]
)
def test_refuses_what_is_not_a_udp_tracker_url(url: str) -> None:
    with pytest.raises(ValueError, match="tracker URL"):
        parse_udp_url(url)


_replies = st.one_of(
    st.binary(max_size=64),
    # Well-framed replies (our transaction id, any action) with random bodies: the parser
    # sees these, not just the header check.
    st.tuples(st.sampled_from([0, 1, 2, 3, 7]), st.binary(max_size=200)),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(connect_reply=_replies, scrape_reply=_replies)
def test_random_replies_are_unknown_or_sane_never_an_exception(
    connect_reply: bytes | tuple[int, bytes], scrape_reply: bytes | tuple[int, bytes]
) -> None:
    def frame(reply: bytes | tuple[int, bytes], data: bytes, tid_at: int) -> bytes:
        if isinstance(reply, bytes):
            return reply
        action, body = reply
        return struct.pack(">I", action) + data[tid_at : tid_at + 4] + body

    def handle(data: bytes) -> bytes | None:
        is_connect = len(data) == 16 and data[8:12] == b"\0\0\0\0"
        if is_connect:
            return frame(connect_reply, data, 12)
        return frame(scrape_reply, data, 12)

    async def scenario() -> dict[bytes, SwarmCounts]:
        async with udp_server(handle) as server:
            tracker = fast(f"udp://127.0.0.1:{server.port}", timeout_seconds=0.04)
            return await tracker.scrape([A, B])

    found = asyncio.run(scenario())
    assert set(found) <= {A, B}
    assert all(isinstance(c, SwarmCounts) and c.seeders >= 0 for c in found.values())
