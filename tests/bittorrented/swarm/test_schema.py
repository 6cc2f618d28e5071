from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.catalog import store as catalog
from tests.bittorrented.conftest import NOW, entry

SWARM_TABLES = {"torrent_trackers", "torrent_scrapes"}


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": bootstrap.VERSION_TABLE}
    )
    return list(compare_metadata(context, models.metadata))


def _touches_swarm_tables(change: object) -> bool:
    return any(name in repr(change) for name in SWARM_TABLES)


async def test_the_migration_creates_exactly_the_swarm_tables(bt_engine: AsyncEngine) -> None:
    async with bt_engine.connect() as conn:
        assert [c for c in await conn.run_sync(_diff) if _touches_swarm_tables(c)] == []


async def test_trackers_and_schedule_go_with_their_torrent(bt_engine: AsyncEngine) -> None:
    item = entry("Some Torrent 2020")
    info_hash = item.metainfo.info_hash
    async with bt_engine.begin() as conn:
        await bulk.write(conn, [item], now=NOW)
        await conn.execute(
            models.torrent_trackers.insert(),
            [{"info_hash": info_hash, "url": "udp://t.example:1", "created_at": NOW}],
        )
        await conn.execute(
            models.torrent_scrapes.insert(), [{"info_hash": info_hash, "scraped_at": NOW}]
        )
        await catalog.remove(conn, info_hash)
    async with bt_engine.connect() as conn:
        for table in (models.torrent_trackers, models.torrent_scrapes):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar() == 0
