"""Lookups read exactly what the engine reads: the same row, the same types, the latest commit,
and a read too long for the event loop still answers (through the engine)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    select,
)
from sqlalchemy.exc import MultipleResultsFound
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import db, sqlite_dbapi
from keel.core.lookups import Lookups
from keel.core.types import BigUInt, ExactDecimal, UTCDateTime

metadata = MetaData()
things = Table(
    "things",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("owner", String(36), nullable=False),
    Column("amount", ExactDecimal(30, 8), nullable=False),
    Column("fee", Numeric(12, 2), nullable=False),
    Column("units", BigUInt(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("paid", Boolean, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("at", UTCDateTime(), nullable=True),
    Column("naive", DateTime(), nullable=True),
)
BY_ID = select(things).where(things.c.id == bindparam("thing"))
BY_OWNER_AND_FLAG = select(things.c.id, things.c.amount).where(
    things.c.owner == bindparam("owner"), things.c.paid.is_(True)
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(db_url, inline_reads=True)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def lookups(engine: AsyncEngine) -> AsyncIterator[Lookups]:
    found = Lookups(engine)
    yield found
    await found.aclose()


def thing(**overrides: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "owner": "shop",
        "amount": Decimal("0.12345678"),
        "fee": Decimal("1.50"),
        "units": 2**256 - 1,
        "count": 3,
        "paid": True,
        "meta": {"order": "A-1", "items": [1, 2]},
        "at": datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=UTC),
        "naive": datetime(2026, 12, 6, 3, 4, 5),
        **overrides,
    }


async def insert(engine: AsyncEngine, *rows: dict[str, Any]) -> None:
    async with db.writing(engine) as conn:
        await conn.execute(things.insert(), list(rows))


async def through_engine(engine: AsyncEngine, statement: Any, **params: Any) -> Any:
    async with db.reading(engine) as conn:
        return (await conn.execute(statement, params)).one_or_none()


async def test_sqlite_files_are_read_inline_and_other_engines_through_the_engine(
    engine: AsyncEngine, lookups: Lookups
) -> None:
    assert lookups.inline == db.is_sqlite(engine)


async def test_a_row_reads_as_the_engine_reads_it(engine: AsyncEngine, lookups: Lookups) -> None:
    row = thing()
    await insert(engine, row, thing(at=None, paid=False))
    found = await lookups.one_or_none(BY_ID, thing=row["id"])
    expected = await through_engine(engine, BY_ID, thing=row["id"])
    assert found is not None
    assert expected is not None
    assert found._mapping == expected._mapping
    assert [type(v) for v in found] == [type(v) for v in expected]
    assert isinstance(found.amount, Decimal)
    assert found.amount == Decimal("0.12345678")
    assert found.meta == {"order": "A-1", "items": [1, 2]}
    assert (found.at, found.units, found.fee) == (row["at"], 2**256 - 1, Decimal("1.50"))


async def test_absent_is_none_and_two_rows_are_an_error(
    engine: AsyncEngine, lookups: Lookups
) -> None:
    assert await lookups.one_or_none(BY_ID, thing="nope") is None
    await insert(engine, thing(), thing())
    with pytest.raises(MultipleResultsFound):
        await lookups.one_or_none(BY_OWNER_AND_FLAG, owner="shop")


async def test_a_commit_is_seen_at_once_and_an_open_write_is_not(
    engine: AsyncEngine, lookups: Lookups
) -> None:
    row = thing(count=1)
    await insert(engine, row)

    async def count() -> int:
        found = await lookups.one_or_none(BY_ID, thing=row["id"])
        assert found is not None
        return int(found.count)

    assert await count() == 1
    async with db.writing(engine) as conn:
        await conn.execute(things.update().values(count=2))
        # Not committed yet: the lookup sees the last commit, and does not wait for the writer.
        assert await count() == 1
    assert await count() == 2


async def test_a_read_past_the_step_budget_answers_through_the_engine(
    engine: AsyncEngine, lookups: Lookups, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10,000 rows and an unindexed filter: a scan of over a hundred thousand VM steps.
    await insert(engine, *(thing(owner=f"o{i}", paid=False) for i in range(10_000)))
    await insert(engine, wanted := thing(owner="needle"))
    executed: list[str] = []
    original = sqlite_dbapi.read_bounded

    def spy(conn: Any, operation: str, parameters: Any) -> list[Any] | None:
        rows = original(conn, operation, parameters)
        executed.append("inline" if rows is not None else "interrupted")
        return rows

    monkeypatch.setattr(sqlite_dbapi, "read_bounded", spy)
    found = await lookups.one_or_none(BY_OWNER_AND_FLAG, owner="needle")
    assert found is not None
    assert found.id == wanted["id"]
    if lookups.inline:
        assert executed == ["interrupted"]
        found = await lookups.one_or_none(BY_ID, thing=wanted["id"])  # by key: within budget
        assert executed == ["interrupted", "inline"]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False),
    units=st.integers(min_value=0, max_value=2**256 - 1),
    count=st.integers(min_value=-(2**31), max_value=2**31 - 1),
    meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    owner=st.text(min_size=1, max_size=36).filter(lambda s: "\x00" not in s),
)
async def test_any_row_reads_the_same_both_ways(
    engine: AsyncEngine,
    lookups: Lookups,
    amount: Decimal,
    units: int,
    count: int,
    meta: dict[str, Any],
    owner: str,
) -> None:
    row = thing(amount=amount, units=units, count=count, meta=meta, owner=owner)
    await insert(engine, row)
    found = await lookups.one_or_none(BY_ID, thing=row["id"])
    assert found is not None
    assert found._mapping == (await through_engine(engine, BY_ID, thing=row["id"]))._mapping
    assert (found.amount, found.units, found.count, found.meta, found.owner) == (
        amount,
        units,
        count,
        meta,
        owner,
    )
