"""Wire bittorrented once: engine, migrations, and the search engine its database calls for."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.search.base import SearchEngine
from keel.bittorrented.search.fts5 import Fts5Search
from keel.bittorrented.search.tsvector import TsvectorSearch
from keel.core import db, migrations

MIGRATIONS = "keel.bittorrented:migrations"
VERSION_TABLE = "bittorrented_alembic_version"


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/bittorrented.db"


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head."""
    engine = db.create_engine(url)
    await migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE)
    return engine


def search_engine(
    engine: AsyncEngine, *, timeout_seconds: float = 5.0, count_cap: int = 10_000
) -> SearchEngine:
    """FTS5 on SQLite, tsvector + GIN on PostgreSQL; same answers from both."""
    if db.is_postgres(engine):
        return TsvectorSearch(engine, timeout_seconds=timeout_seconds, count_cap=count_cap)
    return Fts5Search(engine, timeout_seconds=timeout_seconds, count_cap=count_cap)
