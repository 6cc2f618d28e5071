"""A migrated bittorrented database on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.search.cursors import Cursors
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.torrent.values import Metainfo, TorrentFile
from keel.core.clock import FrozenClock

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CURSOR_KEY = bytes(range(32))


@pytest.fixture
async def bt_engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await bootstrap.open_database(db_url)
    yield engine
    await engine.dispose()


def info_hash(seed: str) -> bytes:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).digest()


def entry(
    name: str,
    *,
    seeders: int = 0,
    size: int = 1000,
    published: datetime | None = None,
    content_type: ContentType = ContentType.UNKNOWN,
    year: int | None = None,
    resolution: str | None = None,
    seed: str | None = None,
    files: tuple[TorrentFile, ...] = (),
) -> catalog.Entry:
    metainfo = Metainfo(
        info_hash=info_hash(seed or name),
        name=name,
        size=size,
        files=files,
        files_count=max(len(files), 1),
        seeders=seeders,
        leechers=0,
        published_at=published or NOW,
        source="test",
    )
    return catalog.Entry(metainfo, Classification(content_type, year=year, resolution=resolution))


def make_indexer(engine: AsyncEngine) -> Indexer:
    """An indexer on ``engine`` with default settings, a frozen clock and no banned words."""
    return Indexer(
        settings=BittorrentedSettings(),
        engine=engine,
        search_engine=bootstrap.search_engine(engine),
        clock=FrozenClock(NOW),
        is_banned=lambda _name: False,
        cursors=Cursors(CURSOR_KEY),
    )
