from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.catalog import bulk
from keel.bittorrented.swarm import trackers
from keel.bittorrented.swarm.http_tracker import HttpTracker
from keel.bittorrented.swarm.trackers import TrackerPool
from keel.bittorrented.swarm.udp_tracker import UdpTracker
from tests.bittorrented.conftest import NOW, entry


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("udp://tracker.example:1337/announce", True),
        ("udp://tracker.example/announce", False),  # no port
        ("http://tracker.example/announce", True),
        ("https://tracker.example/a/announce.php?pk=1", True),
        ("http://tracker.example/tracker", False),  # no scrape URL by the convention
        ("wss://tracker.example/announce", False),
        ("udp://tracker.example:1/" + "x" * 600, False),
    ],
)
def test_keeps_only_trackers_it_can_scrape(url: str, expected: bool) -> None:
    assert trackers.scrapable(url) is expected


async def test_remembers_a_torrents_scrapable_trackers_in_order(bt_engine: AsyncEngine) -> None:
    item, other = entry("With Trackers"), entry("Without Trackers")
    urls = [
        "udp://b.example:80/announce",
        "wss://tracker.example/announce",
        "http://a.example/announce",
        "udp://b.example:80/announce",
        *(f"udp://t{n}.example:1" for n in range(30)),
    ]
    async with bt_engine.begin() as conn:
        await bulk.write(conn, [item, other], now=NOW)
        kept = await trackers.remember(conn, item.metainfo.info_hash, urls, now=NOW)
        assert await trackers.remember(conn, item.metainfo.info_hash, urls[:1], now=NOW) == 1
    assert kept == trackers.MAX_TRACKERS_PER_TORRENT
    async with bt_engine.connect() as conn:
        found = await trackers.known(conn, [item.metainfo.info_hash, other.metainfo.info_hash])
    assert list(found) == [item.metainfo.info_hash]
    assert len(found[item.metainfo.info_hash]) == trackers.MAX_TRACKERS_PER_TORRENT
    assert set(found[item.metainfo.info_hash]) >= {
        "udp://b.example:80/announce",
        "http://a.example/announce",
    }


async def test_the_pool_keeps_one_scraper_per_url_and_one_breaker_per_host() -> None:
    async with httpx.AsyncClient() as client:
        pool = TrackerPool(client=client, max_kept=3)
        udp = pool.scraper("udp://t.example:6969/announce")
        first = pool.scraper("http://user:secret@h.example/announce")
        second = pool.scraper("http://h.example/announce?key=1")
        assert isinstance(udp, UdpTracker)
        assert isinstance(first, HttpTracker)
        assert isinstance(second, HttpTracker)
        assert pool.scraper("udp://t.example:6969/announce") is udp
        assert first._breaker is second._breaker
        assert pool.scraper("wss://t.example/announce") is None
    names = {
        sample.labels.get("name", "")
        for metric in REGISTRY.collect()
        if metric.name == "keel_circuit_state"
        for sample in metric.samples
    }
    assert "bittorrented_tracker:h.example:80" in names
    assert not any("secret" in name for name in names)
