"""Database failover on real PostgreSQL servers: reads go to the primary while it is up and to
the streaming replica while it is down; writes only ever go to the primary and are refused with
a 503 and Retry-After while it is down; statement_timeout is enforced by the server.

The primary and its replica come from .ci/run (tests/pg_cluster.py); tests that need only a
server, or a dead one, use the main test server and a closed loopback port."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.core import db, idempotency
from keel.core.app import PROBLEM_JSON, install_problem_handlers
from keel.core.replicated import Database, PrimaryUnavailable, StatementTimeout
from keel.core.resilience import CircuitState
from keel.core.types import UTCDateTime
from tests import pg_cluster
from tests.conftest import scratch_database

metadata = MetaData()
events = Table(  # no unique key: a write applied twice shows as two rows
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
)
outcomes = Table(  # the shape keel.core.idempotency works with
    "outcomes",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


CODE = "primary_unavailable"


def metric(name: str, database: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"name": database, **labels}) or 0.0


def closed_port() -> int:
    """A loopback port nothing listens on: a connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def served_by_replica(conn: AsyncConnection) -> bool:
    return bool(await conn.scalar(text("SELECT pg_is_in_recovery()")))


async def count_events(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.count()).select_from(events)) or 0)


async def record(conn: AsyncConnection, key: str) -> idempotency.Outcome:
    """One event per key, applied once however often it is retried."""

    async def write(conn: AsyncConnection) -> idempotency.Outcome:
        await conn.execute(events.insert().values(key=key))
        return idempotency.Outcome(status=201, body={"key": key})

    return await idempotency.run_once(conn, outcomes, key, write, now=datetime.now(UTC))


@asynccontextmanager
async def database_on(
    primary_url: str,
    replica_url: str | None = None,
    *,
    probe_seconds: float = 2.0,
    statement_timeout_ms: int = 0,
) -> AsyncIterator[Database]:
    def engine(url: str) -> AsyncEngine:
        return db.create_engine(
            url, statement_timeout_ms=statement_timeout_ms, connect_timeout_seconds=2.0
        )

    database = Database(
        engine(primary_url),
        engine(replica_url) if replica_url else None,
        name=f"test-{uuid.uuid4().hex[:8]}",
        probe_seconds=probe_seconds,
    )
    try:
        yield database
    finally:
        await database.dispose()


async def until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {seconds} s")
        await asyncio.sleep(0.05)


async def replica_count(url: str, expected: int, seconds: float = 15.0) -> int:
    """The events the replica holds, once it holds ``expected`` (or the deadline passed);
    waits for the table to be replayed there too."""
    engine = db.create_engine(url)
    try:
        deadline = time.monotonic() + seconds
        while True:
            try:
                async with engine.connect() as conn:
                    count = await count_events(conn)
            except DBAPIError:
                if time.monotonic() > deadline:
                    raise
                count = -1
            if count == expected or time.monotonic() > deadline:
                return count
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database("postgresql", tmp_path) as url:
        engine = db.create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()
        yield url


@pytest.fixture
async def replicated() -> AsyncIterator[pg_cluster.ReplicatedDatabase]:
    async with pg_cluster.replicated_database() as database:
        engine = db.create_engine(database.primary_url)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()
        assert await replica_count(database.replica_url, 0) == 0  # the schema has arrived
        yield database


def problem_app(database: Database) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/events")
    async def read() -> dict[str, int]:
        return {"count": await database.read(count_events)}

    @app.post("/events/{key}")
    async def write(key: str) -> dict[str, str]:
        async with database.writing() as conn:
            await record(conn, key)
        return {"key": key}

    return app


async def test_writes_to_an_unreachable_primary_get_503_problems_with_retry_after(
    postgres_url: str,
) -> None:
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/postgres"
    # The main test server stands in for the replica: reads must be answered from it.
    async with database_on(dead, postgres_url, probe_seconds=30) as database:
        transport = httpx.ASGITransport(app=problem_app(database))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            read = await client.get("/events")
            writes = [await client.post(f"/events/k{n}") for n in range(4)]

    assert read.status_code == 200
    assert read.json() == {"count": 0}
    for reply in writes:
        assert reply.status_code == 503
        assert reply.headers["content-type"] == PROBLEM_JSON
        assert reply.json()["code"] == "primary_unavailable"
    # Failures seen while the breaker was closed say "soon"; once it is open (3 failures, the
    # read's included), the time until its next probe.
    assert [reply.headers["retry-after"] for reply in writes] == ["1", "1", "30", "30"]
    assert database.breaker.state is CircuitState.OPEN


async def test_a_read_block_is_read_only_on_the_primary_too(postgres_url: str) -> None:
    async with database_on(postgres_url) as database:
        with pytest.raises(DBAPIError) as refused:
            async with database.reading() as conn:
                await conn.execute(events.insert().values(key="written-in-a-read"))
        assert getattr(refused.value.orig, "sqlstate", None) == "25006"
        # The primary answered: a refused statement is not an outage.
        assert database.breaker.state is CircuitState.CLOSED


async def test_the_server_cancels_a_statement_past_its_timeout(postgres_url: str) -> None:
    marker = uuid.uuid4().hex
    async with database_on(postgres_url, statement_timeout_ms=200) as database:
        started = time.monotonic()
        with pytest.raises(StatementTimeout):
            async with database.reading() as conn:
                await conn.execute(text(f"SELECT pg_sleep(30) /* {marker} */"))
        elapsed = time.monotonic() - started
        async with database.reading() as conn:
            setting = await conn.scalar(text("SHOW statement_timeout"))
            still_running = await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE :marker AND pid <> pg_backend_pid()"
                ),
                {"marker": f"%{marker}%"},
            )
    assert elapsed < 5
    assert setting == "200ms"
    assert still_running == 0


async def test_a_write_cancelled_by_the_statement_timeout_leaves_nothing(postgres_url: str) -> None:
    async def insert_then_sleep(database: Database) -> None:
        async with database.writing() as conn:
            await conn.execute(events.insert().values(key="slow"))
            await conn.execute(text("SELECT pg_sleep(30)"))

    async with database_on(postgres_url, statement_timeout_ms=200) as database:
        with pytest.raises(StatementTimeout):
            await insert_then_sleep(database)
        assert await database.read(count_events) == 0


async def test_a_write_on_the_primary_reaches_the_replica(
    replicated: pg_cluster.ReplicatedDatabase,
) -> None:
    async with database_on(replicated.primary_url, replicated.replica_url) as database:
        async with database.writing() as conn:
            await record(conn, "replicated")
        async with database.reading() as conn:
            assert not await served_by_replica(conn)  # the primary is up: reads stay there
            assert await count_events(conn) == 1
    assert await replica_count(replicated.replica_url, 1) == 1


async def test_a_standby_at_the_primary_address_is_never_written(
    replicated: pg_cluster.ReplicatedDatabase,
) -> None:
    # A misconfiguration (or a replica rebuilt where the primary was): the standby answers,
    # but pg_is_in_recovery() says it is no primary, so the write never starts.
    async with database_on(replicated.replica_url) as database:
        with pytest.raises(PrimaryUnavailable, match="standby"):
            async with database.writing() as conn:
                await record(conn, "never")


async def test_while_the_primary_is_down_reads_come_from_the_replica_and_writes_never_do(
    replicated: pg_cluster.ReplicatedDatabase,
) -> None:
    async with database_on(
        replicated.primary_url, replicated.replica_url, probe_seconds=0.3
    ) as database:
        async with database.writing() as conn:
            await record(conn, "before")
        assert await replica_count(replicated.replica_url, 1) == 1
        assert database.replica is not None
        replica_checkouts: list[object] = []
        event.listen(
            database.replica.sync_engine, "checkout", lambda *args: replica_checkouts.append(args)
        )

        async with pg_cluster.primary_stopped("fast"):
            async with database.reading() as conn:
                assert await served_by_replica(conn)
                assert await count_events(conn) == 1
            replica_checkouts.clear()
            refusals = []
            for _ in range(6):
                with pytest.raises(PrimaryUnavailable) as refused:
                    async with database.writing() as conn:
                        await record(conn, "during")
                refusals.append(refused.value)
            # Not one connection to the replica for all those writes.
            assert replica_checkouts == []
            assert all(int(str(r.extra["retry_after"])) >= 1 for r in refusals)
            assert metric("keel_database_reads_total", database.name, server="replica") == 1
            refused = metric("keel_database_writes_refused_total", database.name, code=CODE)
            assert refused == 6

        # Back: the next probe finds the primary, writes resume and reads return to it.
        async with asyncio.timeout(15):
            while True:
                try:
                    async with database.writing() as conn:
                        await record(conn, "after")
                    break
                except PrimaryUnavailable:
                    await asyncio.sleep(0.1)
        async with database.reading() as conn:
            assert not await served_by_replica(conn)
            assert await count_events(conn) == 2


@dataclass
class Load:
    """Readers and writers against one Database, recording what each call got and when."""

    database: Database
    phase: str = "up"  # up, down (the primary is stopped), starting, back (it answers again)
    done: bool = False
    reads: list[tuple[str, bool]] = field(default_factory=list)  # (phase, from the replica)
    read_failures: list[BaseException] = field(default_factory=list)
    acknowledged: list[tuple[str, str]] = field(default_factory=list)  # (phase, key)
    refusals: list[tuple[str, PrimaryUnavailable]] = field(default_factory=list)
    unexpected: list[BaseException] = field(default_factory=list)

    def count(self, items: Sequence[tuple[str, object]], phase: str) -> int:
        return sum(1 for item_phase, _ in items if item_phase == phase)

    async def reader(self) -> None:
        async def look(conn: AsyncConnection) -> bool:
            await count_events(conn)
            return await served_by_replica(conn)

        while not self.done:
            try:
                self.reads.append((self.phase, await self.database.read(look)))
            except Exception as exc:
                self.read_failures.append(exc)
            await asyncio.sleep(0.005)

    async def writer(self, number: int) -> None:
        sequence = 0
        while not self.done:
            key = f"writer{number}-{sequence}"
            sequence += 1
            while True:  # a client retries with the same key until it hears an answer
                try:
                    async with self.database.writing() as conn:
                        await record(conn, key)
                except PrimaryUnavailable as exc:
                    self.refusals.append((self.phase, exc))
                except Exception as exc:
                    self.unexpected.append(exc)
                else:
                    self.acknowledged.append((self.phase, key))
                    break
                await asyncio.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_stopping_the_primary_under_load_loses_no_read_and_applies_each_write_once(
    replicated: pg_cluster.ReplicatedDatabase, mode: str
) -> None:
    """6 readers and 6 writers; the primary is stopped (``immediate``: killed, as in a crash)
    mid-load and started again. Reads never fail; writes are refused while it is down and, as
    their clients retry with their keys, every one lands exactly once."""
    async with database_on(
        replicated.primary_url, replicated.replica_url, probe_seconds=0.3
    ) as database:
        load = Load(database)
        tasks = [asyncio.create_task(load.reader()) for _ in range(6)]
        tasks += [asyncio.create_task(load.writer(n)) for n in range(6)]
        try:
            await until(lambda: len(load.acknowledged) >= 50, 20)
            async with pg_cluster.primary_stopped(mode):
                load.phase = "down"
                await asyncio.sleep(1.0)  # several probes find it still down
                await until(
                    lambda: (
                        load.count(load.reads, "down") >= 100
                        and load.count(load.refusals, "down") >= 20
                    ),
                    20,
                )
                load.phase = "starting"  # the primary is being started again
            load.phase = "back"
            await until(
                lambda: (
                    load.count(load.acknowledged, "back") >= 50
                    and any(phase == "back" and not replica for phase, replica in load.reads)
                ),
                30,
            )
        finally:
            load.done = True
            async with asyncio.timeout(30):
                await asyncio.gather(*tasks)

        async with database.reading() as conn:
            assert not await served_by_replica(conn)
            rows = (await conn.execute(select(events.c.key, func.count()).group_by("key"))).all()

    assert load.read_failures == []
    assert load.unexpected == []  # every failed write was a 503, none unclassified
    assert all(replica for phase, replica in load.reads if phase == "down")
    assert load.count(load.acknowledged, "down") == 0  # nothing else takes writes
    keys = [key for _, key in load.acknowledged]
    stored = {key: count for key, count in rows}
    assert len(keys) == len(set(keys))
    assert set(stored) == set(keys)  # none lost
    assert set(stored.values()) == {1}  # none applied twice
    # Replication resumes: the replica catches up with every write.
    assert await replica_count(replicated.replica_url, len(keys)) == len(keys)
