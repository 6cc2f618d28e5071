"""The crawler and the metadata fetcher against a real libtorrent swarm on 127.0.0.1.

Each test builds its own swarm (4 or 5 sessions in a DHT full mesh, three seeding torrents the
test made), so no test sees another's announces. Everything waits on a deadline, not a sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import libtorrent as lt
import pytest
from prometheus_client import REGISTRY

from keel.bittorrented.dht import bloom, crawler, fetcher
from keel.bittorrented.dht.session import DhtSession
from keel.bittorrented.naming import classify
from keel.bittorrented.torrent.magnet import parse_magnet
from keel.bittorrented.torrent.values import Metainfo
from tests.bittorrented.dht.swarm import Seeded, Swarm, eventually, make_torrent, swarm

pytestmark = pytest.mark.e2e

CRAWL_SECONDS = 15.0

FAST = crawler.CrawlerSettings(
    sample_tick_seconds=0.05,
    routing_refresh_seconds=0.5,
    min_requery_seconds=0.2,
    allow_private_addresses=True,  # every node is 127.0.0.1
    peer_lookup_seconds=3.0,
    peer_grace_seconds=0.05,
    fetch_timeout_seconds=5.0,
    max_concurrent_fetches=8,
    batch_size=100,
    flush_seconds=0.2,
    persist_seconds=0.5,
    blocked_refresh_seconds=0.2,
)


class Inbox:
    """A crawler sink that keeps every batch."""

    def __init__(self) -> None:
        self.batches: list[list[Metainfo]] = []

    async def __call__(self, batch: list[Metainfo]) -> None:
        self.batches.append(batch)

    @property
    def delivered(self) -> list[Metainfo]:
        return [metainfo for batch in self.batches for metainfo in batch]

    def hashes(self) -> set[bytes]:
        return {metainfo.info_hash for metainfo in self.delivered}


@pytest.fixture
async def loopback(tmp_path: Path) -> AsyncIterator[Swarm]:
    async with swarm(tmp_path, 4) as meshed:
        yield meshed


def seed_three(meshed: Swarm) -> list[Seeded]:
    """A multi-file torrent with folders, a single-file one, and a flat one, on three nodes."""
    seeders = meshed.nodes[1:4]
    return [
        meshed.seed(
            seeders[0],
            "Keel.Test.Distro.24.04",
            {
                "README.txt": os.urandom(1_000),
                "images/disk.img": os.urandom(70_000),
                "images/sums/SHA256SUMS": os.urandom(200),
            },
        ),
        meshed.seed(seeders[1], "Field Recording 1999.flac", {"": os.urandom(50_000)}),
        meshed.seed(
            seeders[2],
            "Public Domain Books",
            {"a.epub": os.urandom(3_000), "b.epub": os.urandom(4_000)},
        ),
    ]


def assert_reads_as_seeded(metainfo: Metainfo, seeded: Seeded) -> None:
    assert metainfo.info_hash == seeded.info_hash
    assert metainfo.name == seeded.name
    assert {f.path: f.size for f in metainfo.files} == seeded.files
    assert metainfo.files_count == len(seeded.files)
    assert metainfo.size == sum(seeded.files.values())
    # Indices are positions in the info dict, which is libtorrent's file order.
    layout = seeded.info.layout()
    for file in metainfo.files:
        assert layout.file_size(file.index) == file.size
    assert metainfo.private is False


def no_torrents_left(node: DhtSession) -> bool:
    return node.native.get_torrents() == []


async def crawl_until(
    node: DhtSession, store: bloom.SeenStore, inbox: Inbox, want: set[bytes]
) -> crawler.CrawlStats:
    """Run a crawler on ``node`` until ``inbox`` holds ``want``; stop it; its final stats."""
    crawl = crawler.Crawler(node, sink=inbox, store=store, settings=FAST)
    stop = asyncio.Event()
    running = asyncio.create_task(crawl.run(stop))
    try:
        await eventually(
            lambda: want <= inbox.hashes(), within=CRAWL_SECONDS, what="every torrent delivered"
        )
    finally:
        stop.set()
        await running
    return crawl.stats()


async def test_crawler_delivers_each_seeded_torrent_with_its_exact_files(
    loopback: Swarm,
) -> None:
    seeded = seed_three(loopback)
    node, inbox, store = loopback.nodes[0], Inbox(), bloom.MemorySeenStore()

    started = time.monotonic()
    stats = await crawl_until(node, store, inbox, {s.info_hash for s in seeded})

    by_hash = {m.info_hash: m for m in inbox.delivered}
    assert len(inbox.delivered) == len(by_hash) == 3, "each torrent delivered exactly once"
    for torrent in seeded:
        assert_reads_as_seeded(by_hash[torrent.info_hash], torrent)
        assert by_hash[torrent.info_hash].source == "dht"
    # Exactly the files seed_three wrote, folders relative to the name, a lone file as itself.
    assert {m.name: {f.path: f.size for f in m.files} for m in inbox.delivered} == {
        "Keel.Test.Distro.24.04": {
            "README.txt": 1_000,
            "images/disk.img": 70_000,
            "images/sums/SHA256SUMS": 200,
        },
        "Field Recording 1999.flac": {"Field Recording 1999.flac": 50_000},
        "Public Domain Books": {"a.epub": 3_000, "b.epub": 4_000},
    }
    assert stats.fetched == stats.ingested == 3
    assert stats.sample_replies > 0
    assert stats.sampled >= 3
    assert stats.new == 3
    assert stats.timed_out == stats.failed == stats.banned == 0
    assert no_torrents_left(node), "metadata-only torrents are removed"
    # The filter was saved on stop and now holds every delivered hash.
    assert store.data is not None
    saved = bloom.ScalableBloomFilter.from_bytes(store.data)
    assert all(torrent.info_hash in saved for torrent in seeded)
    assert time.monotonic() - started < CRAWL_SECONDS


async def test_second_run_with_the_filter_restored_from_bytes_fetches_nothing_again(
    loopback: Swarm,
) -> None:
    seeded = seed_three(loopback)
    want = {s.info_hash for s in seeded}
    first = bloom.MemorySeenStore()
    await crawl_until(loopback.nodes[0], first, Inbox(), want)
    assert first.data is not None

    # A restart: a new session (new port, empty routing table) and the filter from its bytes.
    restarted = await loopback.add_node()
    sampled: set[bytes] = set()
    restarted.alerts.subscribe(
        lt.dht_sample_infohashes_alert,
        lambda alert: sampled.update(s.to_bytes() for s in alert.samples),
    )
    inbox = Inbox()
    again = crawler.Crawler(
        restarted, sink=inbox, store=bloom.MemorySeenStore(first.data), settings=FAST
    )
    async with again:
        await eventually(
            lambda: want <= sampled, within=CRAWL_SECONDS, what="every hash sampled again"
        )
        stats = again.stats()

    assert stats.seen >= 3
    assert stats.new == stats.fetched == 0
    assert inbox.delivered == []
    assert no_torrents_left(restarted)


async def test_banned_name_is_never_delivered_and_its_hash_is_remembered(
    loopback: Swarm,
) -> None:
    seeded = seed_three(loopback)
    banned = loopback.seed(
        loopback.nodes[3], "Forbidden Material Pack", {"x.bin": os.urandom(2_000)}
    )
    node, inbox, store = loopback.nodes[0], Inbox(), bloom.MemorySeenStore()
    crawl = crawler.Crawler(
        node,
        sink=inbox,
        store=store,
        settings=FAST,
        is_banned=functools.partial(classify.is_banned, banned_keywords=["forbidden"]),
    )
    async with crawl:
        await eventually(
            lambda: crawl.stats().banned == 1 and {s.info_hash for s in seeded} <= inbox.hashes(),
            within=CRAWL_SECONDS,
            what="the banned torrent fetched and dropped, the others delivered",
        )

    assert banned.info_hash not in inbox.hashes()
    assert all(m.name != banned.name for m in inbox.delivered)
    assert store.data is not None
    assert banned.info_hash in bloom.ScalableBloomFilter.from_bytes(store.data)


async def test_fetch_of_an_unknown_hash_times_out_cleanly(loopback: Swarm) -> None:
    node = loopback.nodes[0]
    fetch = fetcher.MetadataFetcher(node, timeout_seconds=1.0)
    unknown = os.urandom(20)

    outcome = await fetch.fetch(unknown)

    assert outcome.status is fetcher.FetchStatus.TIMED_OUT
    assert outcome.metainfo is None
    assert outcome.info_hash == unknown
    assert 0.9 <= outcome.elapsed_seconds < 3.0
    assert fetch.in_flight == 0
    await eventually(lambda: no_torrents_left(node), within=2.0, what="the torrent removed")
    await fetch.aclose()


async def test_concurrent_fetches_on_one_session_each_get_their_own_metadata(
    loopback: Swarm,
) -> None:
    seeded = seed_three(loopback)
    node = loopback.nodes[0]
    fetch = fetcher.MetadataFetcher(node, timeout_seconds=5.0)
    unknown = os.urandom(20)

    outcomes = await asyncio.gather(
        *(fetch.fetch(s.info_hash, peers=[s.peer]) for s in seeded),
        fetch.fetch(seeded[0].info_hash, peers=[seeded[0].peer]),  # shares the first fetch
        fetch.fetch(unknown, timeout_seconds=1.0),
    )

    for outcome, torrent in zip(outcomes[:3], seeded, strict=True):
        assert outcome.status is fetcher.FetchStatus.FETCHED, outcome.detail
        assert outcome.metainfo is not None
        assert_reads_as_seeded(outcome.metainfo, torrent)
        assert outcome.info_section == torrent.info.info_section()
    assert outcomes[3].metainfo == outcomes[0].metainfo
    assert outcomes[4].status is fetcher.FetchStatus.TIMED_OUT
    await eventually(lambda: no_torrents_left(node), within=2.0, what="every torrent removed")
    await fetch.aclose()


async def test_fetch_by_magnet_link_lists_the_files(loopback: Swarm) -> None:
    multi, single, flat = seed_three(loopback)
    node = loopback.nodes[0]
    fetch = fetcher.MetadataFetcher(node, timeout_seconds=5.0)
    host, port = multi.peer

    # With the seeder as an x.pe peer; by the DHT alone; and from our own parsed Magnet.
    with_peer = await fetch.fetch_magnet(f"{lt.make_magnet_uri(multi.info)}&x.pe={host}:{port}")
    by_dht = await fetch.fetch_magnet(lt.make_magnet_uri(single.info))
    parsed = await fetch.fetch_magnet(parse_magnet(lt.make_magnet_uri(flat.info)))

    for outcome, torrent in ((with_peer, multi), (by_dht, single), (parsed, flat)):
        assert outcome.status is fetcher.FetchStatus.FETCHED, outcome.detail
        assert outcome.metainfo is not None
        assert_reads_as_seeded(outcome.metainfo, torrent)
    await eventually(lambda: no_torrents_left(node), within=2.0, what="every torrent removed")
    await fetch.aclose()


async def test_crawler_stops_cleanly_with_fetches_in_flight(loopback: Swarm) -> None:
    # A hash announced by a node that has no such torrent: peers are found, metadata never is.
    decoy = os.urandom(20)
    announcer = loopback.nodes[1]
    announcer.native.dht_announce(lt.sha1_hash(decoy), announcer.port, 0)
    node, store = loopback.nodes[0], bloom.MemorySeenStore()
    slow = dataclasses.replace(FAST, fetch_timeout_seconds=30.0)
    crawl = crawler.Crawler(node, sink=Inbox(), store=store, settings=slow)
    stop = asyncio.Event()
    running = asyncio.create_task(crawl.run(stop))
    await eventually(lambda: crawl.stats().in_flight == 1, within=CRAWL_SECONDS, what="a fetch")

    started = time.monotonic()
    stop.set()
    await running
    assert time.monotonic() - started < 2.0
    assert crawl.stats().in_flight == 0
    await eventually(lambda: no_torrents_left(node), within=2.0, what="the torrent removed")
    # Never fetched, so not remembered: the next run tries it again.
    assert store.data is None or decoy not in bloom.ScalableBloomFilter.from_bytes(store.data)


async def test_a_failing_sink_loses_nothing(loopback: Swarm) -> None:
    seeded = seed_three(loopback)
    want = {s.info_hash for s in seeded}
    inbox = Inbox()
    failures = 0

    async def flaky(batch: list[Metainfo]) -> None:
        nonlocal failures
        if failures < 2:
            failures += 1
            raise ConnectionError("database down")
        await inbox(batch)

    store = bloom.MemorySeenStore()
    crawl = crawler.Crawler(loopback.nodes[0], sink=flaky, store=store, settings=FAST)
    async with crawl:
        await eventually(lambda: want <= inbox.hashes(), within=CRAWL_SECONDS, what="delivery")
    stats = crawl.stats()
    assert stats.sink_failures == 2
    assert stats.ingested == len(inbox.delivered) == 3
    assert store.data is not None
    assert all(h in bloom.ScalableBloomFilter.from_bytes(store.data) for h in want)


async def test_a_crawler_that_ingests_nothing_raises_the_stalled_gauge(loopback: Swarm) -> None:
    quiet = dataclasses.replace(FAST, stall_window_seconds=0.5, stall_min_per_minute=1.0)
    crawl = crawler.Crawler(
        loopback.nodes[0], sink=Inbox(), store=bloom.MemorySeenStore(), settings=quiet
    )
    async with crawl:
        await eventually(lambda: crawl.stalled, within=5.0, what="the stall flagged")
        assert REGISTRY.get_sample_value("bittorrented_crawler_stalled") == 1
    assert crawl.stats().sample_replies > 0, "it was sampling, just finding nothing"


async def test_a_torrent_with_many_files_lists_the_first_and_counts_them_all(
    loopback: Swarm,
) -> None:
    files = {f"part{i // 500}/file-{i:05d}.txt": b"x" for i in range(2_500)}
    big = loopback.seed(loopback.nodes[1], "Many Small Files", files)
    # Its seeder may still be loading 2,500 files and refuse the first dial; the redial
    # comes after min_reconnect_time (2 s), well inside the default 10 s.
    fetch = fetcher.MetadataFetcher(loopback.nodes[0], max_files=100)

    outcome = await fetch.fetch(big.info_hash, peers=[big.peer])

    assert outcome.status is fetcher.FetchStatus.FETCHED, outcome.detail
    assert outcome.metainfo is not None
    assert outcome.info_section is not None
    assert len(outcome.info_section) > fetcher.INLINE_PARSE_BYTES  # parsed off the loop
    assert len(outcome.metainfo.files) == 100
    assert outcome.metainfo.files_count == 2_500
    assert outcome.metainfo.files_over_cap
    assert outcome.metainfo.size == 2_500
    listed = {f.path: f.size for f in outcome.metainfo.files}
    assert listed.items() <= big.files.items()
    await fetch.aclose()


async def test_a_hybrid_torrent_reads_without_pad_files_by_either_of_its_hashes(
    loopback: Swarm,
) -> None:
    hybrid = loopback.seed(
        loopback.nodes[2],
        "Hybrid v1 v2 Set",
        {"one.bin": os.urandom(20_000), "two.bin": os.urandom(30_001), "three.bin": b"3"},
        hybrid=True,
    )
    assert hybrid.info.info_hashes().has_v2()
    assert hybrid.info.num_files() > 3, "libtorrent put pad files between the files"
    truncated_v2 = hybrid.info.info_hashes().v2.to_bytes()[:20]
    fetch = fetcher.MetadataFetcher(loopback.nodes[0], timeout_seconds=5.0)

    by_v1 = await fetch.fetch(hybrid.info_hash, peers=[hybrid.peer])
    by_v2 = await fetch.fetch(truncated_v2, peers=[hybrid.peer])

    for outcome in (by_v1, by_v2):
        assert outcome.status is fetcher.FetchStatus.FETCHED, outcome.detail
        assert outcome.metainfo is not None
        assert_reads_as_seeded(outcome.metainfo, hybrid)  # keyed by v1, pads left out
    assert by_v2.info_hash == truncated_v2
    await fetch.aclose()


async def test_hashes_blocked_elsewhere_are_skipped_and_re_read_while_running(
    loopback: Swarm, tmp_path: Path
) -> None:
    first = loopback.seed(loopback.nodes[1], "Allowed Release", {"a.bin": os.urandom(5_000)})
    blocked_store = bloom.MemorySeenStore()
    inbox = Inbox()
    crawl = crawler.Crawler(
        loopback.nodes[0],
        sink=inbox,
        store=bloom.MemorySeenStore(),
        blocked=blocked_store,
        settings=FAST,
    )
    async with crawl:
        await eventually(lambda: first.info_hash in inbox.hashes(), within=CRAWL_SECONDS, what="a")
        # Removed through the API while the crawler runs (before it reached the DHT here, so
        # the test does not race the fetch): the crawler re-reads the blocked filter.
        parent = tmp_path / "later"
        parent.mkdir()
        later_info = make_torrent(parent, "Removed Release", {"b.bin": os.urandom(5_000)})
        await bloom.ban_hashes(blocked_store, [later_info.info_hashes().v1.to_bytes()])
        await eventually(
            lambda: crawl.stats().blocked_filter_items == 1, within=5.0, what="re-read"
        )
        later = loopback.seed_existing(loopback.nodes[2], later_info, parent)
        await eventually(lambda: crawl.stats().blocked >= 1, within=CRAWL_SECONDS, what="skip")
    assert later.info_hash not in inbox.hashes()
