"""Brute-force limits on join codes: failed code joins are counted per client address and for
everyone together with core's rate limiter; past either limit, code joins are refused (429)
until the window lets them through again. Invite links are not limited here: a forged invite
fails its MAC check, it cannot be guessed.

The limiter only counts (it has no "peek"), so a refusal is remembered here until the reset
the limiter reported; with a shared store (Redis, the database) another process learns of a
lock-out at its own next failure, so each process lets at most one more guess through.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter

from keel.core.logging import get_logger
from keel.core.ratelimit import LimiterUnavailable, RateLimiter
from keel.pairux.errors import JoinsLocked

log = get_logger("keel.pairux.joins")

FAILED_JOINS = Counter(
    "pairux_failed_joins_total",
    "Code joins refused for an unknown code, or locked out",
    ["outcome"],
)
GLOBAL = "join-failures:all"


class JoinGuard:
    def __init__(
        self,
        limiter: RateLimiter,
        *,
        per_client: int,
        global_limit: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = limiter
        self.per_client = per_client
        self.global_limit = global_limit
        self.now = now
        self._locked_until: dict[str, float] = {}

    def _bucket(self, client: str) -> str:
        return f"join-failures:{client}"

    def check(self, client: str) -> None:
        """Raise JoinsLocked when ``client`` (or everyone) is locked out right now."""
        now = self.now()
        for bucket in (self._bucket(client), GLOBAL):
            until = self._locked_until.get(bucket)
            if until is None:
                continue
            if until > now:
                FAILED_JOINS.labels("locked").inc()
                raise JoinsLocked(retry_after=max(1, int(until - now + 0.999)))
            del self._locked_until[bucket]

    async def failed(self, client: str) -> None:
        """Count one failed code join of ``client``; raise JoinsLocked when that filled a limit."""
        FAILED_JOINS.labels("unknown_code").inc()
        buckets = {self._bucket(client): self.per_client, GLOBAL: self.global_limit}
        try:
            verdict = await self.limiter.hit(buckets)
        except LimiterUnavailable as exc:  # fail open, as every Keel limiter does
            log.warning("join_limiter_unavailable", error=str(exc))
            return
        if verdict.allowed and verdict.remaining > 0:
            return
        # Which bucket is full is not said; lock the client's own, and everyone's only when
        # the global bucket is the tight one (its limit is the verdict's).
        bucket = GLOBAL if verdict.limit == self.global_limit != self.per_client else None
        until = float(verdict.reset_at) if verdict.allowed else self.now() + verdict.retry_after
        self._locked_until[bucket or self._bucket(client)] = max(until, self.now() + 1)
        if len(self._locked_until) > 100_000:  # bounded memory under an address-spraying attack
            self._locked_until = {k: v for k, v in self._locked_until.items() if v > self.now()}
        if not verdict.allowed:
            raise JoinsLocked(retry_after=max(1, verdict.retry_after))
