"""bittorrented's background work: the scheduled swarm refresh, on PostgreSQL the date tiers'
indexes made ahead of the new year, and, when enabled, the crawl.

`keel serve` runs them beside the API; `keel bittorrented worker` runs them alone, so API
processes and workers scale apart on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from keel.bittorrented.dht.runtime import Swarm
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.ingest import crawl as crawling
from keel.bittorrented.search import tier_indexes
from keel.bittorrented.swarm.refresh import SwarmRefresher
from keel.core import db


@asynccontextmanager
async def running(index: Indexer, swarm: Swarm) -> AsyncIterator[None]:
    """Run the workers for the block; on the way out the crawler writes its last batch and
    saves its filter, and the refresh finishes or abandons its round."""
    settings = index.settings
    refresher = SwarmRefresher.from_settings(settings, index.engine, clock=index.clock)
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            refresher.run_forever(stop, settings.swarm_interval_seconds), name="swarm-refresh"
        )
    ]
    if db.is_postgres(index.engine):
        tasks.append(
            asyncio.create_task(
                tier_indexes.keep_rolling(index.engine, index.clock, stop), name="date-tiers"
            )
        )
    if settings.crawl:
        tasks.append(asyncio.create_task(crawling.crawl_until(index, swarm, stop), name="crawler"))
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await refresher.aclose()
