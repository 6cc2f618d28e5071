"""A DHT crawl feeding the index: the crawler, our database as its seen store and sink."""

from __future__ import annotations

import asyncio

from keel.bittorrented.catalog import bloom_store as seen_store
from keel.bittorrented.dht.crawler import Crawler, CrawlerSettings
from keel.bittorrented.dht.runtime import Swarm
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.torrent.values import Metainfo


async def crawler_for(index: Indexer, swarm: Swarm) -> Crawler:
    """A crawler on the shared session whose batches go to ``index.add`` and whose seen filter
    lives in the ``bloom_filters`` table."""
    session, _ = await swarm.start()

    async def sink(batch: list[Metainfo]) -> None:
        await index.add(batch)

    return Crawler(
        session,
        sink=sink,
        store=seen_store.DatabaseSeenStore(index.engine, seen_store.SEEN, clock=index.clock),
        # Hashes removed through the API: the crawler re-reads them while it runs.
        blocked=seen_store.DatabaseSeenStore(index.engine, seen_store.BANNED, clock=index.clock),
        is_banned=index.is_banned,
        settings=CrawlerSettings(
            max_files=index.settings.max_files,
            allow_private_addresses=index.settings.dht_allow_private,
            batch_size=index.settings.crawl_batch_size,
            flush_seconds=index.settings.crawl_flush_seconds,
        ),
    )


async def crawl_until(index: Indexer, swarm: Swarm, stop: asyncio.Event) -> None:
    """Crawl until ``stop`` is set; the last batch is delivered and the filter saved."""
    crawler = await crawler_for(index, swarm)
    await crawler.run(stop)
