"""The crawler's lifecycle and ban path on one loopback session (the swarm tests are in e2e)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from keel.bittorrented.dht import bloom, crawler, session
from keel.bittorrented.torrent.values import Metainfo


async def discard(_batch: list[Metainfo]) -> None:
    return None


@pytest.fixture
async def lone() -> AsyncIterator[session.DhtSession]:
    async with session.open_session(session.SessionSettings.loopback()) as dht:
        yield dht


async def test_a_ban_is_saved_with_the_filter_when_the_crawler_stops(
    lone: session.DhtSession,
) -> None:
    store = bloom.MemorySeenStore()
    banned = bytes(range(20))
    crawl = crawler.Crawler(lone, sink=discard, store=store)
    with pytest.raises(RuntimeError, match="ban_hashes"):
        crawl.ban(banned)
    async with crawl:
        crawl.ban(banned)
        assert crawl.stats().seen_filter_items == 1
    assert store.data is not None
    assert banned in bloom.ScalableBloomFilter.from_bytes(store.data)


async def test_a_damaged_stored_filter_stops_the_crawler_from_starting(
    lone: session.DhtSession,
) -> None:
    crawl = crawler.Crawler(lone, sink=discard, store=bloom.MemorySeenStore(b"garbage" * 10))
    with pytest.raises(ValueError, match=r"."):
        await crawl.start()
    assert not crawl.running


async def test_run_returns_soon_after_stop_is_set_and_leaves_no_task(
    lone: session.DhtSession,
) -> None:
    crawl = crawler.Crawler(lone, sink=discard, store=bloom.MemorySeenStore())
    stop = asyncio.Event()
    running = asyncio.create_task(crawl.run(stop))
    await asyncio.sleep(0.1)
    assert crawl.running
    started = time.monotonic()
    stop.set()
    await running
    assert time.monotonic() - started < 1.0
    assert not crawl.running
    names = {task.get_name() for task in asyncio.all_tasks()}
    assert not any(name.startswith("crawler-") for name in names)
    await crawl.stop()  # stopping twice is harmless


def test_settings_refuse_values_that_cannot_crawl() -> None:
    with pytest.raises(ValueError, match="max_concurrent_fetches"):
        crawler.CrawlerSettings(max_concurrent_fetches=0)
    with pytest.raises(ValueError, match="sample_tick_seconds"):
        crawler.CrawlerSettings(sample_tick_seconds=0)
