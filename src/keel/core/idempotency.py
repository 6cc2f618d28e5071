"""Writes applied exactly once under client retries, through a key the client sends.

A write whose outcome the client never heard (a 503 for a connection lost during COMMIT, a
timeout, a dropped reply) is retried with the same key. The write and its outcome are stored in
one transaction under that key, so the retry finds the first outcome if it committed and applies
the write if it did not; it never applies it twice.

The table is the product's own, of this shape (``roadmaps_idempotency`` for example)::

    key         String(64) primary key   key_for(scope, client key)
    status      SmallInteger             the outcome's HTTP status
    body        JSON                     the outcome's body
    created_at  UTCDateTime              for purge()

Only successful writes are stored: a write that raises rolls the transaction back, claim
included, and a retry runs it afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db

__all__ = ["Outcome", "key_for", "purge", "run_once"]


@dataclass(frozen=True)
class Outcome:
    """What a write answered: an HTTP status and a JSON body. ``replayed`` when it is the stored
    answer of an earlier request with the same key."""

    status: int
    body: Any
    replayed: bool = False


def key_for(scope: str, client_key: str) -> str:
    """The stored key: SHA-256 (hex, 64 characters) of ``scope`` (who is asking, e.g. a user
    id) and the client's key, so two callers' keys never meet and any key fits the column."""
    return hashlib.sha256(f"{scope}\x00{client_key}".encode()).hexdigest()


async def run_once(
    conn: AsyncConnection,
    table: Table,
    key: str,
    write: Callable[[AsyncConnection], Awaitable[Outcome]],
    *,
    now: datetime,
) -> Outcome:
    """Apply ``write`` once per ``key``, in ``conn``'s (write) transaction.

    Claims the key first: a request with a key already stored gets the stored outcome
    (``replayed``) without running ``write``; one racing a transaction that holds the same key
    waits for it (the primary key's lock) and then gets its outcome, or claims the key if that
    transaction rolled back. Otherwise runs ``write`` and stores its outcome, both committed
    with the caller's transaction or neither.
    """
    claim = (
        db.insert(conn, table)
        .values(key=key, status=0, body={}, created_at=now)
        .on_conflict_do_nothing(index_elements=[table.c.key])
        .returning(table.c.key)
    )
    if (await conn.execute(claim)).first() is None:
        row = (
            await conn.execute(select(table.c.status, table.c.body).where(table.c.key == key))
        ).one()
        return Outcome(status=row.status, body=row.body, replayed=True)
    outcome = await write(conn)
    await conn.execute(
        update(table).where(table.c.key == key).values(status=outcome.status, body=outcome.body)
    )
    return outcome


async def purge(conn: AsyncConnection, table: Table, *, older_than: datetime) -> int:
    """Forget outcomes stored before ``older_than`` (a retry after that applies again); returns
    how many were deleted."""
    result = await conn.execute(delete(table).where(table.c.created_at < older_than))
    return result.rowcount
