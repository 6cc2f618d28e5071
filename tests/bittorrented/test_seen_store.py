"""The crawler's filters survive in the database; removals ban hashes for good."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.catalog import bloom_store as seen_store
from keel.bittorrented.catalog import bulk
from keel.bittorrented.dht.bloom import ScalableBloomFilter, load_filter
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW, entry, info_hash, make_indexer


async def test_seen_filter_round_trips_through_the_database(bt_engine: AsyncEngine) -> None:
    store = seen_store.DatabaseSeenStore(bt_engine, clock=FrozenClock(NOW))
    assert await store.load() is None
    bloom = ScalableBloomFilter(initial_capacity=1000)
    bloom.add(b"x" * 20)
    await store.save(bloom.to_bytes())
    bloom.add(b"y" * 20)
    await store.save(bloom.to_bytes())
    restored = await load_filter(store)
    assert b"x" * 20 in restored
    assert b"y" * 20 in restored


async def test_removed_torrents_are_banned_even_when_removed_at_once(
    bt_engine: AsyncEngine,
) -> None:
    names = [f"Torrent.{i}" for i in range(8)]
    async with bt_engine.begin() as conn:
        await bulk.write(conn, [entry(n) for n in names], now=NOW)
    index = make_indexer(bt_engine)
    await asyncio.gather(*(index.remove(info_hash(n)) for n in names))
    banned = await load_filter(seen_store.DatabaseSeenStore(bt_engine, seen_store.BANNED))
    assert all(info_hash(n) in banned for n in names)
    assert (await index.search("torrent")).total == 0


async def test_a_removed_torrent_is_never_indexed_again(bt_engine: AsyncEngine) -> None:
    index = make_indexer(bt_engine)
    item = entry("Removed.Release").metainfo
    assert await index.add([item]) == 1
    await index.remove(item.info_hash)
    assert await index.add([item]) == 0
    assert (await index.search("removed")).total == 0
