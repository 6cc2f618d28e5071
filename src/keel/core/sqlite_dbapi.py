"""SQLAlchemy's aiosqlite adapter, with one trip to aiosqlite's thread per statement.

aiosqlite runs each SQLite connection on a thread of its own. SQLAlchemy's stock adapter goes
there four times per statement (open a cursor, execute, fetch the rows, close the cursor), and
each trip is a hand-off between the event loop and that thread, which on a busy machine waits
to be scheduled. Here one function on the connection's thread executes the statement, fetches
its rows and closes its cursor. Server-side cursors (``stream()``) keep the stock behaviour.

With ``inline_reads`` (an engine of short indexed reads, such as coinpay's), a ``SELECT`` or a
deferred ``BEGIN`` runs on the event loop's own thread instead: a lookup by key costs tens of
microseconds there, where the trip to the thread and back costs several context switches and
GIL hand-offs (the payment GET went from ~300 to ~470 requests/s). A read never waits for a
lock in WAL mode; to bound what a large one could cost the loop, SQLite's progress handler
interrupts it after ``INLINE_STEP_BUDGET`` virtual-machine steps (about a millisecond) and the
statement runs again on the thread. Everything else (writes, COMMIT) keeps the thread.

``keel.core.db.create_engine`` passes :func:`dbapi` as the engine's ``module``. The classes
lean on internals of aiosqlite 0.22 (``Connection._execute``, ``._conn``) and SQLAlchemy 2.1's
adapter; ``tests/core/test_db.py`` runs the engine through reads, writes, RETURNING, rowcount,
rollback and errors, so an upgrade that breaks them fails there.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT, await_


class _Ran:
    """What a statement left on its (closed) sqlite3 cursor."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, description: Any = None, rowcount: int = -1, lastrowid: Any = None):
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    def close(self) -> None:
        """Nothing to release: the sqlite3 cursor was closed on the connection's thread."""


def _execute(conn: sqlite3.Connection, operation: str, parameters: Any) -> tuple[_Ran, Any]:
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Ran(cursor.description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


# SQLite VM steps a read may take on the event loop before it is moved to the thread; the
# handler runs every _STEP_CHECK steps.
INLINE_STEP_BUDGET = 20_000
_STEP_CHECK = 1_000


def _inline_read(operation: Any) -> bool:
    head = str(operation).lstrip()[:16].upper()
    # A deferred BEGIN only: BEGIN IMMEDIATE may wait for another process's write lock.
    return head.startswith("SELECT") or head.rstrip() == "BEGIN"


def _execute_bounded(
    conn: sqlite3.Connection, operation: str, parameters: Any
) -> tuple[_Ran, Any] | None:
    """:func:`_execute` on the caller's thread, or None when the statement ran past the step
    budget (it was interrupted, so nothing of it stays)."""
    steps = 0

    def over_budget() -> int:
        nonlocal steps
        steps += _STEP_CHECK
        return int(steps > INLINE_STEP_BUDGET)

    conn.set_progress_handler(over_budget, _STEP_CHECK)
    try:
        return _execute(conn, operation, parameters)
    except sqlite3.OperationalError:
        if steps > INLINE_STEP_BUDGET:
            return None
        raise
    finally:
        conn.set_progress_handler(None, 0)


def read_bounded(conn: sqlite3.Connection, operation: str, parameters: Any) -> list[Any] | None:
    """The rows of a read run on the caller's thread within the step budget, or None when it
    ran past it (``keel.core.lookups`` then runs it through the engine)."""
    done = _execute_bounded(conn, operation, parameters)
    return None if done is None else (done[1] or [])


def _executemany(conn: sqlite3.Connection, operation: str, seq: Sequence[Any]) -> _Ran:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq)
        return _Ran(cursor.description, cursor.rowcount, cursor.lastrowid)
    finally:
        cursor.close()


def _on_thread(
    connection: object,
) -> tuple[aiosqlite.Connection, Callable[..., Awaitable[Any]]]:
    """The aiosqlite connection and its (untyped) way to run a function on its thread."""
    conn = cast(aiosqlite.Connection, connection)
    return conn, cast(Callable[..., Awaitable[Any]], conn._execute)


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()
    _awaitable_cursor_close = False  # close() has nothing to await

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # The stock __init__ opens an aiosqlite cursor (a trip); statements bring their own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = _Ran()  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        connection, run = _on_thread(self._connection)
        async with self._adapt_connection._execute_mutex:
            done: Any = None
            if getattr(self._adapt_connection, "inline_reads", False) and _inline_read(operation):
                done = _execute_bounded(connection._conn, operation, parameters)
            if done is None:
                done = await run(_execute, connection._conn, operation, parameters)
            ran, rows = done
        self._cursor = ran
        if rows is not None:
            self._rows = collections.deque(rows)
        return None

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        connection, run = _on_thread(self._connection)
        async with self._adapt_connection._execute_mutex:
            self._cursor = await run(_executemany, connection._conn, operation, seq_of_parameters)
        return None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("inline_reads",)
    _cursor_cls = OneTripCursor
    inline_reads: bool

    def rollback(self) -> None:
        if self.inline_reads and self._connection._connection:
            # Ending a transaction never waits for a lock: no reason to leave the loop.
            self._connection._conn.rollback()
            return
        super().rollback()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def __init__(self, *, inline_reads: bool) -> None:
        super().__init__(aiosqlite, sqlite3)
        self.inline_reads = inline_reads

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        if self.inline_reads:
            kw["check_same_thread"] = False  # reads run on the loop, the rest on its thread
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as the stock adapter: never hold up exit
        adapted = OneTripConnection(self, cast(Any, await_(connection)))
        adapted.inline_reads = self.inline_reads
        return adapted


def dbapi(*, inline_reads: bool = False) -> OneTripDBAPI:
    """The DBAPI module to pass as ``create_async_engine(..., module=dbapi())``; with
    ``inline_reads``, reads run on the event loop (module docstring)."""
    return OneTripDBAPI(inline_reads=inline_reads)
