"""coach's tables on SQLite and PostgreSQL, with users in them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach import models
from keel.core import db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MakeUser = Callable[..., Awaitable[int]]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Sessions]:
    engine = db.create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    try:
        yield db.session_factory(engine)
    finally:
        await engine.dispose()


async def add_user(sessions: Sessions, user_id: int, *, paid_until: datetime | None = None) -> int:
    async with sessions() as session, session.begin():
        await session.execute(
            models.users.insert().values(
                id=user_id,
                chat_id=user_id + 1_000_000,
                first_name="Trader",
                persona="calm",
                paid_until=paid_until,
                created_at=NOW,
                last_seen_at=NOW,
            )
        )
    return user_id


@pytest.fixture
def make_user(sessions: Sessions) -> MakeUser:
    async def make(user_id: int = 42, *, paid_until: datetime | None = None) -> int:
        return await add_user(sessions, user_id, paid_until=paid_until)

    return make


async def paid_until(sessions: Sessions, user_id: int) -> datetime | None:
    async with sessions() as session:
        value: datetime | None = await session.scalar(
            select(models.users.c.paid_until).where(models.users.c.id == user_id)
        )
    return value
