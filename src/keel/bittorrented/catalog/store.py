"""The torrents we index: what a torrent becomes in each table, read one back, remove one.

A torrent's info dict never changes (its hash is its identity), so re-adding a known torrent
keeps the stored metadata and only refreshes what a source says about it: seeders, leechers,
publication date. ``keel.bittorrented.catalog.bulk`` writes the rows built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.bittorrented import models
from keel.bittorrented.errors import TorrentNotFound
from keel.bittorrented.naming.classify import Classification
from keel.bittorrented.search.ranking import MAX_SEEDERS, relevance_key, relevance_key_sql
from keel.bittorrented.search.tokens import tokenize
from keel.bittorrented.torrent.values import Metainfo, TorrentFile

# bitmagnet's threshold: at or past it the file list is not kept in full.
FILES_THRESHOLD = 100


@dataclass(frozen=True, slots=True)
class Entry:
    """A torrent to index, with what classification found in its name."""

    metainfo: Metainfo
    classification: Classification


@dataclass(frozen=True, slots=True)
class StoredTorrent:
    metainfo: Metainfo
    files_status: str
    content_type: str
    title: str | None
    year: int | None
    season: int | None
    episode: int | None
    resolution: str | None
    video_codec: str | None
    release_group: str | None
    created_at: datetime


def files_status(metainfo: Metainfo) -> str:
    if metainfo.files_over_cap:
        return "over_threshold"
    return "multi" if metainfo.files_count > 1 else "single"


async def refresh_swarm(conn: AsyncConnection, info_hashes: Sequence[bytes]) -> None:
    """Copy the best seeders/leechers any source reports onto the search rows (and re-rank)."""
    best = (
        "(SELECT {agg} FROM torrents_torrent_sources x "
        "WHERE x.info_hash = torrent_search.info_hash)"
    )
    seeders = f"coalesce({best.format(agg='max(x.seeders)')}, 0)"
    leechers = f"coalesce({best.format(agg='max(x.leechers)')}, 0)"
    statement = text(
        f"UPDATE torrent_search SET seeders = {seeders}, leechers = {leechers}, "  # noqa: S608
        f"relevance_key = {relevance_key_sql('relevance_key', seeders)} "
        "WHERE info_hash = :h"
    )
    await conn.execute(statement, [{"h": h} for h in info_hashes])


# The row builders below are the one definition of what a torrent becomes in each table;
# keel.bittorrented.catalog.bulk writes them (COPY on PostgreSQL, executemany on SQLite).


def torrent_row(entry: Entry, now: datetime) -> dict[str, Any]:
    """The ``torrents`` row of a new torrent."""
    m = entry.metainfo
    return {
        "info_hash": m.info_hash,
        "name": m.name,
        "size": m.size,
        "private": m.private,
        "files_status": files_status(m),
        "files_count": m.files_count,
        "created_at": now,
        "updated_at": now,
    }


def file_rows(entry: Entry, now: datetime) -> list[dict[str, Any]]:
    """The ``torrent_files`` rows of a new torrent (its kept files only)."""
    return [
        {
            "info_hash": entry.metainfo.info_hash,
            "index": f.index,
            "path": f.path,
            "size": f.size,
            "created_at": now,
            "updated_at": now,
        }
        for f in entry.metainfo.files
    ]


def file_search_rows(entry: Entry) -> list[dict[str, Any]]:
    """The ``torrent_file_search`` rows: each kept file's path, tokenised like names."""
    return [
        {"info_hash": entry.metainfo.info_hash, "file_index": f.index, "tokens": " ".join(tokens)}
        for f in entry.metainfo.files
        if (tokens := tokenize(f.path))
    ]


def term_rows(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """The distinct name tokens of a batch, for the fuzzy fallback's vocabulary."""
    terms = {t for e in entries for t in tokenize(e.metainfo.name)}
    return [{"term": t} for t in sorted(terms)]


def search_row(entry: Entry, now: datetime) -> dict[str, Any]:
    """The ``torrent_search`` row of a new torrent (without ``id``, which the database picks)."""
    m, c = entry.metainfo, entry.classification
    tokens = tokenize(m.name)
    seeders = min(m.seeders or 0, MAX_SEEDERS)
    published = m.published_at or now
    return {
        "info_hash": m.info_hash,
        "tokens": " ".join(tokens),
        "relevance_key": relevance_key(len(tokens), seeders),
        "size": m.size,
        "seeders": seeders,
        "leechers": m.leechers or 0,
        "published_ts": int(published.timestamp()),
        "content_type": c.content_type,
        "title": c.title,
        "year": c.year,
        "season": c.season,
        "episode": c.episode,
        "resolution": c.resolution,
        "video_codec": c.video_codec,
        "release_group": c.release_group,
    }


def source_row(entry: Entry, now: datetime) -> dict[str, Any]:
    """The ``torrents_torrent_sources`` row: what the entry's source says about the torrent."""
    m = entry.metainfo
    return {
        "source": m.source,
        "info_hash": m.info_hash,
        "seeders": m.seeders,
        "leechers": m.leechers,
        "published_at": m.published_at,
        "created_at": now,
        "updated_at": now,
    }


async def is_empty(conn: AsyncConnection) -> bool:
    """Whether the index holds no torrent at all (one indexed row read, at most)."""
    t = models.torrent_search
    return (await conn.execute(select(t.c.info_hash).limit(1))).first() is None


async def get(conn: AsyncConnection, info_hash: bytes) -> StoredTorrent:
    """One torrent with its stored files; raises TorrentNotFound."""
    t, s = models.torrents, models.torrent_search
    row = (
        await conn.execute(
            select(
                t,
                s.c.seeders,
                s.c.leechers,
                s.c.published_ts,
                s.c.content_type,
                s.c.title,
                s.c.year,
                s.c.season,
                s.c.episode,
                s.c.resolution,
                s.c.video_codec,
                s.c.release_group,
            )
            .join(s, s.c.info_hash == t.c.info_hash)
            .where(t.c.info_hash == info_hash)
        )
    ).first()
    if row is None:
        raise TorrentNotFound(f"no torrent {info_hash.hex()} in the index")
    f = models.torrent_files
    files = tuple(
        TorrentFile(index=r._mapping["index"], path=r.path, size=r.size)
        for r in await conn.execute(
            select(f.c.index, f.c.path, f.c.size)
            .where(f.c.info_hash == info_hash)
            .order_by(f.c.index)
        )
    )
    metainfo = Metainfo(
        info_hash=bytes(row.info_hash),
        name=row.name,
        size=row.size,
        files=files,
        files_count=max(row.files_count or 0, len(files)),
        private=row.private,
        published_at=datetime.fromtimestamp(row.published_ts, UTC),
        seeders=row.seeders,
        leechers=row.leechers,
    )
    return StoredTorrent(
        metainfo=metainfo,
        files_status=row.files_status,
        content_type=row.content_type,
        title=row.title,
        year=row.year,
        season=row.season,
        episode=row.episode,
        resolution=row.resolution,
        video_codec=row.video_codec,
        release_group=row.release_group,
        created_at=row.created_at,
    )


async def remove(conn: AsyncConnection, info_hash: bytes) -> None:
    """Delete a torrent and everything keyed on it; raises TorrentNotFound."""
    result = await conn.execute(
        models.torrents.delete().where(models.torrents.c.info_hash == info_hash)
    )
    if result.rowcount == 0:
        raise TorrentNotFound(f"no torrent {info_hash.hex()} in the index")
