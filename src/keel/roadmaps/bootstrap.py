"""Wire roadmaps once: the database (migrated), the server secret, the clock, accounts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import crypto, db, migrations
from keel.core.clock import Clock, SystemClock
from keel.core.identity import Accounts, FileMailer, IdentityTables, LoginLimits, Mailer, SmtpMailer
from keel.core.ratelimit import SqlRateLimiter
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.settings import RoadmapsSettings

MIGRATIONS = "keel.roadmaps:migrations"
VERSION_TABLE = "roadmaps_alembic_version"
SERVER_KEY_FILE = "roadmaps-server.key"


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/roadmaps.db"


async def open_database(url: str, *, statement_timeout_ms: int = 0) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head. The migrations run on an engine of
    their own, without the statement timeout: a migration may rightly outlast any request."""
    migrating = db.create_engine(url, pool_size=1)
    try:
        await migrations.upgrade(migrating, MIGRATIONS, VERSION_TABLE)
    finally:
        await migrating.dispose()
    return db.create_engine(url, statement_timeout_ms=statement_timeout_ms)


def open_replicated(settings: RoadmapsSettings, primary: AsyncEngine) -> Database:
    """The primary with the streaming replica, when one is configured."""
    replica = (
        db.create_engine(settings.replica_url, statement_timeout_ms=settings.statement_timeout_ms)
        if settings.replica_url
        else None
    )
    return Database(primary, replica, name="roadmaps")


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
    accounts: Accounts


def mailer(settings: RoadmapsSettings, data_dir: str) -> Mailer:
    if settings.mailer == "smtp":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
        )
    return FileMailer(Path(data_dir) / "outbox" / "roadmaps", sender=settings.mail_from)


def open_accounts(
    settings: RoadmapsSettings, database: Database, secret: bytes, clock: Clock, data_dir: str
) -> Accounts:
    """Accounts on roadmaps' identity tables; failed logins counted in its own database, so
    every process sees them without Redis (low rate, security-relevant: SqlRateLimiter)."""
    limits = LoginLimits()
    limiter = SqlRateLimiter(
        models.rate_limits,
        db.session_factory(database.primary),
        clock,
        window_seconds=limits.window_seconds,
    )
    return Accounts(
        database,
        IdentityTables(users=models.users, sessions=models.sessions),
        prefix="roadmaps",
        server_secret=secret,
        clock=clock,
        mailer=mailer(settings, data_dir),
        limiter=limiter,
        limits=limits,
    )


async def open_roadmaps(
    settings: RoadmapsSettings, *, data_dir: str = "var", clock: Clock | None = None
) -> Roadmaps:
    engine = await open_database(
        database_url(settings.database_url, data_dir),
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    database = open_replicated(settings, engine)
    secret = server_secret(settings, data_dir)
    clock = clock or SystemClock()
    return Roadmaps(
        settings=settings,
        database=database,
        secret=secret,
        clock=clock,
        accounts=open_accounts(settings, database, secret, clock, data_dir),
    )
