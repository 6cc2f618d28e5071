"""A per-pair cache in front of a provider, so checkouts do not hammer public APIs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from keel.coinpay.rates.model import Clock, Quote, RateProvider, utc_now


class CachedRateProvider:
    """Remembers each pair's quote for ``ttl`` after it was fetched.

    Public rate APIs allow a handful of calls per minute (CoinGecko's keyless tier:
    5-30); without a cache every payment created would cost one call per provider.
    Concurrent misses for one pair share a single fetch. Failures are not cached, so
    the next call retries. A cached quote keeps its original ``as_of``, so callers that
    check staleness see the true age; the worst-case age is the inner provider's
    staleness limit plus ``ttl``.
    """

    def __init__(self, inner: RateProvider, ttl: timedelta, clock: Clock = utc_now) -> None:
        if ttl < timedelta(0):
            raise ValueError("ttl must not be negative")
        self.name = inner.name
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[datetime, Quote]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _cached(self, key: tuple[str, str]) -> Quote | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        fetched_at, quote = entry
        if self._clock() - fetched_at >= self._ttl:
            return None
        return quote

    def clear(self) -> None:
        """Forget every cached quote."""
        self._entries.clear()

    async def get(self, base: str, quote: str) -> Quote:
        """The cached quote while younger than ``ttl``; else the inner provider's answer.

        Raises ``RateUnavailable`` when the inner provider does.
        """
        key = (base.strip().upper(), quote.strip().upper())
        hit = self._cached(key)
        if hit is not None:
            return hit
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._cached(key)
            if hit is not None:
                return hit
            fresh = await self._inner.get(*key)
            self._entries[key] = (self._clock(), fresh)
            return fresh
