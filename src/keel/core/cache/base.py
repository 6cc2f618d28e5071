"""What every cache offers: bytes and JSON values with a TTL, invalidation, counters with an
expiry, an advisory lock, a rate limiter on the same store, and a status report.

Keys are the caller's (``dashboard:42``); each cache puts them under its own namespace.
Keys starting with ``~`` are the cache's own (journals, locks) and are refused.
"""

from __future__ import annotations

import json
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from keel.core.ratelimit import RateLimiter
from keel.core.resilience import BreakerSnapshot

MAX_KEY_CHARS = 512


def check_key(key: str) -> str:
    """``key`` if the caller may use it; ValueError otherwise (a bug, not bad luck)."""
    if not key or len(key) > MAX_KEY_CHARS or key.startswith("~"):
        raise ValueError(f"cache keys are 1-{MAX_KEY_CHARS} characters not starting with '~'")
    return key


def check_ttl(ttl_seconds: float, max_ttl_seconds: float) -> int:
    """``ttl_seconds`` in whole milliseconds (at least 1); ValueError outside (0, max]."""
    if not 0 < ttl_seconds <= max_ttl_seconds:
        raise ValueError(f"ttl_seconds must be in (0, {max_ttl_seconds}]")
    return max(1, round(ttl_seconds * 1000))


@dataclass(frozen=True)
class Lock:
    """A held lock: release it with :meth:`Cache.release_lock` (``where`` says on which
    store it was granted, ``token`` proves it is still ours)."""

    name: str
    token: str
    where: str


@dataclass(frozen=True)
class ProviderStatus:
    """One Redis server behind a cache: its breaker, and how many keys it missed writes of
    that are not reconciled yet (None when no other provider could be asked)."""

    label: str
    breaker: BreakerSnapshot
    missed_writes: int | None


@dataclass(frozen=True)
class CacheStatus:
    """A cache as the status page shows it. ``fallback_active``: every provider failed and
    this process answers from its own memory; ``pending_invalidations``: keys this process
    changed while no provider answered, to be invalidated on them when one returns."""

    name: str
    kind: Literal["memory", "redis"]
    providers: tuple[ProviderStatus, ...]
    fallback_entries: int
    fallback_active: bool
    pending_invalidations: int


class Cache(ABC):
    """A cache. No method raises because the store is down: reads miss, writes fall back.

    Values are bytes; :meth:`get_json` and :meth:`set_json` wrap them. Every value has a TTL
    (seconds, at most ``max_ttl_seconds``).
    """

    name: str
    max_ttl_seconds: float

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None when absent, expired or unreachable."""

    @abstractmethod
    async def set(self, key: str, value: bytes, *, ttl_seconds: float) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds``."""

    @abstractmethod
    async def delete(self, *keys: str) -> None:
        """Invalidate ``keys``: no later read returns what they held."""

    @abstractmethod
    async def incr(self, key: str, *, ttl_seconds: float, amount: int = 1) -> int:
        """Add ``amount`` to the counter under ``key`` and return it; a new counter starts at
        0 and expires ``ttl_seconds`` after its first increment (a fixed window)."""

    @abstractmethod
    async def acquire_lock(self, name: str, *, ttl_seconds: float) -> Lock | None:
        """The lock ``name`` for at most ``ttl_seconds``, or None when someone holds it.
        Advisory: it saves duplicate work, it does not guarantee exclusion across a
        failover."""

    @abstractmethod
    async def release_lock(self, lock: Lock) -> bool:
        """Release ``lock`` if it is still ours (not expired and taken by another)."""

    @abstractmethod
    def rate_limiter(self, *, namespace: str, window_seconds: int) -> RateLimiter:
        """A request rate limiter (``keel.core.ratelimit``) on this cache's store."""

    @abstractmethod
    async def status(self) -> CacheStatus:
        """The cache's providers and fallback, for the status page."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections and background tasks."""

    async def get_json(self, key: str) -> Any | None:
        """The JSON value under ``key``, or None (also when it does not parse)."""
        raw = await self.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None  # written by something else; a miss makes the caller recompute it

    async def set_json(self, key: str, value: Any, *, ttl_seconds: float) -> None:
        """Store ``value`` (anything :func:`json.dumps` takes) under ``key``."""
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        await self.set(key, encoded, ttl_seconds=ttl_seconds)

    @asynccontextmanager
    async def lock(self, name: str, *, ttl_seconds: float) -> AsyncIterator[bool]:
        """``async with cache.lock("discover", ttl_seconds=120) as held:``: ``held`` says
        whether this caller got it (then it is released on exit). The TTL must outlast
        the work, or another caller may start the same work."""
        held = await self.acquire_lock(name, ttl_seconds=ttl_seconds)
        try:
            yield held is not None
        finally:
            if held is not None:
                await self.release_lock(held)


def new_token() -> str:
    return secrets.token_urlsafe(16)
