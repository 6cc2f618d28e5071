"""One Redis server behind a failover cache: a fail-fast redis-py client and its own breaker.

redis-py's defaults suit a database, not a cache: recent releases retry a failed command with
backoff and wait seconds on a socket. Here a command is tried once (``Retry(NoBackoff(), 0)``),
connecting gives up after ``connect_timeout_seconds``, and the breaker cancels any call past
``call_timeout_seconds`` (waiting for a pooled connection, connecting, sending and reading
together) and stops calling a server that fails or is slow, so a dead or slow Redis costs a
request a fraction of a second at most, then nothing until it is probed again.

Every method takes full Redis keys and is one round trip, run through the breaker by
:meth:`RedisProvider.attempt`, which turns every provider failure into :data:`MISSED`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from keel.core.logging import get_logger
from keel.core.resilience import BREAKERS, CircuitBreaker, CircuitOpen, CircuitState

log = get_logger("keel.cache")

T = TypeVar("T")

# The server did not answer, or answered that it cannot serve (OOM, loading, read-only):
# redis-py raises these as RedisError subclasses, sockets as OSError (TimeoutError among them).
PROVIDER_FAILURES: tuple[type[BaseException], ...] = (redis.RedisError, OSError)


class _Missed(enum.Enum):
    MISSED = "missed"


MISSED = _Missed.MISSED
"""What :meth:`RedisProvider.attempt` returns when the provider did not do the operation."""
Missed = Literal[_Missed.MISSED]

# INCRBY that starts a new counter's expiry (a fixed window; PTTL < 0 also repairs a counter
# that lost it), then for each journal (KEYS[2..] in pairs: missed, repaired) the counter's
# generation in each hash ('' when absent).
_INCR = """
local answer = {redis.call('INCRBY', KEYS[1], ARGV[1])}
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
for i = 2, #KEYS do answer[#answer + 1] = redis.call('HGET', KEYS[i], KEYS[1]) or '' end
return answer
"""
# Raise counters (KEYS) to at least the counts in ARGV (count, ttl_ms pairs), never lower:
# a counter that missed increments catches up without losing its own.
_RAISE = """
for i = 1, #KEYS do
  local count = tonumber(ARGV[2 * i - 1])
  if (tonumber(redis.call('GET', KEYS[i])) or 0) < count then
    redis.call('SET', KEYS[i], count, 'PX', ARGV[2 * i])
  end
end
return #KEYS
"""
# Release a lock only if it still holds our token (it may have expired and been retaken).
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Mark journal entries (ARGV[2..]: key, generation pairs) repaired unless their generation
# moved on meanwhile (missed again: it stays to repair). ARGV[1]: how long to keep the mark.
_MARK = """
local marked = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    marked = marked + 1
  end
end
if marked > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return marked
"""
# Entries of journals (KEYS in pairs: missed, repaired) not repaired at their generation.
_PENDING = """
local pending = 0
for j = 1, #KEYS, 2 do
  local entries = redis.call('HGETALL', KEYS[j])
  for i = 1, #entries, 2 do
    if redis.call('HGET', KEYS[j + 1], entries[i]) ~= entries[i + 1] then
      pending = pending + 1
    end
  end
end
return pending
"""


@dataclass(frozen=True)
class Journal:
    """Kept on a provider that took writes another one missed: the keys it missed (hash
    ``missed``: key -> generation, bumped at each miss) and the generation of each that was
    repaired on it since (hash ``repaired``). Entries are never removed: they keep readers
    off the missing provider's copy of those keys until the journal expires, after every
    value it could hold for them has expired too."""

    missed: str
    repaired: str


@dataclass(frozen=True)
class ProviderPolicy:
    """Client and breaker settings of one provider. The breaker's window is count-based:
    a cache sees steady traffic, and its last ``window_calls`` calls span a fraction of a
    second under load, so it reacts as fast as the traffic allows."""

    # None: the breaker's call timeout bounds every call already; a socket timeout as well
    # costs a timer per command sent and per reply read (15 % of a two-provider read,
    # bench/breaker_overhead.py) and bounds less (not the wait for a pooled connection).
    socket_timeout_seconds: float | None = None
    connect_timeout_seconds: float = 0.5
    health_check_interval_seconds: int = 30
    max_connections: int = 64
    # Bounds the whole call (waiting for a pooled connection and connecting included), which
    # the socket timeouts alone do not.
    call_timeout_seconds: float = 0.3
    # A loopback or same-zone Redis answers in a millisecond; 200 ms is sick. Most of the
    # window must be that slow, so a burst of cold connections does not trip it.
    slow_call_seconds: float = 0.2
    slow_call_rate_threshold: float = 0.8
    failure_rate_threshold: float = 0.5
    # 100 calls (resilience4j's default): a host stalled for a moment makes every call in
    # flight look slow at once; that must not be most of the window.
    window_calls: int = 100
    minimum_calls: int = 20
    open_seconds: float = 5.0
    half_open_max_calls: int = 3


class RedisProvider:
    """A Redis server (``url``) known as ``label`` ("primary", "secondary")."""

    def __init__(
        self,
        url: str,
        *,
        label: str,
        breaker_name: str,
        policy: ProviderPolicy | None = None,
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
    ) -> None:
        policy = policy or ProviderPolicy()
        self.label = label
        self.url = url
        self.pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            # Waiting for a free connection is bounded by the breaker's call timeout.
            max_connections=policy.max_connections,
            timeout=None,
            socket_timeout=policy.socket_timeout_seconds,
            socket_connect_timeout=policy.connect_timeout_seconds,
            health_check_interval=policy.health_check_interval_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        self.client = redis.asyncio.Redis(connection_pool=self.pool)
        self.breaker = CircuitBreaker(
            breaker_name,
            window_calls=policy.window_calls,
            minimum_calls=policy.minimum_calls,
            failure_rate_threshold=policy.failure_rate_threshold,
            slow_call_seconds=policy.slow_call_seconds,
            slow_call_rate_threshold=policy.slow_call_rate_threshold,
            open_seconds=policy.open_seconds,
            half_open_max_calls=policy.half_open_max_calls,
            call_timeout_seconds=policy.call_timeout_seconds,
            failure_on=PROVIDER_FAILURES,
            on_state_change=self._state_changed,
        )
        self._on_state_change = on_state_change
        self._background: set[asyncio.Task[None]] = set()
        self._incr = self.client.register_script(_INCR)
        self._raise = self.client.register_script(_RAISE)
        self._unlock = self.client.register_script(_UNLOCK)
        self._mark = self.client.register_script(_MARK)
        self._pending = self.client.register_script(_PENDING)

    def __repr__(self) -> str:
        return f"RedisProvider({self.label!r})"  # never the URL: it may hold a password

    def _state_changed(self, old: CircuitState, new: CircuitState) -> None:
        level = log.warning if new is CircuitState.OPEN else log.info
        level("cache_provider_circuit", provider=self.label, old=old.value, new=new.value)
        if new is CircuitState.OPEN:
            # Idle connections to a server that failed are likely dead (it restarted): each
            # would fail once when the breaker lets traffic back and reopen it. Probes and
            # what follows them connect afresh instead.
            task = asyncio.get_running_loop().create_task(
                self.pool.disconnect(inuse_connections=False)
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        if self._on_state_change is not None:
            self._on_state_change(old, new)

    async def attempt(self, op: Callable[[], Awaitable[T]]) -> T | Missed:
        """``op()`` through the breaker, or :data:`MISSED` when the breaker refused it or the
        provider failed (timeouts included); never raises for the provider's sake."""
        try:
            return await self.breaker.call(op)
        except CircuitOpen:
            return MISSED
        except PROVIDER_FAILURES as exc:
            log.debug("cache_provider_failed", provider=self.label, error=repr(exc))
            return MISSED

    async def read(
        self, key: str, journals: Sequence[Journal]
    ) -> tuple[bytes | None, list[tuple[bool, bool]]]:
        """The value under ``key`` and, for each of ``journals``, whether it lists ``key``
        (another provider missed a write of it) and whether that is not repaired yet."""
        if not journals:
            return await self.client.get(key), []
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(key)
            for journal in journals:
                pipe.hget(journal.missed, key)
                pipe.hget(journal.repaired, key)
            value, *generations = await pipe.execute()
        return value, _flags(generations)

    async def flags(self, key: str, journals: Sequence[Journal]) -> list[tuple[bool, bool]]:
        """For each of ``journals``: whether it lists ``key``, and whether not repaired."""
        async with self.client.pipeline(transaction=False) as pipe:
            for journal in journals:
                pipe.hget(journal.missed, key)
                pipe.hget(journal.repaired, key)
            return _flags(await pipe.execute())

    async def write(self, key: str, value: bytes, ttl_ms: int) -> None:
        await self.client.set(key, value, px=ttl_ms)

    async def delete(self, keys: Sequence[str]) -> None:
        await self.client.delete(*keys)

    async def journal(self, keys: Sequence[str], journals: Sequence[Journal], keep_ms: int) -> None:
        """Record in each of ``journals`` that its provider missed a write of ``keys``; the
        journal outlives every value written meanwhile (each TTL is at most ``keep_ms``)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for journal in journals:
                for key in keys:
                    pipe.hincrby(journal.missed, key, 1)
                pipe.pexpire(journal.missed, keep_ms)
            await pipe.execute()

    async def incr(
        self, key: str, amount: int, ttl_ms: int, journals: Sequence[Journal]
    ) -> tuple[int, list[tuple[bool, bool]]]:
        """The counter after adding ``amount``, and flags as :meth:`read` gives them."""
        keys = [key, *(name for j in journals for name in (j.missed, j.repaired))]
        count, *generations = await self._incr(keys=keys, args=[amount, ttl_ms])
        return int(count), _flags([g or None for g in generations])

    async def counts(self, keys: Sequence[str]) -> list[tuple[int, int] | None]:
        """For each counter: (count, milliseconds left), or None when it is gone."""
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.pttl(key)
            replies = await pipe.execute()
        found: list[tuple[int, int] | None] = []
        for value, ttl_ms in zip(replies[::2], replies[1::2], strict=True):
            found.append(None if value is None or ttl_ms <= 0 else (int(value), int(ttl_ms)))
        return found

    async def raise_counts(self, counts: dict[str, tuple[int, int]]) -> None:
        """Raise each counter to at least the given count (with that TTL), never lower."""
        args = [part for count, ttl_ms in counts.values() for part in (count, ttl_ms)]
        await self._raise(keys=list(counts), args=args)

    async def try_lock(self, key: str, token: str, ttl_ms: int) -> bool:
        return bool(await self.client.set(key, token, px=ttl_ms, nx=True))

    async def unlock(self, key: str, token: str) -> bool:
        return bool(await self._unlock(keys=[key], args=[token]))

    async def pending(self, journals: Sequence[Journal]) -> int:
        """How many entries of ``journals`` are not repaired."""
        keys = [name for j in journals for name in (j.missed, j.repaired)]
        return int(await self._pending(keys=keys))

    async def unrepaired(self, journal: Journal, cursor: int) -> tuple[int, dict[bytes, bytes]]:
        """One page of ``journal``'s entries not repaired at their generation (key ->
        generation), and the next cursor (0 at the end)."""
        next_cursor, entries = await self.client.hscan(journal.missed, cursor, count=200)
        if not entries:
            return int(next_cursor), {}
        # redis-py types HMGET as sync-or-async; on this client it is always awaitable.
        repaired = await cast(
            "Awaitable[list[bytes | None]]", self.client.hmget(journal.repaired, list(entries))
        )
        return int(next_cursor), {
            key: generation
            for (key, generation), done in zip(entries.items(), repaired, strict=True)
            if done != generation
        }

    async def mark_repaired(
        self, journal: Journal, entries: dict[bytes, bytes], keep_ms: int
    ) -> int:
        """Mark ``entries`` repaired unless their generation moved on; how many were."""
        args: list[int | bytes] = [keep_ms, *(part for pair in entries.items() for part in pair)]
        return int(await self._mark(keys=[journal.missed, journal.repaired], args=args))

    async def aclose(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.client.aclose()
        await self.pool.disconnect()
        # A closed provider is no one's status any more (its object may outlive the close).
        BREAKERS.discard(self.breaker)


def _flags(generations: Sequence[bytes | None]) -> list[tuple[bool, bool]]:
    """(listed, not repaired) per journal from its (missed, repaired) generations."""
    pairs = zip(generations[::2], generations[1::2], strict=True)
    return [(missed is not None, missed is not None and missed != done) for missed, done in pairs]
