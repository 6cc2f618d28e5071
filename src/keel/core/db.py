"""Async engines and sessions: SQLite (WAL) as the embedded default, PostgreSQL at scale.

Sessions from :func:`session_factory` tell reads from writes by how they are used:

* **Read**: a session used without ``begin()``. On SQLite its transaction is deferred: a WAL
  snapshot that neither waits for nor blocks a writer.
* **Write**: ``async with session.begin():``. On SQLite it first takes the engine's
  in-process write lock (an :class:`asyncio.Lock`), then opens ``BEGIN IMMEDIATE``. SQLite
  allows one writer; queueing in asyncio hands the lock on the moment it is free, where
  SQLite's busy handler polls with sleeps that grow to 100 ms and made the tail latency.
  Taking SQLite's lock up front also keeps a read-then-write transaction from failing midway
  ("database is locked") when another writer got in first. Writers in *other* processes
  still meet in SQLite's busy handler (``busy_timeout``).

So writes belong inside ``session.begin()``; a write in a read session would run deferred and
could fail under contention. One task must not open a second write transaction on an engine
while its first is open: it would wait for itself, so that raises at once. PostgreSQL gets
neither the lock nor the deferral: it has row locks and MVCC.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

from sqlalchemy import Engine, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from keel.core import sqlite_dbapi

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_SECONDS = 5.0
# Execution option the "begin" listener reads: how a SQLite transaction starts.
_BEGIN: Final = "keel_sqlite_begin"
_DEFERRED, _IMMEDIATE = "DEFERRED", "IMMEDIATE"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    echo: bool = False,
    inline_reads: bool = False,
    statement_timeout_ms: int = 0,
    connect_timeout_seconds: float = PG_CONNECT_TIMEOUT_SECONDS,
) -> AsyncEngine:
    """An async engine for ``url``.

    SQLite gets WAL, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every
    transaction except the read sessions of :func:`session_factory` (``BEGIN`` there).
    ``inline_reads`` runs SQLite reads on the event loop (``keel.core.sqlite_dbapi``): for an
    engine whose reads are short lookups by index, not for long searches.

    PostgreSQL gets ``statement_timeout_ms`` as the sessions' ``statement_timeout`` (0: none), so
    the server itself cancels a statement that runs longer (SQLSTATE 57014) instead of the client
    walking away from one that may still commit; a connection attempt gives up after
    ``connect_timeout_seconds``, and a pooled connection is pinged before use, so a dead server
    fails a request fast instead of hanging it.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            poolclass=NullPool if database in ("", ":memory:") else None,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            # _tune_sqlite rolls back only a connection still in a transaction.
            pool_reset_on_return=None,
            # One trip to aiosqlite's thread per statement, or none for an inline read.
            module=sqlite_dbapi.dbapi(inline_reads=inline_reads),
        )
        _tune_sqlite(engine)
        return engine
    kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size, "echo": echo}
    connect_args: dict[str, Any] = {"timeout": connect_timeout_seconds}
    if statement_timeout_ms:
        # Sent in the startup packet: set for the session's life without a round trip.
        connect_args["server_settings"] = {"statement_timeout": str(statement_timeout_ms)}
    return create_async_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _tune_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE unless marked deferred: an unmarked connection (engine.begin(),
        # migrations) may write, and must not fail midway.
        deferred = connection.get_execution_options().get(_BEGIN) == _DEFERRED
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    @event.listens_for(sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # A session's close has already rolled back; the pool's own reset would be a second
        # trip to aiosqlite's thread on every checkin. Roll back only what is still open.
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


class WriteLock:
    """One write transaction at a time on a SQLite engine, in this process, first come first
    served. Re-entry from the task holding it raises instead of waiting forever."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None

    def locked(self) -> bool:
        return self._lock.locked()

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if task is not None and task is self._owner:
            raise RuntimeError(
                "a second write transaction on this SQLite engine from the task holding the "
                "first would wait for itself: pass the open session down instead"
            )
        await self._lock.acquire()
        self._owner = task

    def release(self) -> None:
        self._owner = None
        self._lock.release()


_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, WriteLock] = weakref.WeakKeyDictionary()


def write_lock(engine: AsyncEngine) -> WriteLock | None:
    """The in-process write lock of a SQLite engine; None for other databases."""
    if not is_sqlite(engine):
        return None
    # An engine's connections belong to one event loop, and so does its lock.
    return _WRITE_LOCKS.setdefault(engine.sync_engine, WriteLock())


class KeelSession(AsyncSession):
    """An :class:`AsyncSession` whose ``begin()`` is a write transaction (module docstring)."""

    def __init__(self, *args: Any, write_lock: WriteLock | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = write_lock

    def begin(self) -> AsyncSessionTransaction:
        return _WriteTransaction(self, self._write_lock)


class _WriteTransaction(AsyncSessionTransaction):
    """``session.begin()`` on SQLite: holds the engine's write lock from before ``BEGIN
    IMMEDIATE`` until after the commit or rollback (only as ``async with``, which
    guarantees the release)."""

    __slots__ = ("_lock",)

    def __init__(self, session: AsyncSession, lock: WriteLock | None) -> None:
        super().__init__(session)
        self._lock = lock

    async def start(self, is_ctxmanager: bool = False) -> AsyncSessionTransaction:
        started = await super().start(is_ctxmanager)
        if self._lock is not None:
            # Connect now: SQLite's write lock is taken at once, while this task holds ours.
            await self.session.connection(execution_options={_BEGIN: _IMMEDIATE})
        return started

    async def __aenter__(self) -> AsyncSessionTransaction:
        if self._lock is None:
            return await super().__aenter__()
        await self._lock.acquire()
        try:
            return await super().__aenter__()
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(
        self,
        type_: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        finally:
            if self._lock is not None:
                self._lock.release()


def insert(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT in ``conn``'s dialect, so ``on_conflict_do_nothing`` / ``on_conflict_do_update``
    (which SQLAlchemy keeps per dialect) read the same on SQLite and PostgreSQL."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only, for code that uses Core rather than sessions: on SQLite its
    transaction is deferred (a WAL snapshot that neither waits for nor blocks a writer)."""
    async with engine.connect() as conn:
        if is_sqlite(engine):
            await conn.execution_options(**{_BEGIN: _DEFERRED})
        yield conn


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()`` as a write transaction: on SQLite behind the engine's in-process write
    lock, so writers in this process queue in asyncio instead of SQLite's busy handler."""
    lock = write_lock(engine)
    if lock is not None:
        await lock.acquire()
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        if lock is not None:
            lock.release()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions on ``engine``: reads as they are used, writes in ``session.begin()``."""
    lock = write_lock(engine)
    # Reads connect through a variant of the engine (same pool) whose BEGIN is deferred;
    # a write transaction overrides that on its own connection.
    bind = engine.execution_options(**{_BEGIN: _DEFERRED}) if lock is not None else engine
    factory = async_sessionmaker(bind, class_=KeelSession, expire_on_commit=False, write_lock=lock)
    # Callers need only the AsyncSession interface; the subclass is an implementation detail.
    return cast("async_sessionmaker[AsyncSession]", factory)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One write unit of work: commits when the block ends, rolls back on any exception."""
    async with sessions() as session, session.begin():
        yield session
