"""The one-trip aiosqlite adapter behind every SQLite engine answers as the stock one does:
rows, RETURNING, rowcount, lastrowid, executemany, streaming, errors, and a connection handed
back mid-transaction is rolled back before anyone else gets it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
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


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
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
