"""The trackers we know for each torrent, and a pool of scrapers to reach them.

A magnet's ``tr`` list is the only place most torrents name their trackers, so whoever indexes
a magnet calls :func:`remember` in the same transaction; the refresher reads them back with
:func:`known`. Only URLs we can scrape are kept (``udp://host:port``, or http(s) whose last path
segment starts with ``announce``); ws(s) and scrape-less announce URLs are dropped.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.bittorrented import models
from keel.bittorrented.swarm import http_tracker, udp_tracker
from keel.bittorrented.swarm.base import Scraper
from keel.bittorrented.swarm.http_tracker import HttpTracker
from keel.bittorrented.swarm.udp_tracker import UdpTracker
from keel.core import db
from keel.core.resilience import CircuitBreaker

__all__ = ["MAX_TRACKERS_PER_TORRENT", "TrackerPool", "known", "remember", "scrapable"]

MAX_TRACKERS_PER_TORRENT = 20  # real magnets carry 5-30; past this it is a list, not a torrent
MAX_URL_LENGTH = 512


def scrapable(url: str) -> bool:
    """Whether we know how to scrape the tracker at ``url``."""
    if len(url) > MAX_URL_LENGTH:
        return False
    if url.startswith("udp://"):
        try:
            udp_tracker.parse_udp_url(url)
        except ValueError:
            return False
        return True
    return http_tracker.scrape_url(url) is not None


async def remember(
    conn: AsyncConnection, info_hash: bytes, urls: Iterable[str], *, now: datetime
) -> int:
    """Keep the scrapable ones of a torrent's tracker URLs (up to 20, in order); returns how
    many were kept. The torrent must be indexed already (call in the transaction that adds
    it); URLs kept before stay."""
    keep = [u for u in dict.fromkeys(u.strip() for u in urls) if scrapable(u)]
    rows = [
        {"info_hash": info_hash, "url": url, "created_at": now}
        for url in keep[:MAX_TRACKERS_PER_TORRENT]
    ]
    if not rows:
        return 0
    await conn.execute(db.insert(conn, models.torrent_trackers).on_conflict_do_nothing(), rows)
    return len(rows)


async def known(conn: AsyncConnection, info_hashes: Sequence[bytes]) -> dict[bytes, list[str]]:
    """The remembered tracker URLs of each torrent (torrents without any are absent)."""
    if not info_hashes:
        return {}
    t = models.torrent_trackers
    rows = await conn.execute(
        select(t.c.info_hash, t.c.url)
        .where(t.c.info_hash.in_(list(info_hashes)))
        .order_by(t.c.info_hash, t.c.created_at, t.c.url)
    )
    found: dict[bytes, list[str]] = {}
    for info_hash, url in rows:
        found.setdefault(bytes(info_hash), []).append(url)
    return found


class TrackerPool:
    """A scraper per tracker URL, built on first use and kept (up to ``max_kept``), so UDP
    connection ids are reused and each tracker host keeps one circuit breaker."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        allow_private: bool = False,
        timeout_seconds: float = 4.0,
        max_kept: int = 1024,
    ) -> None:
        self._client = client
        self.allow_private = allow_private
        self.timeout_seconds = timeout_seconds
        self.max_kept = max_kept
        self._scrapers: OrderedDict[str, Scraper] = OrderedDict()
        self._breakers: OrderedDict[str, CircuitBreaker] = OrderedDict()

    def scraper(self, url: str) -> Scraper | None:
        """The scraper for ``url``, or None when it is not a tracker we can scrape."""
        existing = self._scrapers.get(url)
        if existing is not None:
            self._scrapers.move_to_end(url)
            return existing
        if not scrapable(url):
            return None
        made: Scraper
        if url.startswith("udp://"):
            made = UdpTracker(
                url, allow_private=self.allow_private, timeout_seconds=self.timeout_seconds
            )
        else:
            made = HttpTracker(
                url,
                client=self._client,
                breaker=self._breaker(_host(url)),
                timeout_seconds=self.timeout_seconds,
            )
        self._scrapers[url] = made
        if len(self._scrapers) > self.max_kept:
            self._scrapers.popitem(last=False)
        return made

    def _breaker(self, host: str) -> CircuitBreaker:
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = self._breakers[host] = http_tracker.tracker_breaker(host)
            if len(self._breakers) > self.max_kept:
                self._breakers.popitem(last=False)
        self._breakers.move_to_end(host)
        return breaker


def _host(url: str) -> str:
    # hostname:port only: a netloc may carry user:password, which must not become a label.
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
