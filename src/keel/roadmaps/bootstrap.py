"""Wire roadmaps once: the database (migrated), the server secret, the clock."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import crypto, db, migrations
from keel.core.clock import Clock, SystemClock
from keel.core.replicated import Database
from keel.roadmaps.settings import RoadmapsSettings

MIGRATIONS = "keel.roadmaps:migrations"
VERSION_TABLE = "roadmaps_alembic_version"
SERVER_KEY_FILE = "roadmaps-server.key"


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/roadmaps.db"


async def open_database(url: str) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head."""
    engine = db.create_engine(url)
    await migrations.upgrade(engine, MIGRATIONS, VERSION_TABLE)
    return engine


def server_secret(settings: RoadmapsSettings, data_dir: str) -> bytes:
    if settings.server_secret is not None:
        return crypto.parse_key(settings.server_secret.get_secret_value())
    return crypto.parse_key(crypto.shared_key_file(Path(data_dir) / SERVER_KEY_FILE))


@dataclass(frozen=True)
class Roadmaps:
    """What the app, the workers and the CLI work with."""

    settings: RoadmapsSettings
    database: Database
    secret: bytes
    clock: Clock


async def open_roadmaps(
    settings: RoadmapsSettings, *, data_dir: str = "var", clock: Clock | None = None
) -> Roadmaps:
    engine = await open_database(database_url(settings.database_url, data_dir))
    return Roadmaps(
        settings=settings,
        database=Database(engine),
        secret=server_secret(settings, data_dir),
        clock=clock or SystemClock(),
    )
