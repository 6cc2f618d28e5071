"""Wire bittorrented once: engine, migrations, and the search engine its database calls for."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.indexer import Indexer, MetadataSource
from keel.bittorrented.naming import classify
from keel.bittorrented.search.base import SearchEngine
from keel.bittorrented.search.cursors import Cursors
from keel.bittorrented.search.fts5 import Fts5Search
from keel.bittorrented.search.tsvector import TsvectorSearch
from keel.bittorrented.settings import BittorrentedSettings
from keel.core import crypto, db, migrations
from keel.core.clock import Clock, SystemClock

MIGRATIONS = "keel.bittorrented:migrations"
VERSION_TABLE = "bittorrented_alembic_version"
CURSOR_KEY_FILE = "bittorrented-cursor.key"


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/bittorrented.db"


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head."""
    engine = db.create_engine(url)
    await migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE)
    return engine


def search_engine(
    engine: AsyncEngine,
    *,
    timeout_seconds: float = 5.0,
    count_cap: int = 10_000,
    clock: Clock | None = None,
) -> SearchEngine:
    """FTS5 on SQLite, tsvector + GIN on PostgreSQL; same answers from both. ``clock`` rolls
    PostgreSQL's date tiers (system time by default)."""
    if db.is_postgres(engine):
        return TsvectorSearch(
            engine, timeout_seconds=timeout_seconds, count_cap=count_cap, clock=clock
        )
    return Fts5Search(engine, timeout_seconds=timeout_seconds, count_cap=count_cap)


def load_banned_keywords(path: Path | None) -> tuple[str, ...]:
    """Keywords from the configured file, one per line (``#`` starts a comment)."""
    if path is None:
        return ()
    lines = path.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def cursor_key(settings: BittorrentedSettings, data_dir: str) -> bytes:
    """The key that signs page cursors: the configured secret, else the key file under
    ``data_dir`` (created on first start, then shared by every process using that dir)."""
    if settings.cursor_secret is not None:
        return crypto.parse_key(settings.cursor_secret.get_secret_value())
    return crypto.parse_key(crypto.shared_key_file(Path(data_dir) / CURSOR_KEY_FILE))


async def open_indexer(
    settings: BittorrentedSettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    metadata: MetadataSource | None = None,
) -> Indexer:
    engine = await open_database(database_url(settings.database_url, data_dir))
    keywords = load_banned_keywords(settings.banned_keywords_file)
    clock = clock or SystemClock()
    return Indexer(
        settings=settings,
        engine=engine,
        search_engine=search_engine(
            engine,
            timeout_seconds=settings.search_timeout_seconds,
            count_cap=settings.count_cap,
            clock=clock,
        ),
        clock=clock,
        is_banned=lambda name: classify.is_banned(name, keywords),
        cursors=Cursors(cursor_key(settings, data_dir)),
        metadata=metadata,
    )
