"""The PostgreSQL primary and its streaming replica that .ci/run sets up (.ci/postgres-replica),
for failover tests: scratch databases on both, and stopping and starting the primary.

KEEL_TEST_PG_PRIMARY_URL, KEEL_TEST_PG_REPLICA_URL and KEEL_TEST_PG_PRIMARY_CLUSTER
("<version>/<name>" for pg_ctlcluster) name them; without them a test skips, or fails in CI.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from tests.conftest import need_service

PRIMARY_URL = os.environ.get("KEEL_TEST_PG_PRIMARY_URL", "")
REPLICA_URL = os.environ.get("KEEL_TEST_PG_REPLICA_URL", "")
PRIMARY_CLUSTER = os.environ.get("KEEL_TEST_PG_PRIMARY_CLUSTER", "")


@dataclass(frozen=True)
class ReplicatedDatabase:
    """One scratch database, as the primary and as the replica serve it."""

    primary_url: str
    replica_url: str
    cluster: str  # "<version>/<name>" of the primary


async def connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        database=parsed.database or "postgres",
        timeout=5.0,
    )


async def _wait_for_database(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await (await connect(url)).close()
            return
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@asynccontextmanager
async def replicated_database() -> AsyncIterator[ReplicatedDatabase]:
    """An empty database on the primary, once the replica has replayed its creation; dropped
    afterwards (the primary is started first if a test left it stopped)."""
    if not (PRIMARY_URL and REPLICA_URL and PRIMARY_CLUSTER):
        need_service(
            "KEEL_TEST_PG_PRIMARY_URL, KEEL_TEST_PG_REPLICA_URL and KEEL_TEST_PG_PRIMARY_CLUSTER"
        )
    await start_primary()
    name = f"keel_failover_{uuid.uuid4().hex[:12]}"
    admin = await connect(PRIMARY_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        replica_url = str(make_url(REPLICA_URL).set(database=name))
        await _wait_for_database(replica_url)
        yield ReplicatedDatabase(
            primary_url=str(make_url(PRIMARY_URL).set(database=name)),
            replica_url=replica_url,
            cluster=PRIMARY_CLUSTER,
        )
    finally:
        await start_primary()
        admin = await connect(PRIMARY_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def wait_replayed(database: ReplicatedDatabase, seconds: float = 15.0) -> None:
    """Wait until the replica has replayed all the WAL the primary has written so far."""
    primary = await connect(database.primary_url)
    try:
        written = await primary.fetchval("SELECT pg_current_wal_lsn()")
    finally:
        await primary.close()
    replica = await connect(database.replica_url)
    try:
        deadline = time.monotonic() + seconds
        query = "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn"
        while not await replica.fetchval(query, written):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the replica has not replayed up to {written}")
            await asyncio.sleep(0.05)
    finally:
        await replica.close()


async def _pg_ctlcluster(action: str, *options: str) -> None:
    version, name = PRIMARY_CLUSTER.split("/", 1)
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        version,
        name,
        action,
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster {action} {PRIMARY_CLUSTER}: {output.decode()}")


async def _is_running() -> bool:
    version, name = PRIMARY_CLUSTER.split("/", 1)
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster",
        version,
        name,
        "status",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait() == 0


async def stop_primary(mode: str) -> None:
    """Stop the primary: ``fast`` (clients disconnected, a clean shutdown) or ``immediate``
    (every process killed at once, crash recovery at the next start)."""
    await _pg_ctlcluster("stop", "-m", mode)


async def start_primary() -> None:
    """Start the primary if it is stopped, and wait until it accepts connections."""
    if not await _is_running():
        await _pg_ctlcluster("start")
    await _wait_for_database(PRIMARY_URL)


@asynccontextmanager
async def primary_stopped(mode: str) -> AsyncIterator[None]:
    """The primary is down inside the block and started again after it, whatever happens."""
    await stop_primary(mode)
    try:
        yield
    finally:
        await start_primary()
