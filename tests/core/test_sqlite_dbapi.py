"""The one-trip aiosqlite adapter behind every SQLite engine answers as the stock one does:
rows, RETURNING, rowcount, lastrowid, executemany, streaming, errors, and a connection handed
back mid-transaction is rolled back before anyone else gets it; with inline reads too, where a
short read runs on the event loop's thread and a long one or a write on the connection's."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import db, sqlite_dbapi

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True, nullable=False),
)


@pytest.fixture(params=[False, True], ids=["thread", "inline-reads"])
async def engine(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db", inline_reads=request.param)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_the_engine_uses_the_one_trip_adapter(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, sqlite_dbapi.OneTripConnection)


async def test_statements_report_what_sqlite_reports(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(insert(items).values(name="a"))
        assert first.inserted_primary_key == (1,)
        returned = await conn.execute(insert(items).values(name="b").returning(items.c.id))
        assert returned.scalar_one() == 2
        many = await conn.execute(insert(items), [{"name": "c"}, {"name": "d"}])
        assert many.rowcount == 2
        changed = await conn.execute(
            update(items).where(items.c.id > 2).values(name="z" + items.c.name)
        )
        assert changed.rowcount == 2
    async with db.reading(engine) as conn:
        names = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
        assert names == ["a", "b", "zc", "zd"]
        streamed = [row.name async for row in await conn.stream(select(items).order_by(items.c.id))]
        assert streamed == names


async def test_errors_surface_and_roll_back(engine: AsyncEngine) -> None:
    async def insert_twice() -> None:
        async with engine.begin() as conn:
            await conn.execute(insert(items).values(name="x"))
            await conn.execute(insert(items).values(name="x"))

    with pytest.raises(IntegrityError):
        await insert_twice()
    async with db.reading(engine) as conn:
        assert (await conn.execute(select(items))).all() == []


async def test_a_connection_returned_mid_transaction_is_rolled_back(engine: AsyncEngine) -> None:
    # The pool resets only connections still in a transaction (a session's close has already
    # rolled its own back): this one is left open behind SQLAlchemy's back.
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO items (name) VALUES ('left open')")
        assert driver.in_transaction
    async with engine.connect() as conn:
        assert (await conn.get_raw_connection()).driver_connection is driver  # the same one
        assert not driver.in_transaction
        assert (await conn.execute(text("SELECT count(*) FROM items"))).scalar_one() == 0


@pytest.fixture
async def inline(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An inline-reads engine whose SQL can ask which thread runs it: ``tid()``."""
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/i.db", inline_reads=True)

    @event.listens_for(engine.sync_engine, "connect")
    def _tid(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection._conn.create_function(
            "tid", 0, threading.get_ident, deterministic=False
        )

    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def test_a_short_read_runs_on_the_loop_and_a_write_on_the_thread(
    inline: AsyncEngine,
) -> None:
    loop_thread = threading.get_ident()
    async with inline.begin() as conn:
        await conn.execute(text("INSERT INTO items (name) VALUES (CAST(tid() AS TEXT))"))
    async with db.reading(inline) as conn:
        read_by = (await conn.execute(text("SELECT tid()"))).scalar_one()
        written_by = (await conn.execute(select(items.c.name))).scalar_one()
    assert read_by == loop_thread
    assert int(written_by) != loop_thread


async def test_a_long_read_leaves_the_loop_and_still_answers_exactly(inline: AsyncEngine) -> None:
    loop_thread = threading.get_ident()
    long_read = text(
        "SELECT count(*), sum(x), tid() FROM (WITH RECURSIVE c(x) AS "
        "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x FROM c)"
    )
    async with db.reading(inline) as conn:
        count, total, ran_on = (await conn.execute(long_read)).one()
        short = (await conn.execute(text("SELECT tid()"))).scalar_one()
    assert (count, total) == (200_000, 200_000 * 200_001 // 2)
    assert ran_on != loop_thread  # interrupted inline past the step budget, rerun on the thread
    assert short == loop_thread  # and the connection's next read is inline again
