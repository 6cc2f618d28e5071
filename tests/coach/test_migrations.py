"""coach's migrations create exactly its tables, on SQLite and PostgreSQL, and run twice."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from keel.coach import bootstrap, models
from keel.core import db, migrations


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": bootstrap.VERSION_TABLE}
    )
    return list(compare_metadata(context, models.metadata))


async def test_migrations_create_exactly_the_models(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await migrations.upgrade(engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
        await migrations.upgrade(
            engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE
        )  # idempotent
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()
