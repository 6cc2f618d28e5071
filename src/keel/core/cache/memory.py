"""The in-process cache: the embedded default (no Redis configured) and the fallback a
failover cache answers from while every Redis is down.

A bounded LRU: past ``max_entries`` or ``max_bytes`` the least recently used value goes.
Expired values go when touched. Locks live apart from values, so eviction never frees one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from keel.core.cache.base import Cache, CacheStatus, Lock, check_key, check_ttl, new_token
from keel.core.ratelimit import RateLimiter, WindowLimiter

DEFAULT_MAX_TTL_SECONDS = 86_400.0


class MemoryCache(Cache):
    """Values, counters and locks in this process's memory (lost on restart, not shared)."""

    def __init__(
        self,
        *,
        name: str = "memory",
        max_entries: int = 10_000,
        max_bytes: int = 64 * 2**20,
        max_ttl_seconds: float = DEFAULT_MAX_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be at least 1")
        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_ttl_seconds = max_ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()  # value, expires
        self._bytes = 0
        self._locks: dict[str, tuple[str, float]] = {}  # name -> token, expires
        self._limiters: list[WindowLimiter] = []

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        return self.peek(check_key(key))

    def peek(self, key: str) -> bytes | None:
        """:meth:`get` without awaiting (the failover cache's fallback path)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry[0]

    async def set(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        self.put(check_key(key), value, check_ttl(ttl_seconds, self.max_ttl_seconds) / 1000)

    def put(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._drop(key)
        size = len(key) + len(value)
        if size > self.max_bytes:
            return  # would evict everything else and still not fit
        self._entries[key] = (value, self._clock() + ttl_seconds)
        self._bytes += size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._drop(check_key(key))

    def discard(self, *keys: str) -> None:
        for key in keys:
            self._drop(key)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    async def incr(self, key: str, *, ttl_seconds: float, amount: int = 1) -> int:
        return self.add(check_key(key), amount, check_ttl(ttl_seconds, self.max_ttl_seconds))

    def add(self, key: str, amount: int, ttl_ms: int) -> int:
        """:meth:`incr` without awaiting; the counter keeps the expiry of its first add."""
        entry = self._entries.get(key)
        now = self._clock()
        if entry is None or entry[1] <= now:
            count, expires = amount, now + ttl_ms / 1000
        else:
            count, expires = int(entry[0]) + amount, entry[1]
        self.put(key, str(count).encode(), expires - now)
        return count

    async def acquire_lock(self, name: str, *, ttl_seconds: float) -> Lock | None:
        return self.take_lock(check_key(name), check_ttl(ttl_seconds, self.max_ttl_seconds))

    def take_lock(self, name: str, ttl_ms: int) -> Lock | None:
        now = self._clock()
        held = self._locks.get(name)
        if held is not None and held[1] > now:
            return None
        token = new_token()
        self._locks[name] = (token, now + ttl_ms / 1000)
        return Lock(name, token, self.name)

    async def release_lock(self, lock: Lock) -> bool:
        return self.give_back(lock)

    def give_back(self, lock: Lock) -> bool:
        held = self._locks.get(lock.name)
        if held is None or held[0] != lock.token or held[1] <= self._clock():
            return False
        del self._locks[lock.name]
        return True

    def rate_limiter(self, *, namespace: str, window_seconds: int) -> RateLimiter:
        limiter = WindowLimiter.in_memory(window_seconds=window_seconds)
        self._limiters.append(limiter)
        return limiter

    async def status(self) -> CacheStatus:
        return CacheStatus(self.name, "memory", (), len(self._entries), False, 0)

    async def aclose(self) -> None:
        for limiter in self._limiters:
            await limiter.aclose()
        self._limiters.clear()

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(key) + len(entry[0])
