"""An Accounts service on its own tables (prefix ``acme``, as a product would have), on
SQLite and PostgreSQL, with a clock the test moves, the file mailer in a temporary outbox and
the database rate limiter. Hashes use argon2id's cheapest parameters here, so the suite is
fast; test_passwords.py covers the production profile."""

from __future__ import annotations

import email
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from pathlib import Path

import pytest
from argon2 import Parameters, profiles
from sqlalchemy import MetaData

from keel.core import db
from keel.core.clock import FrozenClock
from keel.core.identity import (
    Accounts,
    FileMailer,
    IdentityTables,
    LoginLimits,
    Passwords,
    identity_tables,
)
from keel.core.ratelimit import RateLimiter, SqlRateLimiter, rate_limit_table
from keel.core.replicated import Database

SECRET = bytes(range(32))
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FAST = Parameters(
    type=profiles.RFC_9106_LOW_MEMORY.type,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=1,
    memory_cost=64,
    parallelism=1,
)
LIMITS = LoginLimits(
    window_seconds=900,
    failures_per_client=6,
    failures_per_email=3,
    signups_per_client=5,
    resets_per_client=4,
    resets_per_email=2,
)


@dataclass
class World:
    accounts: Accounts
    database: Database
    tables: IdentityTables
    clock: FrozenClock
    outbox: Path
    limiter: SqlRateLimiter

    def mails(self) -> list[EmailMessage]:
        if not self.outbox.exists():
            return []
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.outbox.iterdir())]

    def reset_token(self) -> str:
        """The token of the last reset link mailed."""
        body = self.mails()[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        link = next(line for line in body.decode().splitlines() if "token=" in line)
        return link.rsplit("token=", 1)[1].strip()


def make_accounts(
    database: Database,
    tables: IdentityTables,
    limiter: RateLimiter,
    clock: FrozenClock,
    outbox: Path,
    *,
    passwords: Passwords | None = None,
) -> Accounts:
    return Accounts(
        database,
        tables,
        prefix="acme",
        server_secret=SECRET,
        clock=clock,
        mailer=FileMailer(outbox, sender="acme <acme@example.org>"),
        limiter=limiter,
        limits=LIMITS,
        passwords_=passwords or Passwords(FAST),
    )


@asynccontextmanager
async def open_world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    metadata = MetaData()
    tables = identity_tables(metadata, "acme")
    limits_table = rate_limit_table(metadata, "acme_rate_limits")
    engine = db.create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    database = Database(engine)
    clock = FrozenClock(START)
    limiter = SqlRateLimiter(
        limits_table, db.session_factory(engine), clock, window_seconds=LIMITS.window_seconds
    )
    outbox = tmp_path / "outbox"
    accounts = make_accounts(database, tables, limiter, clock, outbox)
    try:
        yield World(accounts, database, tables, clock, outbox, limiter)
    finally:
        await engine.dispose()


@pytest.fixture
async def world(db_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(db_url, tmp_path) as opened:
        yield opened


@pytest.fixture
async def sqlite_world(tmp_path: Path) -> AsyncIterator[World]:
    """For tests of what does not depend on the database engine (HTTP glue)."""
    async with open_world(f"sqlite+aiosqlite:///{tmp_path}/identity.db", tmp_path) as opened:
        yield opened
