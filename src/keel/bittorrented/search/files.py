"""File-name search: the same query language over every stored file path, newest files first.

Paths are tokenised exactly like names, so a query means the same thing here; pages are keyset
ranges on ``id`` (descending), so a page deep into a big match set costs no more than the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.search import deadline, fts5, sql, tsvector
from keel.bittorrented.search.query import Query
from keel.core import db


@dataclass(frozen=True, slots=True)
class FileHit:
    id: int
    info_hash: bytes
    torrent_name: str
    file_index: int
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class FilePage:
    hits: tuple[FileHit, ...]
    total: int
    total_is_estimate: bool
    next_after: int | None


async def search_files(
    engine: AsyncEngine,
    query: Query,
    *,
    limit: int = 50,
    after: int | None = None,
    count_cap: int = 10_000,
    timeout_seconds: float = 5.0,
) -> FilePage:
    """Files whose path matches ``query``; ``after`` is the last id of the previous page."""
    where = sql.Where()
    if db.is_postgres(engine):
        expression = tsvector.tsquery(query)
        if expression is not None:
            where.add("f.tsv @@ CAST(:tsq AS tsquery)", tsq=expression)
    elif query.positive:
        expression = fts5.match_expr(query.positive)
        if query.negative:
            expression = f"({expression}) NOT ({fts5.any_expr(query.negative)})"
        where.add(
            "f.id IN (SELECT rowid FROM torrent_file_search_fts "
            "WHERE torrent_file_search_fts MATCH :match)",
            match=expression,
        )
    elif query.negative:
        where.add(
            "f.id NOT IN (SELECT rowid FROM torrent_file_search_fts "
            "WHERE torrent_file_search_fts MATCH :exclude)",
            exclude=fts5.any_expr(query.negative),
        )
    async with deadline.connection(engine, timeout_seconds) as conn:
        if db.is_postgres(engine):
            await tsvector.prepare(conn)
        total = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM (SELECT 1 FROM torrent_file_search f "
                    f"WHERE {where.sql()} LIMIT :cap) AS capped"
                ),
                {**where.params, "cap": count_cap + 1},
            )
        ).scalar_one()
        page = sql.Where(list(where.parts), dict(where.params))
        if after is not None:
            page.add("f.id < :after", after=after)
        rows = (
            await conn.execute(
                text(
                    "SELECT f.id, f.info_hash, t.name AS torrent_name, f.file_index, "
                    "tf.path, tf.size FROM torrent_file_search f "
                    "JOIN torrents t ON t.info_hash = f.info_hash "
                    'JOIN torrent_files tf ON tf.info_hash = f.info_hash AND tf."index" = '
                    f"f.file_index WHERE {page.sql()} ORDER BY f.id DESC LIMIT :limit"
                ),
                {**page.params, "limit": limit},
            )
        ).all()
    hits = tuple(
        FileHit(r.id, bytes(r.info_hash), r.torrent_name, r.file_index, r.path, r.size)
        for r in rows
    )
    return FilePage(
        hits=hits,
        total=min(int(total), count_cap),
        total_is_estimate=int(total) > count_cap,
        next_after=hits[-1].id if len(hits) == limit else None,
    )
