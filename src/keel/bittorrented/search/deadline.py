"""A connection whose statements stop at a deadline, the same way on both engines.

PostgreSQL enforces it itself (``SET LOCAL statement_timeout``, SQLSTATE 57014). SQLite has no
statement timeout, so a timer calls ``sqlite3_interrupt`` (thread-safe, and aiosqlite runs the
statement in its own thread); the statement then fails and the connection goes back to the pool
idle. Cancelling the await instead would close the connection under a running statement.
Either way the caller sees :class:`~keel.bittorrented.errors.SearchTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented.errors import SearchTimeout
from keel.core import db

QUERY_CANCELED = "57014"


@asynccontextmanager
async def connection(engine: AsyncEngine, seconds: float) -> AsyncIterator[AsyncConnection]:
    """A connection (in a transaction on PostgreSQL) for statements that must end in time."""
    message = f"search took longer than {seconds:g} s"
    if db.is_postgres(engine):
        async with engine.connect() as conn:
            try:
                async with conn.begin():
                    await conn.execute(text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}"))
                    yield conn
            except DBAPIError as exc:
                if getattr(exc.orig, "sqlstate", None) == QUERY_CANCELED:
                    raise SearchTimeout(message) from exc
                raise
        return
    async with db.reading(engine) as conn:
        raw = await conn.get_raw_connection()
        sqlite = raw.driver_connection
        assert sqlite is not None
        fired: list[asyncio.Future[Any]] = []

        def interrupt() -> None:
            fired.append(asyncio.ensure_future(sqlite.interrupt()))

        timer = asyncio.get_running_loop().call_later(seconds, interrupt)
        try:
            yield conn
        except DBAPIError as exc:
            if fired:
                raise SearchTimeout(message) from exc
            raise
        finally:
            timer.cancel()
