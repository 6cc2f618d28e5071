"""SQLAlchemy's aiosqlite adapter, with one trip to aiosqlite's thread per statement.

aiosqlite runs each SQLite connection on a thread of its own. SQLAlchemy's stock adapter goes
there four times per statement (open a cursor, execute, fetch the rows, close the cursor), and
each trip is a hand-off between the event loop and that thread, which on a busy machine waits
to be scheduled. Here one function on the connection's thread executes the statement, fetches
its rows and closes its cursor. Server-side cursors (``stream()``) keep the stock behaviour.

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
            ran, rows = await run(_execute, connection._conn, operation, parameters)
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
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        connection = aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as the stock adapter: never hold up exit
        return OneTripConnection(self, cast(Any, await_(connection)))


def dbapi() -> OneTripDBAPI:
    """The DBAPI module to pass as ``create_async_engine(..., module=dbapi())``."""
    return OneTripDBAPI(aiosqlite, sqlite3)
