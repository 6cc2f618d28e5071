"""The index as its callers see it: add torrents (file, magnet, batch), search, read, remove.

The web layer and the CLI call these; they never touch SQL or the search engines directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.catalog import bloom_store as seen_store
from keel.bittorrented.catalog import bulk
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.dht import bloom
from keel.bittorrented.errors import BannedTorrent, MetadataTimeout, TorrentNotFound
from keel.bittorrented.naming import classify
from keel.bittorrented.search import files, fuzzy, query
from keel.bittorrented.search.base import (
    Filters,
    Order,
    SearchEngine,
    SearchPage,
    SearchRequest,
    Sort,
)
from keel.bittorrented.search.cursors import Cursors
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.swarm import trackers
from keel.bittorrented.torrent import magnet, metainfo
from keel.bittorrented.torrent.values import Magnet, Metainfo
from keel.core import db
from keel.core.clock import Clock


class MetadataSource(Protocol):
    async def fetch(self, link: Magnet, *, timeout_seconds: float) -> Metainfo | None:
        """The torrent's metadata from its swarm (BEP 9), or None when no peer gave it in time."""
        ...


@dataclass
class Indexer:
    settings: BittorrentedSettings
    engine: AsyncEngine
    search_engine: SearchEngine
    clock: Clock
    is_banned: Callable[[str], bool]
    cursors: Cursors
    metadata: MetadataSource | None = None

    async def search(
        self,
        text: str,
        *,
        sort: Sort = "relevance",
        order: Order = "desc",
        filters: Filters | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SearchPage:
        """One page of hits; BadQuery / BadCursor on bad input, SearchTimeout past the limit.
        ``cursor`` is a previous page's :meth:`next_cursor`."""
        parsed = query.parse(text)
        after = self.cursors.search_after(cursor, sort, order) if cursor else None
        request = SearchRequest(parsed, sort, order, filters or Filters(), limit, after)
        page = await self.search_engine.search(request)
        if page.total or after is not None or not parsed.positive:
            return page
        async with db.reading(self.engine) as conn:
            respelled = await fuzzy.respell(conn, parsed)
        if respelled is None:
            return page
        retry = await self.search_engine.search(replace(request, query=respelled))
        return replace(retry, corrected_query=query.render(respelled)) if retry.total else page

    def next_cursor(self, sort: Sort, order: Order, page: SearchPage) -> str | None:
        """The cursor of the page after ``page`` (a signed token), or None on the last page."""
        return (
            None if page.next_after is None else self.cursors.search(sort, order, page.next_after)
        )

    async def search_files(
        self, text: str, *, limit: int = 50, cursor: str | None = None
    ) -> files.FilePage:
        """File paths matching ``text``; BadQuery / BadCursor on bad input. ``cursor`` is a
        previous page's :meth:`next_files_cursor`."""
        parsed = query.parse(text)
        return await files.search_files(
            self.engine,
            parsed,
            limit=limit,
            after=self.cursors.files_after(cursor) if cursor else None,
            count_cap=self.settings.count_cap,
            timeout_seconds=self.settings.search_timeout_seconds,
        )

    def next_files_cursor(self, page: files.FilePage) -> str | None:
        """The cursor of the file page after ``page``, or None on the last page."""
        return None if page.next_after is None else self.cursors.files(page.next_after)

    async def is_empty(self) -> bool:
        """Whether nothing has been indexed yet (a search can only say "0 results")."""
        async with db.reading(self.engine) as conn:
            return await catalog.is_empty(conn)

    async def get(self, info_hash: bytes) -> catalog.StoredTorrent:
        async with db.reading(self.engine) as conn:
            return await catalog.get(conn, info_hash)

    async def add(
        self, items: Sequence[Metainfo], *, announce: Mapping[bytes, Sequence[str]] | None = None
    ) -> int:
        """Classify and index a batch in one transaction, with the tracker URLs ``announce``
        names per hash (kept for scrapes); returns how many were new. Banned names and removed
        (banned) hashes are dropped, whichever path they came by."""
        banned = await self.banned_hashes()
        # Classification (~50 µs a name) off the event loop: a crawler batch of thousands
        # must not stall every request meanwhile.
        entries = await asyncio.to_thread(lambda: list(self._entries(items, banned)))
        now = self.clock.now()
        async with db.writing(self.engine) as conn:
            added = await bulk.write(conn, entries, now=now)
            for e in entries:
                if announce and announce.get(h := e.metainfo.info_hash):
                    await trackers.remember(conn, h, announce[h], now=now)
            return added

    async def ingest(
        self,
        items: Iterable[Metainfo],
        *,
        batch_size: int = bulk.DEFAULT_BATCH,
        progress: bulk.Progress | None = None,
        stop: asyncio.Event | None = None,
    ) -> bulk.LoadResult:
        """Index a stream (an import, another index's dump) a batch per transaction, as
        :meth:`add` would, only faster: reading, screening and classifying run in a worker
        thread beside the writes. Re-running the same stream stores only what is missing."""
        banned = await self.banned_hashes()
        return await bulk.load(
            self.engine,
            self._entries(items, banned),
            now=self.clock.now(),
            batch_size=batch_size,
            progress=progress,
            stop=stop,
        )

    async def banned_hashes(self) -> bloom.ScalableBloomFilter:
        """The persisted filter of removed hashes (small: one row)."""
        return await bloom.load_filter(seen_store.DatabaseSeenStore(self.engine, seen_store.BANNED))

    def _entries(
        self, items: Iterable[Metainfo], banned: bloom.ScalableBloomFilter
    ) -> Iterator[catalog.Entry]:
        """Classified entries of ``items``, without banned names and removed (banned) hashes."""
        for m in items:
            if m.info_hash not in banned and not self.is_banned(m.name):
                yield catalog.Entry(m, classify.classify(m.name, m.files))

    async def add_torrent_file(self, data: bytes) -> catalog.StoredTorrent:
        """Index an uploaded .torrent; MalformedTorrent on bad bytes, BannedTorrent on a
        banned name."""
        parsed = metainfo.parse_torrent(data, max_files=self.settings.max_files)
        announce = metainfo.announce_urls(data)
        return await self._add_one(parsed, source="upload", announce=announce)

    async def add_magnet(self, uri: str) -> tuple[catalog.StoredTorrent, bool]:
        """Index a magnet link, fetching its metadata from peers unless we have it already.
        Returns the torrent and whether it was new."""
        link = magnet.parse_magnet(uri)
        try:
            known = await self.get(link.info_hash)
        except TorrentNotFound:
            pass
        else:
            async with db.writing(self.engine) as conn:
                await trackers.remember(conn, link.info_hash, link.trackers, now=self.clock.now())
            return known, False
        fetched = None
        if self.metadata is not None:
            fetched = await self.metadata.fetch(
                link, timeout_seconds=self.settings.metadata_timeout_seconds
            )
        if fetched is None:
            raise MetadataTimeout(
                f"no peer sent the metadata of {link.info_hash.hex()} within "
                f"{self.settings.metadata_timeout_seconds:g} s"
            )
        return await self._add_one(fetched, source="magnet", announce=link.trackers), True

    async def _add_one(
        self, parsed: Metainfo, *, source: str, announce: Sequence[str] = ()
    ) -> catalog.StoredTorrent:
        if self.is_banned(parsed.name) or parsed.info_hash in await self.banned_hashes():
            raise BannedTorrent("this torrent's name is on the banned list")
        item = Metainfo(
            info_hash=parsed.info_hash,
            name=parsed.name,
            size=parsed.size,
            files=parsed.files,
            files_count=parsed.files_count,
            private=parsed.private,
            source=source,
            published_at=parsed.published_at or self.clock.now(),
        )
        await self.add([item], announce={item.info_hash: announce})
        return await self.get(item.info_hash)

    async def remove(self, info_hash: bytes) -> None:
        """Delete a torrent and ban its hash, so no crawl fetches it again; TorrentNotFound."""
        async with db.writing(self.engine) as conn:
            await catalog.remove(conn, info_hash)
            await seen_store.ban(conn, [info_hash], now=self.clock.now())
