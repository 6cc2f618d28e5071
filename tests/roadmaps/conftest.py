"""roadmaps fixtures: a migrated database (SQLite and PostgreSQL) and users in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from keel.core.replicated import Database
from keel.roadmaps import bootstrap, community, models

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MakeUser = Callable[[str], Awaitable[str]]


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    engine = await bootstrap.open_database(db_url)
    database = Database(engine)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def make_user(database: Database) -> MakeUser:
    """A user (and their profile) named ``name``; returns the user id."""

    async def make(name: str) -> str:
        user_id = f"u-{name.lower()}"
        async with database.writing() as conn:
            await conn.execute(
                models.users.insert().values(
                    id=user_id,
                    email=f"{name.lower()}@example.org",
                    display_name=name,
                    password_hash="not-a-hash",
                    created_at=NOW,
                    password_changed_at=NOW,
                )
            )
            await community.ensure_profile(conn, user_id, name)
        return user_id

    return make
