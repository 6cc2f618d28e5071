"""Rate limits: each request is counted against named buckets (bucket -> limit per window);
one :class:`Verdict`, for the tightest bucket, answers it.

Two limiters share the :class:`RateLimiter` interface:

* :class:`WindowLimiter`: the ``limits`` package's moving window, in this process's memory
  (the embedded default) or in Redis (shared by every process, kept across restarts). Every
  API request passes through it, so it must never touch the product's database.
* :class:`SqlRateLimiter`: a sliding-window counter in the product's database, shared by every
  process on it and kept across restarts without Redis, at the price of one write transaction
  per hit. For the few low-rate, security-relevant limits (key creation, wallet changes, login
  attempts), and the ``database`` store for several processes without Redis.

Neither lets a window boundary pass a double burst, and neither charges a refused request: a
client hammering a closed bucket does not extend its own lock-out, and when one bucket refuses
the others are not charged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

import redis.asyncio
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.core import db
from keel.core.clock import Clock
from keel.core.replicated import is_unavailable

StoreKind = Literal["memory", "redis", "database"]
# A Redis that does not answer within this must not hold requests up (they fail open).
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_CONNECTIONS = 16


def rate_limit_table(metadata: MetaData, name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("bucket", String(120), primary_key=True),
        Column("window_start", BigInteger, primary_key=True),
        Column("count", Integer, nullable=False),
    )


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the next request slot frees
    retry_after: int = 0  # refused: whole seconds to wait, at least 1

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def refusal(limit: int, reset_at: float, now: float) -> Verdict:
    """A refused verdict: nothing left until ``reset_at`` (unix seconds)."""
    return Verdict(False, limit, 0, math.ceil(reset_at), max(1, math.ceil(reset_at - now)))


def tightest(verdicts: list[Verdict]) -> Verdict:
    """A refusal if any bucket refused, else the bucket with the fewest requests left."""
    return min(verdicts, key=lambda v: (v.allowed, v.remaining, -v.reset_at))


class LimiterUnavailable(Exception):
    """The limiter's store did not answer; the caller decides whether to let the request by."""


class RateLimiter(Protocol):
    window_seconds: int

    async def hit(self, limits: Mapping[str, int]) -> Verdict:
        """Count one request against every bucket (name -> requests per window) unless one
        of them is full; a refused request is counted nowhere. Raises LimiterUnavailable
        when the store cannot be reached."""
        ...

    async def aclose(self) -> None:
        """Release the store's connections."""
        ...


@dataclass(frozen=True)
class RateLimitStore:
    """Where a product's request limiter keeps its counters (``KeelSettings`` picks it)."""

    kind: StoreKind = "memory"
    redis_url: str = ""
    key_prefix: str = "keel"


class WindowLimiter:
    """A moving window per bucket (the ``limits`` package): exactly ``limit`` requests in any
    ``window_seconds``, so no burst at a window boundary.

    Each bucket is read first and charged only when every bucket has room. Two requests
    racing for a bucket's last slot can both pass the read; the loser is refused by the
    atomic charge, and any bucket charged before it keeps that one request (at most one per
    racing request, and only at the edge of a limit).
    """

    def __init__(
        self,
        storage: Storage,
        *,
        window_seconds: int,
        closer: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.window_seconds = window_seconds
        self._strategy = MovingWindowRateLimiter(storage)
        self._storage = storage
        self._closer = closer
        self._items: dict[int, RateLimitItem] = {}

    @classmethod
    def in_memory(cls, *, window_seconds: int) -> WindowLimiter:
        """Counters in this process: lost on restart, not shared with other processes."""
        return cls(MemoryStorage(), window_seconds=window_seconds)

    @classmethod
    def on_redis(
        cls,
        url: str,
        *,
        namespace: str,
        window_seconds: int,
        pool: redis.asyncio.ConnectionPool | None = None,
    ) -> WindowLimiter:
        """Counters in Redis under ``namespace``: shared by every process, kept on restart.
        With ``pool`` (the caller's, left open by :meth:`aclose`) it talks through that."""
        owned = pool is None
        if pool is None:
            # Bounded: a burst of requests shares REDIS_CONNECTIONS connections instead of
            # opening one each (40 cold connects at once can outlast the connect timeout on
            # a busy host); a request waits for a free one no longer than the timeout.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                url,
                max_connections=REDIS_CONNECTIONS,
                timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            wrap_exceptions=True,
            key_prefix=namespace,
            # Ours (or the caller's) so that it can be released; limits types options as scalars.
            connection_pool=pool,  # type: ignore[arg-type]
        )
        return cls(
            storage, window_seconds=window_seconds, closer=pool.disconnect if owned else None
        )

    def _item(self, limit: int) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = RateLimitItemPerSecond(limit, self.window_seconds)
        return item

    async def hit(self, limits: Mapping[str, int]) -> Verdict:
        try:
            return await self._hit(limits)
        except StorageError as exc:
            raise LimiterUnavailable(str(exc)) from exc

    async def _hit(self, limits: Mapping[str, int]) -> Verdict:
        buckets = [(bucket, self._item(limit)) for bucket, limit in sorted(limits.items())]
        before: list[Verdict] = []
        for bucket, item in buckets:
            stats = await self._strategy.get_window_stats(item, bucket)
            if stats.remaining < 1:
                return refusal(item.amount, stats.reset_time, time.time())
            reset = math.ceil(stats.reset_time)
            before.append(Verdict(True, item.amount, stats.remaining - 1, reset))
        for bucket, item in buckets:
            if not await self._strategy.hit(item, bucket):  # lost the race for the last slot
                stats = await self._strategy.get_window_stats(item, bucket)
                return refusal(item.amount, stats.reset_time, time.time())
        return tightest(before)

    async def aclose(self) -> None:
        if self._closer is not None:
            await self._closer()
        elif isinstance(self._storage, MemoryStorage) and self._storage.timer is not None:
            self._storage.timer.cancel()  # its expiry sweep would outlive the event loop


class _Refused(Exception):
    """Internal: unwinds the write transaction so a refused hit leaves no trace."""


class SqlRateLimiter:
    """A sliding-window counter per bucket in the product's database: the requests of the
    current window plus the previous window's, weighted by how much of it still overlaps the
    last ``window_seconds``. Old windows are pruned lazily.

    Every bucket is charged in one write transaction, rolled back when any of them is over
    its limit, so a refusal charges nothing. On PostgreSQL the upserted rows stay locked until
    then, so concurrent hits on one bucket count exactly; on SQLite one writer runs at a time.
    """

    def __init__(
        self,
        table: Table,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        window_seconds: int = 60,
    ) -> None:
        self.table = table
        self.sessions = sessions
        self.clock = clock
        self.window_seconds = window_seconds

    async def hit(self, limits: Mapping[str, int]) -> Verdict:
        now_ms = int(self.clock.now().timestamp() * 1000)
        window_ms = self.window_seconds * 1000
        start_ms = now_ms - now_ms % window_ms
        start, previous = start_ms // 1000, (start_ms - window_ms) // 1000
        overlap_ms = window_ms - (now_ms - start_ms)  # of the previous window, still counted
        verdicts: list[Verdict] = []
        t = self.table
        try:
            async with self.sessions() as session, session.begin():
                # Sorted, so that two transactions lock shared buckets in the same order.
                for bucket, limit in sorted(limits.items()):
                    stmt = (
                        db.insert(await session.connection(), t)
                        .values(bucket=bucket, window_start=start, count=1)
                        .on_conflict_do_update(
                            index_elements=["bucket", "window_start"], set_={"count": t.c.count + 1}
                        )
                        .returning(t.c.count)
                    )
                    count = int((await session.execute(stmt)).scalar_one())
                    prior = (
                        await session.execute(
                            select(t.c.count).where(
                                t.c.bucket == bucket, t.c.window_start == previous
                            )
                        )
                    ).scalar_one_or_none() or 0
                    # The weighted count, scaled by window_ms to stay in integers.
                    used = prior * overlap_ms + count * window_ms
                    if used > limit * window_ms:
                        # Rolled back: this request counts nowhere.
                        reset_ms = _next_slot_ms(start_ms, window_ms, prior, count - 1, limit)
                        verdicts = [refusal(limit, reset_ms / 1000, now_ms / 1000)]
                        raise _Refused
                    left = (limit * window_ms - used) // window_ms
                    reset = (start_ms + window_ms) // 1000  # this window starts to fade
                    verdicts.append(Verdict(True, limit, left, reset))
                    if count == 1:  # first hit of a new window: drop this bucket's stale ones
                        await session.execute(
                            delete(t).where(t.c.bucket == bucket, t.c.window_start < previous)
                        )
        except _Refused:
            pass
        except Exception as exc:
            if is_unavailable(exc):  # the database is down: the Protocol's LimiterUnavailable
                raise LimiterUnavailable(str(exc) or type(exc).__name__) from exc
            raise
        return tightest(verdicts)

    async def aclose(self) -> None:
        """The sessions belong to the product; nothing of the limiter's own to release."""


def _next_slot_ms(start_ms: int, window_ms: int, prior: int, count: int, limit: int) -> int:
    """When a request after ``count`` in this window (``prior`` in the last) would fit, if no
    other came meanwhile: the previous window's weight must fall far enough, or failing that,
    this window's once it has become the previous one."""
    if count + 1 <= limit:
        if prior == 0:
            return start_ms
        # prior * (window - elapsed) / window + count + 1 <= limit
        return start_ms + window_ms - (limit - 1 - count) * window_ms // prior
    return start_ms + 2 * window_ms - (limit - 1) * window_ms // max(count, 1)


def open_limiter(
    store: RateLimitStore,
    *,
    namespace: str,
    window_seconds: int,
    table: Table,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> RateLimiter:
    """The request limiter ``store`` names; ``database`` counts in ``table`` of the product."""
    if store.kind == "redis":
        return WindowLimiter.on_redis(
            store.redis_url,
            namespace=f"{store.key_prefix}:ratelimit:{namespace}",
            window_seconds=window_seconds,
        )
    if store.kind == "database":
        return SqlRateLimiter(table, sessions, clock, window_seconds=window_seconds)
    return WindowLimiter.in_memory(window_seconds=window_seconds)
