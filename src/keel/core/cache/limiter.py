"""Rate limits on the failover path: the ``limits`` moving window of ADR 0008 on the first
provider that answers, through that provider's breaker, and this process's memory when none
does (rather than letting every request by).

Each provider keeps its own counters: a client whose counters were on the primary starts
afresh on the secondary after a failover, so for one window it may get up to twice its
limit. That is the price of not writing every hit twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import redis

from keel.core.cache.provider import MISSED, RedisProvider
from keel.core.ratelimit import LimiterUnavailable, Verdict, WindowLimiter


class FailoverLimiter:
    """A :class:`keel.core.ratelimit.RateLimiter` over ``stores`` (in order of preference),
    then ``memory``. It never raises :class:`LimiterUnavailable`."""

    def __init__(
        self,
        stores: Sequence[tuple[RedisProvider, WindowLimiter]],
        memory: WindowLimiter,
        *,
        window_seconds: int,
    ) -> None:
        self.window_seconds = window_seconds
        self._stores = tuple(stores)
        self._memory = memory

    async def hit(self, limits: Mapping[str, int]) -> Verdict:
        for provider, limiter in self._stores:
            verdict = await provider.attempt(partial(_hit, limiter, limits))
            if verdict is not MISSED:
                return verdict
        return await self._memory.hit(limits)

    async def aclose(self) -> None:
        """The limiters belong to the cache, which closes them."""


async def _hit(limiter: WindowLimiter, limits: Mapping[str, int]) -> Verdict:
    try:
        return await limiter.hit(limits)
    except LimiterUnavailable as exc:
        # The breaker counts only the provider's own errors as failures: say it was one.
        raise redis.ConnectionError(str(exc)) from exc
