"""Run a product's Alembic migrations programmatically (each product has its own version table)."""

from __future__ import annotations

import zlib

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(script_location: str, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["version_table"] = version_table
    return config


async def upgrade(engine: AsyncEngine, script_location: str, version_table: str) -> None:
    """Upgrade to head. On PostgreSQL an advisory lock keeps concurrent starters from racing."""
    config = alembic_config(script_location, version_table)
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            lock_id = zlib.crc32(version_table.encode())
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": lock_id})
        await connection.run_sync(_upgrade, config)


def _upgrade(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def run_env(metadata: MetaData, version_table: str) -> None:
    """The whole of a product's ``migrations/env.py``: migrate on the connection
    :func:`upgrade` handed over (offline SQL generation is not supported), in batch mode so
    SQLite can alter tables."""
    from alembic import context  # a proxy Alembic fills in only while it runs an env.py

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("Run migrations through keel.core.migrations.upgrade")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.attributes.get("version_table", version_table),
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
