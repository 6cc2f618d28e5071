"""The scheduled swarm refresh: scrape the torrents whose counts are oldest, write what each
source says, re-rank them.

A round picks up to ``batch_size`` torrents (never scraped first, then the longest ago, none
scraped within ``rescrape_after``), scrapes every tracker they name plus the default ones, asks
the DHT (BEP 33) about the torrents no tracker knew, as BEP 33 advises, and writes in one
transaction: each source's counts to ``torrents_torrent_sources`` (sources ``tracker`` and
``dht``), the time to ``torrent_scrapes``, and then ``catalog.refresh_swarm`` copies the best
counts onto the search rows. The network part holds no transaction open.

Trackers overlap (the same peers announce to several), so the ``tracker`` source keeps the
largest count any of them reported rather than their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented import models
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.swarm import http_tracker, metrics, trackers
from keel.bittorrented.swarm.base import Scraper, SwarmCounts
from keel.bittorrented.swarm.dht_scrape import DhtScraper
from keel.bittorrented.swarm.trackers import TrackerPool
from keel.core import db
from keel.core.clock import Clock, SystemClock
from keel.core.logging import get_logger

__all__ = ["SOURCE_DHT", "SOURCE_TRACKER", "RoundReport", "SwarmRefresher", "due"]

log = get_logger("keel.bittorrented.swarm")

SOURCE_TRACKER = "tracker"
SOURCE_DHT = "dht"
_SOURCE_NAMES = {SOURCE_TRACKER: "Tracker scrape", SOURCE_DHT: "DHT scrape (BEP 33)"}


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one round did: torrents picked, how many each source gave counts for, and which
    torrents got counts from some source."""

    picked: int
    tracker: int
    dht: int
    counted: frozenset[bytes] = frozenset()

    @property
    def unknown(self) -> int:
        """Picked torrents no source knew (their old counts stay)."""
        return self.picked - len(self.counted)


async def due(conn: AsyncConnection, *, limit: int, scraped_before: datetime) -> list[bytes]:
    """Up to ``limit`` torrents to scrape next: never scraped first, then those last scraped
    before ``scraped_before``, oldest first."""
    t, s = models.torrents, models.torrent_scrapes
    # No ORDER BY here: the anti-join can stop at ``limit`` rows instead of sorting every
    # torrent, and which never-scraped torrent goes first does not matter.
    never = await conn.execute(
        select(t.c.info_hash).where(~exists().where(s.c.info_hash == t.c.info_hash)).limit(limit)
    )
    picked = [bytes(h) for h in never.scalars()]
    if len(picked) < limit:
        oldest = await conn.execute(
            select(s.c.info_hash)
            .where(s.c.scraped_at < scraped_before)
            .order_by(s.c.scraped_at, s.c.info_hash)
            .limit(limit - len(picked))
        )
        picked += [bytes(h) for h in oldest.scalars()]
    return picked


class SwarmRefresher:
    """Runs refresh rounds over ``engine``'s index; build it with :meth:`from_settings`.

    ``tracker_pool`` reaches the trackers (None: no tracker scrapes), ``dht`` the DHT (None:
    no DHT scrapes). ``default_trackers`` are scraped for every torrent; of a torrent's own,
    the first ``max_trackers_per_torrent`` are. ``parallel_trackers`` bounds how many trackers
    are scraped at once.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        tracker_pool: TrackerPool | None,
        dht: Scraper | None = None,
        default_trackers: Sequence[str] = (),
        batch_size: int = 200,
        rescrape_after: timedelta = timedelta(hours=6),
        max_trackers_per_torrent: int = 5,
        parallel_trackers: int = 16,
        clock: Clock | None = None,
        owned_clients: Sequence[httpx.AsyncClient] = (),
    ) -> None:
        self.engine = engine
        self.tracker_pool = tracker_pool
        self.dht = dht
        self.default_trackers = list(dict.fromkeys(default_trackers))
        self.batch_size = batch_size
        self.rescrape_after = rescrape_after
        self.max_trackers_per_torrent = max_trackers_per_torrent
        self.parallel_trackers = parallel_trackers
        self.clock = clock or SystemClock()
        self._owned = list(owned_clients)

    @classmethod
    def from_settings(
        cls, settings: BittorrentedSettings, engine: AsyncEngine, *, clock: Clock | None = None
    ) -> SwarmRefresher:
        """A refresher wired from settings; it owns an HTTP client, so :meth:`aclose` it.
        Raises ValueError for a default tracker it cannot scrape or a bad DHT node."""
        unusable = [url for url in settings.swarm_default_trackers if not trackers.scrapable(url)]
        if unusable:
            raise ValueError(f"cannot scrape default trackers {unusable}")
        dht = (
            DhtScraper(settings.swarm_dht_nodes, allow_private=settings.swarm_allow_private)
            if settings.swarm_dht_nodes
            else None
        )
        client = http_tracker.open_client(
            allow_private=settings.swarm_allow_private,
            timeout_seconds=settings.swarm_timeout_seconds,
        )
        pool = TrackerPool(
            client=client,
            allow_private=settings.swarm_allow_private,
            timeout_seconds=settings.swarm_timeout_seconds,
        )
        return cls(
            engine,
            tracker_pool=pool,
            dht=dht,
            default_trackers=settings.swarm_default_trackers,
            batch_size=settings.swarm_batch_size,
            rescrape_after=timedelta(seconds=settings.swarm_rescrape_after_seconds),
            max_trackers_per_torrent=settings.swarm_max_trackers_per_torrent,
            clock=clock,
            owned_clients=[client],
        )

    async def aclose(self) -> None:
        """Close the HTTP client this refresher made."""
        for client in self._owned:
            await client.aclose()

    async def refresh_round(self) -> RoundReport:
        """Scrape one batch and write it (one transaction); returns what it did. Scrape
        failures only leave counts unknown; a database error propagates."""
        started = time.monotonic()
        now = self.clock.now()
        async with db.reading(self.engine) as conn:
            hashes = await due(
                conn, limit=self.batch_size, scraped_before=now - self.rescrape_after
            )
            named = await trackers.known(conn, hashes)
        if not hashes:
            return RoundReport(picked=0, tracker=0, dht=0)
        from_trackers = await self._scrape_trackers(hashes, named)
        rest = [h for h in hashes if h not in from_trackers]
        from_dht = await _safe_scrape(self.dht, rest) if self.dht is not None and rest else {}
        async with db.writing(self.engine) as conn:
            await _write(conn, hashes, {SOURCE_TRACKER: from_trackers, SOURCE_DHT: from_dht}, now)
        counted = set(from_trackers) | set(from_dht)
        metrics.TORRENTS_REFRESHED.labels(SOURCE_TRACKER).inc(len(from_trackers))
        metrics.TORRENTS_REFRESHED.labels(SOURCE_DHT).inc(len(from_dht))
        metrics.TORRENTS_REFRESHED.labels("none").inc(len(hashes) - len(counted))
        metrics.ROUND_SECONDS.observe(time.monotonic() - started)
        log.info(
            "swarm_round",
            picked=len(hashes),
            tracker=len(from_trackers),
            dht=len(from_dht),
            seconds=round(time.monotonic() - started, 3),
        )
        return RoundReport(
            picked=len(hashes),
            tracker=len(from_trackers),
            dht=len(from_dht),
            counted=frozenset(counted),
        )

    async def run_forever(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Run a round every ``interval_seconds`` until ``stop`` is set. A failed round is
        logged and counted; the loop goes on (the next round retries the same torrents)."""
        while not stop.is_set():
            try:
                await self.refresh_round()
            except Exception:
                metrics.ROUNDS.labels("failed").inc()
                log.exception("swarm_round_failed")
            else:
                metrics.ROUNDS.labels("ok").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_seconds)

    async def _scrape_trackers(
        self, hashes: list[bytes], named: dict[bytes, list[str]]
    ) -> dict[bytes, SwarmCounts]:
        if self.tracker_pool is None:
            return {}
        groups: dict[str, list[bytes]] = {}
        for info_hash in hashes:
            own = named.get(info_hash, [])[: self.max_trackers_per_torrent]
            for url in dict.fromkeys([*own, *self.default_trackers]):
                groups.setdefault(url, []).append(info_hash)
        gate = asyncio.Semaphore(self.parallel_trackers)
        pool = self.tracker_pool

        async def one(url: str, group: list[bytes]) -> dict[bytes, SwarmCounts]:
            scraper = pool.scraper(url)
            if scraper is None:
                return {}
            async with gate:
                return await _safe_scrape(scraper, group)

        best: dict[bytes, SwarmCounts] = {}
        for found in await asyncio.gather(*(one(u, g) for u, g in groups.items())):
            for info_hash, counts in found.items():
                best[info_hash] = _larger(best.get(info_hash), counts)
        return best


async def _safe_scrape(scraper: Scraper, hashes: list[bytes]) -> dict[bytes, SwarmCounts]:
    # Scrapers turn every network outcome into "unknown"; this catches their bugs, so one
    # broken tracker reply cannot cost the whole round.
    try:
        return await scraper.scrape(hashes)
    except Exception:
        log.exception("swarm_scraper_failed", transport=scraper.transport)
        return {}


def _larger(old: SwarmCounts | None, new: SwarmCounts) -> SwarmCounts:
    if old is None:
        return new
    downloads = [d for d in (old.downloaded, new.downloaded) if d is not None]
    return SwarmCounts(
        seeders=max(old.seeders, new.seeders),
        leechers=max(old.leechers, new.leechers),
        downloaded=max(downloads) if downloads else None,
    )


async def _write(
    conn: AsyncConnection,
    picked: list[bytes],
    by_source: dict[str, dict[bytes, SwarmCounts]],
    now: datetime,
) -> None:
    # A torrent deleted since it was picked must not be written (the foreign keys would fail
    # the batch); FOR SHARE keeps the rest from being deleted until we commit (PostgreSQL;
    # SQLite's BEGIN IMMEDIATE already excludes other writers).
    t = models.torrents
    alive = set(
        bytes(h)
        for h in (
            await conn.execute(
                select(t.c.info_hash).where(t.c.info_hash.in_(picked)).with_for_update(read=True)
            )
        ).scalars()
    )
    if not alive:
        return
    await conn.execute(
        db.insert(conn, models.torrent_sources).on_conflict_do_nothing(),
        [
            {"key": key, "name": name, "created_at": now, "updated_at": now}
            for key, name in _SOURCE_NAMES.items()
        ],
    )
    rows = [
        {
            "source": source,
            "info_hash": info_hash,
            "seeders": counts.seeders,
            "leechers": counts.leechers,
            "created_at": now,
            "updated_at": now,
        }
        for source, found in by_source.items()
        for info_hash, counts in found.items()
        if info_hash in alive
    ]
    if rows:
        upsert = db.insert(conn, models.torrents_torrent_sources)
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["source", "info_hash"],
                set_={
                    "seeders": upsert.excluded.seeders,
                    "leechers": upsert.excluded.leechers,
                    "updated_at": upsert.excluded.updated_at,
                },
            ),
            rows,
        )
    schedule = db.insert(conn, models.torrent_scrapes)
    await conn.execute(
        schedule.on_conflict_do_update(
            index_elements=["info_hash"], set_={"scraped_at": schedule.excluded.scraped_at}
        ),
        [{"info_hash": h, "scraped_at": now} for h in picked if h in alive],
    )
    changed = sorted({h for found in by_source.values() for h in found if h in alive})
    if changed:
        await catalog.refresh_swarm(conn, changed)
