"""The one write path: a streamed load leaves the database exactly as writing the same batches
one transaction each does, on both engines; known torrents only refresh their counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.search.base import SearchRequest
from keel.bittorrented.search.query import parse
from keel.bittorrented.torrent.values import Metainfo, TorrentFile
from tests.bittorrented.conftest import NOW, info_hash

TABLES = (
    models.torrents,
    models.torrent_files,
    models.torrent_sources,
    models.torrents_torrent_sources,
    models.torrent_search,
    models.torrent_file_search,
    models.search_terms,
)


def make(
    seed: str,
    name: str,
    *,
    seeders: int | None = 3,
    leechers: int | None = 1,
    source: str = "dht",
    files: int = 0,
    published_days: int | None = 2,
) -> catalog.Entry:
    listed = tuple(TorrentFile(i, f"{name}/part{i}.mkv", 100 + i) for i in range(files))
    metainfo = Metainfo(
        info_hash=info_hash(seed),
        name=name,
        size=1000 + len(name),
        files=listed,
        files_count=max(files, 1) + (1 if files > 2 else 0),  # over the cap when > 2
        private=seed.endswith("p"),
        source=source,
        published_at=None if published_days is None else NOW - timedelta(days=published_days),
        seeders=seeders,
        leechers=leechers,
    )
    return catalog.Entry(
        metainfo,
        Classification(ContentType.MOVIE, title=name[:5], year=2024, resolution="1080p"),
    )


# Two batches as a crawler would send them: duplicates inside a batch (the last one wins),
# torrents seen again in the next batch with new counts (same and another source, and with no
# counts at all), files, no publication date, a private torrent.
FIRST = [
    make("a", "The.Matrix.1999.1080p.BluRay.x264-GRP", seeders=10, files=3),
    make("b", "Amélie (2001) [720p]", seeders=None, leechers=4),
    make("c", "Dune Part Two 2024 2160p", seeders=7, published_days=None),
    make("a", "The.Matrix.1999.1080p.BluRay.x264-OTHER", seeders=12, files=1),
    make("dp", "Private.Thing.2020", seeders=0, leechers=None),
    make("e", "Ubuntu 24.04 Desktop amd64", seeders=500, source="tracker"),
]
SECOND = [
    make("a", "renamed is ignored", seeders=40, source="tracker"),
    make("c", "Dune Part Two 2024 2160p", seeders=None, leechers=None),
    make("b", "Amélie (2001) [720p]", seeders=2, leechers=9),
    make("f", "Fresh.Show.S01E02.720p.WEB.h264-GRP", seeders=5, files=2),
    make("e", "Ubuntu 24.04 Desktop amd64", seeders=3, source="tracker"),
    make("g", "Another 2024 release", seeders=1),
    make("g", "Another 2024 release (dup)", seeders=2),
]
BATCH = 4  # splits FIRST inside its duplicate pair, so batch boundaries matter


def batches(entries: list[catalog.Entry], size: int) -> list[list[catalog.Entry]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with engine.connect() as conn:
        for table in TABLES:
            keys = list(table.primary_key.columns)
            rows = await conn.execute(select(*table.c).order_by(*keys))
            out[table.name] = [tuple(r) for r in rows]
    return out


async def wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(models.torrents))
        await conn.execute(delete(models.torrent_sources))
        await conn.execute(delete(models.search_terms))
        if engine.dialect.name == "postgresql":
            # Restart the id sequences so both runs hand out the same ids.
            for table in ("torrent_search", "torrent_file_search"):
                await conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 1, false)")
                )


async def test_a_streamed_load_writes_exactly_what_batch_writes_do(bt_engine: AsyncEngine) -> None:
    for chunk in batches(FIRST, BATCH) + batches(SECOND, BATCH):
        async with bt_engine.begin() as conn:
            await bulk.write(conn, chunk, now=NOW)
    expected = await snapshot(bt_engine)
    await wipe(bt_engine)

    seen: list[int] = []
    first = await bulk.load(bt_engine, FIRST, now=NOW, batch_size=BATCH, progress=seen.append)
    second = await bulk.load(bt_engine, iter(SECOND), now=NOW, batch_size=BATCH)

    assert await snapshot(bt_engine) == expected
    assert seen == [4, 2]
    assert (first.entries, first.new) == (len(FIRST), 5)  # a, b, c, then dp, e
    assert (second.entries, second.new) == (len(SECOND), 2)  # f and g
    assert expected["torrent_files"]  # the case with files really ran
    assert expected["torrent_file_search"]
    assert expected["search_terms"]


async def test_bulk_loaded_rows_are_found_by_search(bt_engine: AsyncEngine) -> None:
    await bulk.load(bt_engine, FIRST + SECOND, now=NOW, batch_size=5)
    search = bootstrap.search_engine(bt_engine)
    page = await search.search(SearchRequest(parse("2024"), sort="seeders"))
    assert [h.name for h in page.hits] == [
        "Dune Part Two 2024 2160p",
        "Another 2024 release (dup)",
    ]


async def test_an_empty_load_does_nothing(bt_engine: AsyncEngine) -> None:
    result = await bulk.load(bt_engine, [], now=NOW)
    assert (result.entries, result.new) == (0, 0)
    assert all(not rows for rows in (await snapshot(bt_engine)).values())


async def test_several_writes_may_share_one_transaction(bt_engine: AsyncEngine) -> None:
    async with bt_engine.begin() as conn:
        assert await bulk.write(conn, FIRST[:3], now=NOW) == 3
        assert await bulk.write(conn, FIRST[3:], now=NOW) == 2
        assert await bulk.write(conn, [], now=NOW) == 0
    async with bt_engine.connect() as conn:
        assert len((await conn.execute(select(models.torrents.c.info_hash))).all()) == 5


async def test_a_stop_ends_the_load_after_the_batch_in_flight(bt_engine: AsyncEngine) -> None:
    stop = asyncio.Event()
    result = await bulk.load(
        bt_engine, FIRST + SECOND, now=NOW, batch_size=2, progress=lambda _: stop.set(), stop=stop
    )
    assert result.stopped
    assert result.entries == 2
    again = await bulk.load(bt_engine, FIRST + SECOND, now=NOW, batch_size=2)
    assert not again.stopped
    async with bt_engine.connect() as conn:
        stored = (await conn.execute(select(models.torrents.c.info_hash))).all()
    assert len(stored) == len({e.metainfo.info_hash for e in FIRST + SECOND})


async def test_sqlite_rows_hold_what_sqlalchemy_itself_would_store(
    bt_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bulk binds SQLite's tuples itself (bytes as they are, each distinct datetime converted
    # once) into multi-row INSERTs; SQLAlchemy's own INSERT of the same builder rows must store
    # the very same values, in the same order (ids included).
    if bt_engine.dialect.name != "sqlite":
        pytest.skip("the tuples are bound by hand on SQLite only")
    monkeypatch.setattr(bulk, "_SQLITE_MAX_PARAMS", 40)  # a few rows per statement
    entries = list({e.metainfo.info_hash: e for e in FIRST + SECOND}.values())
    tables = (
        models.torrent_sources,
        models.torrents,
        models.torrent_files,
        models.torrent_search,
        models.torrents_torrent_sources,
    )

    async def raw() -> dict[str, list[tuple[Any, ...]]]:
        async with bt_engine.connect() as conn:
            return {
                t.name: [
                    tuple(r)
                    for r in await conn.exec_driver_sql(
                        f"SELECT *, {', '.join(f'typeof({c.name!r})' for c in t.c)} "  # noqa: S608
                        f"FROM {t.name} ORDER BY rowid"
                    )
                ]
                for t in tables
            }

    async with bt_engine.begin() as conn:
        await bulk.write(conn, entries, now=NOW)
    ours = await raw()
    await wipe(bt_engine)
    sources = sorted({e.metainfo.source for e in entries})
    async with bt_engine.begin() as conn:
        await conn.execute(
            models.torrent_sources.insert(),
            [{"key": k, "name": k, "created_at": NOW, "updated_at": NOW} for k in sources],
        )
        await conn.execute(models.torrents.insert(), [catalog.torrent_row(e, NOW) for e in entries])
        files = [f for e in entries for f in catalog.file_rows(e, NOW)]
        await conn.execute(models.torrent_files.insert(), files)
        await conn.execute(
            models.torrent_search.insert(), [catalog.search_row(e, NOW) for e in entries]
        )
        await conn.execute(
            models.torrents_torrent_sources.insert(), [catalog.source_row(e, NOW) for e in entries]
        )
    assert await raw() == ours
    assert all(ours[t.name] for t in tables)
