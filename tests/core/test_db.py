"""Sessions: reads never hold SQLite's write lock; writers in one process queue on the
engine's asyncio lock; writers in another process still meet in SQLite's busy handler."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.core import db

metadata = MetaData()
counters = Table(
    "counters",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("value", Integer, nullable=False),
)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(counters.insert().values(name="n", value=0))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return db.session_factory(engine)


def sqlite_path(engine: AsyncEngine) -> str:
    if not db.is_sqlite(engine):
        pytest.skip("SQLite locking")
    return str(engine.url.database)


def begin_statements(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("BEGIN"):
            seen.append(statement)

    return seen


async def bump(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        # FOR UPDATE is PostgreSQL's way; on SQLite the write lock alone prevents lost updates.
        query = select(counters.c.value).where(counters.c.name == "n").with_for_update()
        current = (await session.execute(query)).scalar_one()
        await asyncio.sleep(0)  # let every other task run between the read and the write
        await session.execute(update(counters).values(value=current + 1))


async def read(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        query = select(counters.c.value).where(counters.c.name == "n")
        return int((await session.execute(query)).scalar_one())


async def test_reads_begin_deferred_and_writes_begin_immediate(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sqlite_path(engine)
    seen = begin_statements(engine)
    await read(sessions)
    await bump(sessions)
    assert seen == ["BEGIN", "BEGIN IMMEDIATE"]


async def test_an_open_read_does_not_block_another_writer(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = sqlite3.connect(sqlite_path(engine), timeout=0, isolation_level=None)
    try:
        async with sessions() as session:
            assert (await session.execute(select(counters.c.value))).scalar_one() == 0
            other.execute("BEGIN IMMEDIATE")  # would be "database is locked" before
            other.execute("UPDATE counters SET value = 5")
            other.execute("COMMIT")
            # The read keeps its snapshot until its transaction ends.
            assert (await session.execute(select(counters.c.value))).scalar_one() == 0
        assert await read(sessions) == 5
    finally:
        other.close()


async def test_a_write_transaction_holds_sqlites_lock_from_its_start(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = sqlite3.connect(sqlite_path(engine), timeout=0, isolation_level=None)
    try:
        async with sessions() as session, session.begin():
            # Nothing executed yet: the lock was taken on entry, so no later writer can
            # slip in between this transaction's reads and its writes.
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            await session.execute(update(counters).values(value=1))
    finally:
        other.close()


async def test_writers_in_one_process_queue_on_the_engine_lock(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sqlite_path(engine)
    lock = db.write_lock(engine)
    assert lock is not None
    seen = begin_statements(engine)
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with sessions() as session, session.begin():
            inside.set()
            await release.wait()
            await session.execute(update(counters).values(value=1))

    holder = asyncio.create_task(first())
    await inside.wait()
    waiter = asyncio.create_task(bump(sessions))
    await asyncio.sleep(0.2)
    # The second writer waits in asyncio, not in SQLite: it has not even begun.
    assert not waiter.done()
    assert seen == ["BEGIN IMMEDIATE"]
    assert lock.locked()
    release.set()
    await asyncio.gather(holder, waiter)
    assert seen == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]
    assert not lock.locked()
    assert await read(sessions) == 2


async def test_concurrent_read_modify_writes_lose_no_update(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(bump(sessions) for _ in range(40)), *(read(sessions) for _ in range(40))
    )
    assert await read(sessions) == 40
    assert all(r is None or 0 <= r <= 40 for r in results)
    assert time.perf_counter() - started < 10


async def test_a_read_inside_a_write_of_the_same_task_does_not_wait(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session, session.begin():
        await session.execute(update(counters).values(value=7))
        # Sees the last commit, not the open transaction; answers at once on both engines.
        assert await asyncio.wait_for(read(sessions), timeout=5) == 0
    assert await read(sessions) == 7


async def test_a_second_write_from_the_same_task_fails_fast(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    sqlite_path(engine)
    async with sessions() as session, session.begin():
        await session.execute(update(counters).values(value=1))
        with pytest.raises(RuntimeError, match="wait for itself"):
            async with sessions() as inner, inner.begin():
                pass
    assert await read(sessions) == 1
    assert db.write_lock(engine).locked() is False  # type: ignore[union-attr]


async def test_a_failed_write_releases_the_lock(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async def fails_midway() -> None:
        async with sessions() as session, session.begin():
            await session.execute(update(counters).values(value=99))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fails_midway()
    assert await read(sessions) == 0
    await asyncio.wait_for(bump(sessions), timeout=5)
    assert await read(sessions) == 1


async def test_a_writer_in_another_process_is_waited_for(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sqlite3, sys, time\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "c.execute('UPDATE counters SET value = 100')\n"
        "print('holding', flush=True)\n"
        "time.sleep(0.5)\n"
        "c.execute('COMMIT')\n",
        sqlite_path(engine),
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    try:
        assert await asyncio.wait_for(holder.stdout.readline(), timeout=20) == b"holding\n"
        started = time.perf_counter()
        await bump(sessions)  # waits in SQLite's busy handler for the other process
        assert time.perf_counter() - started >= 0.2
    finally:
        assert await asyncio.wait_for(holder.wait(), timeout=20) == 0
    assert await read(sessions) == 101


async def test_postgresql_writers_are_not_serialised(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    if not db.is_postgres(engine):
        pytest.skip("PostgreSQL concurrency")
    assert db.write_lock(engine) is None
    inside, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with sessions() as session, session.begin():
            await session.execute(text("SELECT 1"))
            inside.set()
            await release.wait()

    holder = asyncio.create_task(first())
    await inside.wait()
    # A second write transaction runs to the end while the first is still open.
    async with sessions() as session, session.begin():
        await session.execute(counters.insert().values(name="m", value=1))
    release.set()
    await holder


async def test_core_connections_read_deferred_and_write_behind_the_lock(
    engine: AsyncEngine,
) -> None:
    sqlite_path(engine)
    seen = begin_statements(engine)
    async with db.reading(engine) as conn:
        await conn.execute(select(counters.c.value))
    async with db.writing(engine) as conn:
        await conn.execute(update(counters).values(value=1))
    assert seen == ["BEGIN", "BEGIN IMMEDIATE"]


async def test_core_writers_queue_while_a_core_read_goes_on(engine: AsyncEngine) -> None:
    order: list[str] = []

    async def write(name: str) -> None:
        async with db.writing(engine) as conn:
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            await conn.execute(update(counters).values(value=counters.c.value + 1))
            order.append(f"{name} out")

    async def read_during() -> int:
        await asyncio.sleep(0.01)
        async with db.reading(engine) as conn:
            order.append("read")
            return int((await conn.execute(select(counters.c.value))).scalar_one())

    *_, value = await asyncio.gather(write("a"), write("b"), read_during())
    assert value in (0, 1)
    if db.is_sqlite(engine):  # the second writer waits for the first; the reader waits for none
        assert order == ["a in", "read", "a out", "b in", "b out"]
    async with db.reading(engine) as conn:
        assert (await conn.execute(select(counters.c.value))).scalar_one() == 2
