from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select

from keel.core import db
from keel.core.types import BigUInt, ExactDecimal, UTCDateTime

metadata = MetaData()
amounts = Table(
    "amounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("wei", BigUInt),
    Column("fiat", ExactDecimal(20, 8)),
    Column("at", UTCDateTime),
)


async def test_big_amounts_decimals_and_times_round_trip_exactly(db_url: str) -> None:
    engine = db.create_engine(db_url)
    values = [10**30, 2**256 - 1, 0, 123456789012345678901234]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            for i, wei in enumerate(values):
                await conn.execute(
                    amounts.insert().values(
                        id=i, wei=wei, fiat=Decimal("19.99"), at=datetime(2026, 1, 2, tzinfo=UTC)
                    )
                )
        async with engine.connect() as conn:
            rows = (await conn.execute(select(amounts).order_by(amounts.c.id))).all()
            ordered = (await conn.execute(select(amounts.c.wei).order_by(amounts.c.wei))).scalars()
            assert list(ordered) == sorted(values)
    finally:
        await engine.dispose()
    assert [r.wei for r in rows] == values
    assert all(type(r.wei) is int for r in rows)
    assert rows[0].fiat == Decimal("19.99")
    assert rows[0].at == datetime(2026, 1, 2, tzinfo=UTC)


def test_big_uint_refuses_negative_and_overflow() -> None:
    column = BigUInt()
    dialect = db.create_engine("sqlite+aiosqlite://").dialect
    with pytest.raises(ValueError, match="non-negative"):
        column.process_bind_param(-1, dialect)
    with pytest.raises(ValueError, match="overflow"):
        column.process_bind_param(10**78, dialect)


def test_exact_decimal_refuses_to_round() -> None:
    column = ExactDecimal(20, 2)
    dialect = db.create_engine("sqlite+aiosqlite://").dialect
    with pytest.raises(ValueError, match="fractional"):
        column.process_bind_param(Decimal("1.001"), dialect)
    assert column.process_bind_param(Decimal("1.10"), dialect) == "1.1"


def test_naive_datetimes_are_refused() -> None:
    dialect = db.create_engine("sqlite+aiosqlite://").dialect
    with pytest.raises(ValueError, match="aware"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), dialect)
