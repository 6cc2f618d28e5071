"""What the referral, billing and usage tests share: a migrated database, users, a fixed now."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from keel.core import db, migrations
from keel.core.replicated import Database
from keel.roadmaps import bootstrap, models

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@asynccontextmanager
async def migrated(url: str, *, pool_size: int = 10) -> AsyncIterator[Database]:
    """A :class:`Database` on ``url`` at the current schema; ``pool_size`` * 2 connections."""
    engine = db.create_engine(url, pool_size=pool_size)
    try:
        await migrations.upgrade(engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
        yield Database(engine)
    finally:
        await engine.dispose()


async def add_users(database: Database, count: int) -> list[str]:
    """``count`` new users' ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    async with database.writing() as conn:
        await conn.execute(
            models.users.insert(),
            [
                {
                    "id": user_id,
                    "email": f"{user_id}@example.org",
                    "display_name": f"user {user_id[:6]}",
                    "password_hash": "not-a-hash",
                    "created_at": NOW,
                    "password_changed_at": NOW,
                }
                for user_id in ids
            ],
        )
    return ids
