"""The crawler's Bloom filters kept in bitmagnet's ``bloom_filters`` table, one row per key."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented import models
from keel.bittorrented.dht.bloom import ScalableBloomFilter
from keel.core import db
from keel.core.clock import Clock, SystemClock

SEEN = "seen"  # every hash the crawler triaged; only the crawler writes it
BANNED = "banned"  # hashes removed through the API or CLI; the crawler re-reads it


class DatabaseSeenStore:
    """A :class:`keel.bittorrented.dht.bloom.SeenStore` in the product's database."""

    def __init__(self, engine: AsyncEngine, key: str = SEEN, *, clock: Clock | None = None):
        self._engine = engine
        self._key = key
        self._clock = clock or SystemClock()

    async def load(self) -> bytes | None:
        """The bytes last saved under this key, or None."""
        t = models.bloom_filters
        async with db.reading(self._engine) as conn:
            value = (await conn.execute(select(t.c.bytes).where(t.c.key == self._key))).first()
        return None if value is None else bytes(value[0])

    async def save(self, data: bytes) -> None:
        """Replace the bytes under this key, in one transaction (never half a filter)."""
        async with db.writing(self._engine) as conn:
            await _store(conn, self._key, data, now=self._clock.now())


async def ban(conn: AsyncConnection, info_hashes: Iterable[bytes], *, now: datetime) -> None:
    """Add hashes to the persisted ``banned`` filter (call inside a transaction): a locked
    read-modify-write, so two removals at once both stick; a running crawler re-reads it."""
    t = models.bloom_filters
    if conn.dialect.name == "postgresql":
        # A row lock cannot guard the first ban (no row yet); an advisory lock can.
        await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('bloom_filters:banned'))"))
    row = (await conn.execute(select(t.c.bytes).where(t.c.key == BANNED))).first()
    bloom = ScalableBloomFilter.from_bytes(bytes(row[0])) if row else _new_banned()
    for info_hash in info_hashes:
        bloom.add(info_hash)
    await _store(conn, BANNED, bloom.to_bytes(), now=now)


async def _store(conn: AsyncConnection, key: str, data: bytes, *, now: datetime) -> None:
    statement = db.insert(conn, models.bloom_filters).values(
        key=key, bytes=data, created_at=now, updated_at=now
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"bytes": statement.excluded.bytes, "updated_at": now},
        )
    )


def _new_banned() -> ScalableBloomFilter:
    # Removals are rare next to crawled hashes: start small, the filter grows by slices.
    return ScalableBloomFilter(initial_capacity=10_000)
