"""A product's database as its code sees it: reads and writes, possibly on two servers.

Domain code asks for :meth:`Database.reading` or :meth:`Database.writing` and never picks an
engine itself. With only a primary both go there (the embedded default). With a streaming
replica configured, reads may be answered by the replica while the primary is down; writes
only ever go to the primary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.core import db


class Database:
    """The primary engine and, optionally, a read-only replica of it."""

    def __init__(self, primary: AsyncEngine, replica: AsyncEngine | None = None) -> None:
        self.primary = primary
        self.replica = replica

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads (see :func:`keel.core.db.reading`)."""
        async with db.reading(self.primary) as connection:
            yield connection

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction on the primary: commits when the block ends."""
        async with db.writing(self.primary) as connection:
            yield connection

    async def dispose(self) -> None:
        await self.primary.dispose()
        if self.replica is not None:
            await self.replica.dispose()
