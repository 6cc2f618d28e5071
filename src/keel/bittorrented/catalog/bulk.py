"""The one way torrents are written into the index: uploads, magnets, the crawler's batches,
the JSON-lines and bitmagnet imports, and the benchmark corpus all end up in :func:`write`
(inside the caller's transaction) or :func:`load` (a stream, a transaction per batch). The rows
come from catalog's row builders:

* PostgreSQL: the batch is COPYed (binary) into a temporary staging table, then moved with one
  ``INSERT … SELECT … ON CONFLICT DO NOTHING`` per table, so known torrents are skipped by the
  unique index rather than by a round trip, and a concurrent writer cannot make it fail.
* SQLite: multi-row ``INSERT … VALUES`` statements of prepared tuples (thousands of rows a
  statement), one transaction per batch; SQLite's single write lock (``BEGIN IMMEDIATE``) makes
  the "which torrents are new" check race-free.

Batches are committed one by one, so a crash loses at most the batch in flight and re-running
the same load is harmless (known torrents only refresh their source's counts). While one batch
is being written, the next is prepared in a worker thread: with the parser and the classifier
feeding ``entries`` that is most of the Python work, and it overlaps the database's (which
holds no GIL while a statement steps).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Dialect, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented import models
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.catalog.store import Entry
from keel.core import db

DEFAULT_BATCH = 20_000
# SQLite allows 32,766 bound parameters per statement since 3.32 (some builds more).
_SQLITE_MAX_PARAMS = 32_766
_SQLITE_IN_CHUNK = 5_000  # hashes per lookup, well below that

Progress = Callable[[int], object]


@dataclass(frozen=True, slots=True)
class LoadResult:
    entries: int  # entries read (duplicates within a batch count once each)
    new: int  # torrents that were not indexed before
    stopped: bool = False  # ``stop`` was set: the entries after the last batch were not read


@dataclass(slots=True)
class _Batch:
    """One batch as rows, built in a worker thread."""

    read: int
    unique: list[Entry]
    torrents: list[dict[str, Any]]
    search: list[dict[str, Any]]
    files: list[dict[str, Any]]
    links: list[dict[str, Any]]


def _prepare(entries: Iterator[Entry], size: int, now: datetime) -> _Batch | None:
    chunk = list(itertools.islice(entries, size))
    return _batch(chunk, now) if chunk else None


def _batch(chunk: Sequence[Entry], now: datetime) -> _Batch:
    # One entry per hash, the last one's values in the first one's place.
    unique = list({e.metainfo.info_hash: e for e in chunk}.values())
    return _Batch(
        read=len(chunk),
        unique=unique,
        torrents=[catalog.torrent_row(e, now) for e in unique],
        search=[catalog.search_row(e, now) for e in unique],
        files=[row for e in unique for row in catalog.file_rows(e, now)],
        links=[catalog.source_row(e, now) for e in unique],
    )


async def write(conn: AsyncConnection, entries: Sequence[Entry], *, now: datetime) -> int:
    """Index a batch inside the caller's transaction; returns how many torrents were new."""
    if not entries:
        return 0
    return await _write(conn, _batch(entries, now), now)


async def load(
    engine: AsyncEngine,
    entries: Iterable[Entry],
    *,
    now: datetime,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Index ``entries`` in batches of ``batch_size``, each in its own transaction, calling
    ``progress(n)`` after each commit with the number of entries it held. Reading ``entries``
    (and whatever work their iterator does) runs in a worker thread. When ``stop`` is set the
    load ends after the batch being written. A failing batch raises; the batches before it stay
    committed."""
    if batch_size < 1:
        raise ValueError("batch_size must be positive")
    source = iter(entries)
    read = new = 0
    pending = asyncio.ensure_future(asyncio.to_thread(_prepare, source, batch_size, now))
    try:
        while (batch := await pending) is not None:
            if stop is not None and stop.is_set():
                return LoadResult(entries=read, new=new, stopped=True)
            pending = asyncio.ensure_future(asyncio.to_thread(_prepare, source, batch_size, now))
            async with db.writing(engine) as conn:
                new += await _write(conn, batch, now)
            read += batch.read
            if progress is not None:
                progress(batch.read)
    finally:
        if not pending.done():
            # Let the thread finish with the iterator before the caller may touch it again.
            await asyncio.wait([pending])
    return LoadResult(entries=read, new=new)  # every entry read: nothing left to resume


async def _write(conn: AsyncConnection, batch: _Batch, now: datetime) -> int:
    await _add_sources(conn, batch, now)
    if conn.dialect.name == "postgresql":
        return await _write_postgresql(conn, batch, now)
    return await _write_sqlite(conn, batch, now)


async def _add_sources(conn: AsyncConnection, batch: _Batch, now: datetime) -> None:
    # Also the first statement of the transaction: SQLAlchemy begins lazily, and the COPY
    # below goes straight to the driver, so something must open the transaction first.
    keys = sorted({e.metainfo.source for e in batch.unique})
    await conn.execute(
        db.insert(conn, models.torrent_sources).on_conflict_do_nothing(),
        [{"key": k, "name": k, "created_at": now, "updated_at": now} for k in keys],
    )


# ---------------------------------------------------------------------------------------------
# PostgreSQL: COPY into staging tables, then INSERT … SELECT.

_TORRENT_COLUMNS = ("info_hash", "name", "size", "private", "files_status", "files_count")
_SEARCH_COLUMNS = (
    "tokens",
    "relevance_key",
    "seeders",
    "leechers",
    "published_ts",
    "content_type",
    "title",
    "year",
    "season",
    "episode",
    "resolution",
    "video_codec",
    "release_group",
)
_LINK_COLUMNS = ("source", "seeders", "leechers", "published_at")
_STAGE_DDL = (
    "CREATE TEMPORARY TABLE bulk_stage (ord integer, info_hash bytea, name text, size bigint, "
    "private boolean, files_status text, files_count integer, tokens text, "
    "relevance_key bigint, seeders integer, leechers integer, published_ts bigint, "
    "content_type text, title text, year smallint, season smallint, episode smallint, "
    "resolution text, video_codec text, release_group text, link_source text, "
    "link_seeders integer, link_leechers integer, link_published_at timestamptz) "
    "ON COMMIT DROP"
)
_STAGE_COLUMNS = (
    "ord",
    *_TORRENT_COLUMNS,
    *_SEARCH_COLUMNS,
    *(f"link_{c}" for c in _LINK_COLUMNS),
)
_FILES_DDL = (
    "CREATE TEMPORARY TABLE bulk_stage_files (info_hash bytea, index integer, path text, "
    "size bigint) ON COMMIT DROP"
)
_FILE_COLUMNS = ("info_hash", "index", "path", "size")
_SEARCH_SELECT = ", ".join(f"st.{c}" for c in _SEARCH_COLUMNS)

# One statement, so the new hashes need not travel: torrents first, then the search rows and
# files of exactly the torrents that were new (in batch order, so ids follow it as in
# catalog.add). It returns how many were new and which known torrents had swarm counts.
_MOVE = f"""
WITH fresh AS (
    INSERT INTO torrents ({", ".join(_TORRENT_COLUMNS)}, created_at, updated_at)
    SELECT {", ".join(_TORRENT_COLUMNS)}, :now, :now FROM bulk_stage ORDER BY ord
    ON CONFLICT DO NOTHING
    RETURNING info_hash
), search AS (
    INSERT INTO torrent_search (info_hash, {", ".join(_SEARCH_COLUMNS)}, size)
    SELECT st.info_hash, {_SEARCH_SELECT}, st.size FROM bulk_stage st
    WHERE st.info_hash IN (SELECT info_hash FROM fresh) ORDER BY st.ord
    ON CONFLICT DO NOTHING
), files AS (
    INSERT INTO torrent_files (info_hash, index, path, size, created_at, updated_at)
    SELECT f.info_hash, f.index, f.path, f.size, :now, :now FROM bulk_stage_files f
    WHERE f.info_hash IN (SELECT info_hash FROM fresh)
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM fresh) AS new,
       ARRAY(SELECT info_hash FROM fresh) AS fresh,
       ARRAY(SELECT st.info_hash FROM bulk_stage st
             WHERE st.link_seeders IS NOT NULL
               AND st.info_hash NOT IN (SELECT info_hash FROM fresh)
             ORDER BY st.ord) AS known_reported
"""  # noqa: S608 - fixed column lists, values are bound

# The source links: a known link keeps counts its source did not report again.
_LINKS = """
INSERT INTO torrents_torrent_sources
    (source, info_hash, seeders, leechers, published_at, created_at, updated_at)
SELECT link_source, info_hash, link_seeders, link_leechers, link_published_at, :now, :now
FROM bulk_stage ORDER BY ord
ON CONFLICT (source, info_hash) DO UPDATE SET
    seeders = coalesce(excluded.seeders, torrents_torrent_sources.seeders),
    leechers = coalesce(excluded.leechers, torrents_torrent_sources.leechers),
    updated_at = excluded.updated_at
"""


async def _write_postgresql(conn: AsyncConnection, batch: _Batch, now: datetime) -> int:
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    # Sorting a batch by its order spills to disk at the default 4 MB.
    await conn.execute(text("SET LOCAL work_mem = '64MB'"))
    await conn.execute(text(_STAGE_DDL))
    await conn.execute(text(_FILES_DDL))
    records = [
        (
            ord_,
            *(t[c] for c in _TORRENT_COLUMNS),
            *(s[c] for c in _SEARCH_COLUMNS),
            *(link[c] for c in _LINK_COLUMNS),
        )
        for ord_, (t, s, link) in enumerate(
            zip(batch.torrents, batch.search, batch.links, strict=True)
        )
    ]
    await driver.copy_records_to_table("bulk_stage", records=records, columns=_STAGE_COLUMNS)
    if batch.files:
        await driver.copy_records_to_table(
            "bulk_stage_files",
            records=[tuple(f[c] for c in _FILE_COLUMNS) for f in batch.files],
            columns=_FILE_COLUMNS,
        )
    row = (await conn.execute(text(_MOVE), {"now": now})).one()
    await conn.execute(text(_LINKS), {"now": now})
    # Several writes may share a transaction (ON COMMIT DROP only drops at the end).
    await conn.execute(text("DROP TABLE bulk_stage, bulk_stage_files"))
    if row.known_reported:
        await catalog.refresh_swarm(conn, [bytes(h) for h in row.known_reported])
    await _write_vocabulary(conn, batch, {bytes(h) for h in row.fresh})
    return int(row.new)


async def _write_vocabulary(conn: AsyncConnection, batch: _Batch, fresh: set[bytes]) -> None:
    """File-name search rows and name terms of the new torrents."""
    new = [e for e in batch.unique if e.metainfo.info_hash in fresh]
    file_search = [row for e in new for row in catalog.file_search_rows(e)]
    if file_search:
        await conn.execute(
            db.insert(conn, models.torrent_file_search).on_conflict_do_nothing(), file_search
        )
    terms = [t["term"] for t in catalog.term_rows(new)]
    if not terms:
        return
    if conn.dialect.name == "postgresql":
        # One statement for the whole batch's vocabulary instead of a round trip per term.
        await conn.execute(
            text(
                "INSERT INTO search_terms (term) SELECT unnest(CAST(:terms AS text[])) "
                "ON CONFLICT DO NOTHING"
            ),
            {"terms": terms},
        )
    else:
        await conn.execute(
            db.insert(conn, models.search_terms).on_conflict_do_nothing(),
            [{"term": t} for t in terms],
        )


# ---------------------------------------------------------------------------------------------
# SQLite: multi-row INSERT statements of tuples, bound as SQLAlchemy binds each column.

_UPSERT_LINK = (
    "ON CONFLICT (source, info_hash) DO UPDATE SET "
    "seeders = coalesce(excluded.seeders, torrents_torrent_sources.seeders), "
    "leechers = coalesce(excluded.leechers, torrents_torrent_sources.leechers), "
    "updated_at = excluded.updated_at"
)


def _binder(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy itself binds for ``column`` on ``dialect`` (its dialect-level type's
    processor: a datetime becomes SQLite's ``YYYY-MM-DD HH:MM:SS.ffffff`` text, ``bytes`` stay
    as they are), or None when the value goes as it is. Each distinct value is converted once:
    most of a batch's timestamps are its ``now``."""
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if process is None:
        return None
    done: dict[Any, Any] = {}

    def bind(value: Any) -> Any:
        try:
            return done[value]
        except KeyError:
            done[value] = converted = process(value)
            return converted
        except TypeError:  # unhashable (a JSON value): nothing to share
            return process(value)

    return bind


async def _insert_rows(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], tail: str
) -> None:
    """INSERT ``rows`` a few thousand at a time, each group as one multi-row ``VALUES``
    statement. ``executemany`` would step once per row, and sqlite3 takes Python's GIL back
    after every step: with the next batch being prepared in a worker thread, each row then
    waited for that thread's switch interval, and the writes crawled until it was done. One
    statement steps once, so SQLite (the rows, their indexes and FTS5) runs beside the Python
    work instead of after it."""
    if not rows:
        return
    # The builders' keys are the column list; the binders turn datetimes and booleans into
    # what SQLAlchemy itself would store (tests/bittorrented/test_bulk.py compares the two).
    columns = tuple(rows[0])
    binders = [_binder(table.c[c], conn.dialect) for c in columns]
    pairs = list(zip(columns, binders, strict=True))
    bare = all(b is None for b in binders)
    names = ", ".join(f'"{c}"' for c in columns)
    one_row = "(" + ", ".join("?" for _ in columns) + ")"
    per_statement = _SQLITE_MAX_PARAMS // len(columns)
    for start in range(0, len(rows), per_statement):
        part = rows[start : start + per_statement]
        if bare:
            values = tuple(v for row in part for v in row.values())
        else:
            values = tuple(row[c] if b is None else b(row[c]) for row in part for c, b in pairs)
        await conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({names}) "  # noqa: S608
            f"VALUES {', '.join([one_row] * len(part))} {tail}",
            values,
        )


async def _write_sqlite(conn: AsyncConnection, batch: _Batch, now: datetime) -> int:
    hashes = [e.metainfo.info_hash for e in batch.unique]
    known: set[bytes] = set()
    for start in range(0, len(hashes), _SQLITE_IN_CHUNK):
        part = tuple(hashes[start : start + _SQLITE_IN_CHUNK])
        result = await conn.exec_driver_sql(
            f"SELECT info_hash FROM torrents WHERE info_hash IN ({', '.join('?' * len(part))})",  # noqa: S608
            part,
        )
        known.update(bytes(r[0]) for r in result)
    fresh = {h for h in hashes if h not in known}
    if fresh:
        pick = [h in fresh for h in hashes]
        await _insert_rows(
            conn,
            models.torrents,
            [r for r, keep in zip(batch.torrents, pick, strict=True) if keep],
            "ON CONFLICT DO NOTHING",
        )
        await _insert_rows(
            conn,
            models.torrent_files,
            [f for f in batch.files if f["info_hash"] in fresh],
            "ON CONFLICT DO NOTHING",
        )
        await _insert_rows(
            conn,
            models.torrent_search,
            [r for r, keep in zip(batch.search, pick, strict=True) if keep],
            "ON CONFLICT DO NOTHING",
        )
    await _insert_rows(conn, models.torrents_torrent_sources, batch.links, _UPSERT_LINK)
    # Fresh torrents already carry their source's counts; only known ones need re-ranking.
    reported = [
        e.metainfo.info_hash
        for e in batch.unique
        if e.metainfo.seeders is not None and e.metainfo.info_hash in known
    ]
    if reported:
        await catalog.refresh_swarm(conn, reported)
    await _write_vocabulary(conn, batch, fresh)
    return len(fresh)
