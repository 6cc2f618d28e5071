from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.search import query
from keel.bittorrented.search.base import SearchRequest, Sort
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.swarm import http_tracker, trackers
from keel.bittorrented.swarm.base import SwarmCounts
from keel.bittorrented.swarm.dht_scrape import DhtScraper
from keel.bittorrented.swarm.refresh import RoundReport, SwarmRefresher
from keel.bittorrented.swarm.trackers import TrackerPool
from keel.bittorrented.torrent.values import Metainfo
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW, entry
from tests.bittorrented.swarm.conftest import LEECHERS, SEEDERS, Swarm
from tests.bittorrented.swarm.fakes import FakeUdpTracker, udp_server


@dataclass
class FakeDht:
    """A Scraper that knows what it is told, and remembers what it was asked."""

    answers: dict[bytes, SwarmCounts] = field(default_factory=dict)
    asked: list[list[bytes]] = field(default_factory=list)
    transport: str = "dht"

    async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
        self.asked.append(list(info_hashes))
        return {h: self.answers[h] for h in info_hashes if h in self.answers}


@pytest.fixture
async def pool() -> AsyncIterator[TrackerPool]:
    async with http_tracker.open_client(allow_private=True) as client:
        yield TrackerPool(client=client, allow_private=True, timeout_seconds=1.0)


async def ranked(engine: AsyncEngine, sort: Sort) -> list[tuple[str, int, int]]:
    search = bootstrap.search_engine(engine)
    page = await search.search(SearchRequest(query.parse("swarmtest"), sort, "desc"))
    return [(hit.name, hit.seeders, hit.leechers) for hit in page.hits]


async def source_rows(engine: AsyncEngine, info_hash: bytes) -> dict[str, tuple[int, int]]:
    s = models.torrents_torrent_sources
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(s.c.source, s.c.seeders, s.c.leechers).where(s.c.info_hash == info_hash)
        )
        return {source: (seeders, leechers) for source, seeders, leechers in rows}


@pytest.mark.parametrize("transport", ["http", "udp"])
async def test_a_round_against_opentracker_reorders_the_search_by_seeders(
    bt_engine: AsyncEngine, swarm: Swarm, pool: TrackerPool, transport: str
) -> None:
    seeded = Metainfo(
        info_hash=swarm.info_hash,
        name="swarmtest beta",
        size=swarm.info.total_size(),
        files=(),
        files_count=swarm.info.num_files(),
        seeders=0,
        leechers=0,
        source="test",
        published_at=NOW,
    )
    alpha = entry("swarmtest alpha", seeders=3)
    async with bt_engine.begin() as conn:
        await bulk.write(
            conn, [catalog.Entry(seeded, Classification(ContentType.UNKNOWN)), alpha], now=NOW
        )
        if transport == "http":
            await trackers.remember(conn, swarm.info_hash, [swarm.tracker.http_announce], now=NOW)
    assert await ranked(bt_engine, "seeders") == [
        ("swarmtest alpha", 3, 0),
        ("swarmtest beta", 0, 0),
    ]
    later = NOW + timedelta(hours=1)
    refresher = SwarmRefresher(
        bt_engine,
        tracker_pool=pool,
        # The UDP run names the tracker as a default one instead of remembering it.
        default_trackers=[swarm.tracker.udp_announce] if transport == "udp" else [],
        clock=FrozenClock(later),
    )
    report = await refresher.refresh_round()

    assert report.picked == 2
    assert report.tracker == (1 if transport == "http" else 2)  # UDP answers every hash
    expected = [("swarmtest beta", SEEDERS, LEECHERS), ("swarmtest alpha", 3, 0)]
    assert await ranked(bt_engine, "seeders") == expected
    assert await ranked(bt_engine, "relevance") == expected  # same length: seeders decide
    assert (await source_rows(bt_engine, swarm.info_hash))["tracker"] == (SEEDERS, LEECHERS)
    s = models.torrent_scrapes
    async with bt_engine.connect() as conn:
        scraped = (await conn.execute(select(s.c.scraped_at))).scalars().all()
    assert scraped == [later, later]


async def test_scrapes_never_scraped_torrents_first_then_the_oldest(
    bt_engine: AsyncEngine,
) -> None:
    items = [entry(f"swarmtest {n}") for n in range(3)]
    async with bt_engine.begin() as conn:
        await bulk.write(conn, items, now=NOW)
    clock = FrozenClock(NOW)
    dht = FakeDht({i.metainfo.info_hash: SwarmCounts(1, 1) for i in items})
    refresher = SwarmRefresher(
        bt_engine,
        tracker_pool=None,
        dht=dht,
        batch_size=2,
        rescrape_after=timedelta(hours=1),
        clock=clock,
    )
    first = await refresher.refresh_round()
    clock.advance(timedelta(minutes=1))
    second = await refresher.refresh_round()
    clock.advance(timedelta(minutes=1))
    assert (await refresher.refresh_round()).picked == 0  # everything is fresh
    clock.advance(timedelta(hours=2))
    fourth = await refresher.refresh_round()

    assert (first.picked, second.picked, fourth.picked) == (2, 1, 2)
    assert set(dht.asked[0]).isdisjoint(dht.asked[1])
    assert set(dht.asked[2]) == set(dht.asked[0])  # scraped longest ago
    assert first.dht == 2
    assert first.unknown == 0


async def test_asks_the_dht_only_about_torrents_no_tracker_knew(
    bt_engine: AsyncEngine, pool: TrackerPool
) -> None:
    tracked, untracked = entry("swarmtest tracked"), entry("swarmtest untracked")
    fake = FakeUdpTracker(counts={tracked.metainfo.info_hash: (7, 0, 2)})
    dht = FakeDht({untracked.metainfo.info_hash: SwarmCounts(4, 1)})
    async with udp_server(fake.handle) as server:
        async with bt_engine.begin() as conn:
            await bulk.write(conn, [tracked, untracked], now=NOW)
            await trackers.remember(
                conn, tracked.metainfo.info_hash, [f"udp://127.0.0.1:{server.port}"], now=NOW
            )
        refresher = SwarmRefresher(bt_engine, tracker_pool=pool, dht=dht, clock=FrozenClock(NOW))
        report = await refresher.refresh_round()
    assert (report.tracker, report.dht) == (1, 1)
    assert dht.asked == [[untracked.metainfo.info_hash]]
    assert await source_rows(bt_engine, tracked.metainfo.info_hash) == {
        "test": (0, 0),
        "tracker": (7, 2),
    }
    assert await source_rows(bt_engine, untracked.metainfo.info_hash) == {
        "test": (0, 0),
        "dht": (4, 1),
    }
    assert await ranked(bt_engine, "seeders") == [
        ("swarmtest tracked", 7, 2),
        ("swarmtest untracked", 4, 1),
    ]


async def test_the_best_tracker_wins_and_unknown_keeps_old_counts(
    bt_engine: AsyncEngine, pool: TrackerPool
) -> None:
    item, quiet = entry("swarmtest many"), entry("swarmtest quiet", seeders=9)
    low = FakeUdpTracker(counts={item.metainfo.info_hash: (2, 0, 8)})
    high = FakeUdpTracker(counts={item.metainfo.info_hash: (5, 0, 1)})
    async with udp_server(low.handle) as a, udp_server(high.handle) as b:
        async with bt_engine.begin() as conn:
            await bulk.write(conn, [item, quiet], now=NOW)
            urls = [f"udp://127.0.0.1:{a.port}", f"udp://127.0.0.1:{b.port}"]
            await trackers.remember(conn, item.metainfo.info_hash, urls, now=NOW)
        report = await SwarmRefresher(
            bt_engine, tracker_pool=pool, clock=FrozenClock(NOW)
        ).refresh_round()
    assert report == RoundReport(2, 1, 0, frozenset({item.metainfo.info_hash}))
    assert report.unknown == 1
    assert (await source_rows(bt_engine, item.metainfo.info_hash))["tracker"] == (5, 8)
    assert await ranked(bt_engine, "seeders") == [
        ("swarmtest quiet", 9, 0),
        ("swarmtest many", 5, 8),
    ]


async def test_a_torrent_deleted_during_the_scrape_is_not_written(
    bt_engine: AsyncEngine,
) -> None:
    gone, kept = entry("swarmtest gone"), entry("swarmtest kept")
    async with bt_engine.begin() as conn:
        await bulk.write(conn, [gone, kept], now=NOW)

    class DeletingDht(FakeDht):
        async def scrape(self, info_hashes: Sequence[bytes]) -> dict[bytes, SwarmCounts]:
            async with bt_engine.begin() as conn:
                await catalog.remove(conn, gone.metainfo.info_hash)
            return {h: SwarmCounts(3, 0) for h in info_hashes}

    refresher = SwarmRefresher(
        bt_engine, tracker_pool=None, dht=DeletingDht(), clock=FrozenClock(NOW)
    )
    await refresher.refresh_round()
    assert await source_rows(bt_engine, gone.metainfo.info_hash) == {}
    assert await ranked(bt_engine, "seeders") == [("swarmtest kept", 3, 0)]


def _rounds(result: str) -> float:
    return REGISTRY.get_sample_value("bittorrented_swarm_rounds_total", {"result": result}) or 0.0


async def test_run_forever_survives_a_failed_round_and_stops_when_told(
    bt_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresher = SwarmRefresher(bt_engine, tracker_pool=None, dht=FakeDht())
    stop = asyncio.Event()
    calls = 0
    real_round = refresher.refresh_round

    async def flaky_round() -> RoundReport:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database went away")
        stop.set()
        return await real_round()

    monkeypatch.setattr(refresher, "refresh_round", flaky_round)
    failed, ok = _rounds("failed"), _rounds("ok")
    await asyncio.wait_for(refresher.run_forever(stop, interval_seconds=0.01), timeout=5)
    assert calls == 2
    assert (_rounds("failed"), _rounds("ok")) == (failed + 1, ok + 1)


async def test_settings_wire_the_refresher_and_bad_ones_fail_at_boot(
    bt_engine: AsyncEngine,
) -> None:
    settings = BittorrentedSettings(
        swarm_default_trackers=["udp://tracker.example:1337/announce"],
        swarm_dht_nodes=["router.example:6881"],
        swarm_batch_size=7,
    )
    refresher = SwarmRefresher.from_settings(settings, bt_engine)
    try:
        assert isinstance(refresher.dht, DhtScraper)
        assert refresher.dht.allow_private is False
        assert refresher.batch_size == 7
        assert refresher.default_trackers == ["udp://tracker.example:1337/announce"]
    finally:
        await refresher.aclose()
    # Bad ones fail when the settings are read, before anything starts.
    with pytest.raises(ValueError, match="host:port"):
        BittorrentedSettings(swarm_dht_nodes=["no-port"])
    with pytest.raises(ValueError, match="udp://, http:// or https://"):
        BittorrentedSettings(swarm_default_trackers=["wss://t.example/announce"])
