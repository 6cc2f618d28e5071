"""Migration 0002 goes up and down cleanly on both engines (triggers and function included)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from keel.core import db, migrations
from keel.roadmaps import bootstrap, models

NEW_TABLES = {
    "roadmaps_referral_codes",
    "roadmaps_referrals",
    "roadmaps_rewards",
    "roadmaps_badges",
    "roadmaps_referral_audit",
    "roadmaps_subscriptions",
    "roadmaps_billing_events",
    "roadmaps_subscription_payments",
}


def _downgrade(connection: Connection) -> None:
    config = migrations.alembic_config(bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
    config.attributes["connection"] = connection
    command.downgrade(config, "0001")


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": bootstrap.VERSION_TABLE}
    )
    return list(compare_metadata(context, models.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_0002_upgrades_downgrades_and_upgrades_again(db_url: str) -> None:
    engine = db.create_engine(db_url)
    try:
        await migrations.upgrade(engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) >= NEW_TABLES
            assert await conn.run_sync(_diff) == []  # the migration makes exactly the models
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade)
        async with engine.connect() as conn:
            assert not NEW_TABLES & await conn.run_sync(_tables)
        await migrations.upgrade(engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) >= NEW_TABLES
    finally:
        await engine.dispose()
