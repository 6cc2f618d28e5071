"""Idempotent writes: a retry with the same key gets the first outcome and applies nothing
again, including after a commit whose reply the client never heard."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db, idempotency
from keel.core.idempotency import Outcome
from keel.core.replicated import CommitOutcomeUnknown, Database, PrimaryUnavailable
from keel.core.types import UTCDateTime
from tests.conftest import scratch_database

NOW = datetime(2026, 3, 1, tzinfo=UTC)

metadata = MetaData()
events = Table(  # no unique key: a write applied twice shows as two rows
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),
)
outcomes = Table(
    "outcomes",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


async def record(conn: AsyncConnection, key: str, *, pause: float = 0.0) -> Outcome:
    async def write(conn: AsyncConnection) -> Outcome:
        await conn.execute(events.insert().values(key=key))
        await asyncio.sleep(pause)  # hold the transaction open for racing requests
        return Outcome(status=201, body={"key": key, "n": 1})

    return await idempotency.run_once(conn, outcomes, key, write, now=NOW)


async def applied(database: Database, key: str) -> int:
    async def count(conn: AsyncConnection) -> int:
        query = select(func.count()).select_from(events).where(events.c.key == key)
        return int(await conn.scalar(query) or 0)

    return await database.read(count)


async def open_database(url: str) -> Database:
    database = Database(db.create_engine(url))
    async with database.writing() as conn:
        await conn.run_sync(metadata.create_all)
    return database


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    yield database
    await database.dispose()


@pytest.fixture
async def postgres_url(tmp_path: Path) -> AsyncIterator[str]:
    async with scratch_database("postgresql", tmp_path) as url:
        yield url


def test_keys_are_fixed_length_and_scoped_to_their_caller() -> None:
    alice = idempotency.key_for("alice", "order-1")
    assert alice == idempotency.key_for("alice", "order-1")
    assert alice != idempotency.key_for("bob", "order-1")
    assert idempotency.key_for("alice", "x" * 1000).isalnum()
    assert {len(alice), len(idempotency.key_for("a", ""))} == {64}


async def test_a_retried_key_gets_the_first_outcome_and_applies_nothing_again(
    database: Database,
) -> None:
    async with database.writing() as conn:
        first = await record(conn, "k")
    async with database.writing() as conn:
        again = await record(conn, "k")

    assert first == Outcome(status=201, body={"key": "k", "n": 1})
    assert again == Outcome(status=201, body={"key": "k", "n": 1}, replayed=True)
    assert await applied(database, "k") == 1


async def test_a_write_that_raises_stores_nothing_and_its_retry_applies(
    database: Database,
) -> None:
    async def failing(conn: AsyncConnection) -> Outcome:
        await conn.execute(events.insert().values(key="k"))
        raise RuntimeError("the write failed after its first statement")

    with pytest.raises(RuntimeError):
        async with database.writing() as conn:
            await idempotency.run_once(conn, outcomes, "k", failing, now=NOW)
    async with database.writing() as conn:
        retried = await record(conn, "k")

    assert not retried.replayed
    assert await applied(database, "k") == 1


async def test_concurrent_requests_with_one_key_apply_it_once(database: Database) -> None:
    async def request() -> Outcome:
        async with database.writing() as conn:
            return await record(conn, "k", pause=0.05)

    results = await asyncio.gather(*(request() for _ in range(16)))

    assert sum(not result.replayed for result in results) == 1
    assert {(result.status, str(result.body)) for result in results} == {
        (201, str({"key": "k", "n": 1}))
    }
    assert await applied(database, "k") == 1


async def test_purge_forgets_outcomes_older_than_the_horizon(database: Database) -> None:
    async with database.writing() as conn:
        await idempotency.run_once(
            conn, outcomes, "old", lambda _: _outcome(), now=NOW - timedelta(days=2)
        )
        await idempotency.run_once(conn, outcomes, "new", lambda _: _outcome(), now=NOW)
    async with database.writing() as conn:
        purged = await idempotency.purge(conn, outcomes, older_than=NOW - timedelta(days=1))
        left = (await conn.execute(select(outcomes.c.key))).scalars().all()

    assert purged == 1
    assert left == ["new"]


async def _outcome() -> Outcome:
    return Outcome(status=200, body=None)


class CommitReplyDropper:
    """A loopback TCP proxy to PostgreSQL. Armed, it forwards a COMMIT and then cuts the
    connection instead of relaying the server's reply: the server has committed (it answers
    only once the commit is durable) and the client hears nothing, the ambiguous case."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.armed = False
        self.cut = 0

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *_exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection(self.host, self.port)
        committed = asyncio.Event()

        async def upstream() -> None:
            while data := await client_in.read(65536):
                if self.armed and b"COMMIT" in data:
                    committed.set()
                server_out.write(data)
                await server_out.drain()

        async def downstream() -> None:
            while data := await server_in.read(65536):
                if committed.is_set():
                    self.cut += 1
                    return  # the commit's reply, never delivered
                client_out.write(data)
                await client_out.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_out, server_out):
            writer.close()


async def test_a_commit_whose_reply_was_lost_is_applied_once_when_retried(
    postgres_url: str,
) -> None:
    url = make_url(postgres_url)
    proxy = CommitReplyDropper(url.host or "127.0.0.1", url.port or 5432)
    async with proxy as port:
        database = await open_database(str(url.set(host="127.0.0.1", port=port)))
        try:
            proxy.armed = True
            with pytest.raises(CommitOutcomeUnknown):
                async with database.writing() as conn:
                    await record(conn, "k")
            proxy.armed = False
            async with database.writing() as conn:
                retried = await record(conn, "k")
            count = await applied(database, "k")
        finally:
            await database.dispose()

    assert proxy.cut == 1
    assert retried == Outcome(status=201, body={"key": "k", "n": 1}, replayed=True)
    assert count == 1


async def test_a_write_cut_off_before_its_commit_is_applied_once_when_retried(
    postgres_url: str,
) -> None:
    database = await open_database(postgres_url)
    url = make_url(postgres_url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )

    async def write_then_lose_the_session() -> None:
        async with database.writing() as conn:
            await record(conn, "k")
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
            await conn.execute(text("SELECT 1"))

    try:
        with pytest.raises(PrimaryUnavailable) as cut:
            await write_then_lose_the_session()
        async with database.writing() as conn:
            retried = await record(conn, "k")
        count = await applied(database, "k")
    finally:
        await admin.close()
        await database.dispose()

    assert not isinstance(cut.value, CommitOutcomeUnknown)  # it never reached COMMIT
    assert not retried.replayed
    assert count == 1
