"""Shared fixtures: each database test runs on SQLite and, when KEEL_TEST_POSTGRES_URL is set,
on a fresh PostgreSQL database too. A service CI needs but cannot reach fails the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "").lower() == "true"


def need_service(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs {reason}")
    pytest.skip(f"{reason} not configured")


async def _admin(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        database=parsed.database or "postgres",
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[str]:
    """A database URL of an empty database, per test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/test.db"
        return
    if not POSTGRES_URL:
        need_service("KEEL_TEST_POSTGRES_URL")
    name = f"keel_test_{uuid.uuid4().hex[:12]}"
    admin = await _admin(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield str(make_url(POSTGRES_URL).set(database=name, drivername="postgresql+asyncpg"))
    admin = await _admin(POSTGRES_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
