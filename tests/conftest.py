"""Shared fixtures: each database test runs on SQLite and, when KEEL_TEST_POSTGRES_URL is set,
on a fresh PostgreSQL database too; Redis tests run when KEEL_TEST_REDIS_URL is set. A service
CI needs but cannot reach fails the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
import redis.asyncio
from sqlalchemy.engine import make_url

from keel.core.ratelimit import RateLimitStore

POSTGRES_URL = os.environ.get("KEEL_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("KEEL_TEST_REDIS_URL", "")
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


@asynccontextmanager
async def scratch_database(engine: str, tmp_path: object) -> AsyncIterator[str]:
    """The URL of an empty database of ``engine`` ("sqlite" or "postgresql"), dropped after."""
    if engine == "sqlite":
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
    try:
        yield str(make_url(POSTGRES_URL).set(database=name, drivername="postgresql+asyncpg"))
    finally:
        admin = await _admin(POSTGRES_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[str]:
    """A database URL of an empty database, per test."""
    async with scratch_database(request.param, tmp_path) as url:
        yield url


@asynccontextmanager
async def scratch_redis() -> AsyncIterator[RateLimitStore]:
    """Rate-limit counters in the test Redis under a key prefix of their own, deleted
    afterwards, so tests never see each other's counters."""
    if not REDIS_URL:
        need_service("KEEL_TEST_REDIS_URL")
    prefix = f"keel-test-{uuid.uuid4().hex[:12]}"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except redis.RedisError:
        await client.aclose()
        need_service(f"Redis at KEEL_TEST_REDIS_URL={REDIS_URL}")
    try:
        yield RateLimitStore("redis", REDIS_URL, prefix)
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_store() -> AsyncIterator[RateLimitStore]:
    async with scratch_redis() as store:
        yield store
