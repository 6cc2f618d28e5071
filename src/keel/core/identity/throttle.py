"""Brute-force limits on logins, sign-ups and reset requests, over core's rate limiter.

* **Failed logins** are counted per client address and per account email. Once either is
  full, logins from that address, or to that email, are refused (429 with ``Retry-After``)
  before any password is checked, until the limiter's window lets them through again. A
  successful login is not counted, so an owner who types their password right is never
  limited by their own typos, only by a stranger's guessing.
* **Sign-ups** and **reset requests** are counted whole (each attempt), per address, and
  reset requests also per email, so nobody floods an inbox or probes emails in bulk.

The limiter only counts (it has no "peek"), so a lock-out is remembered here until the reset
the limiter reported, as ``keel.pairux.joins`` does; with a shared store (the database,
Redis) another process learns of it at its own next failure, so each process lets at most
one more guess through per window. Emails are keyed by a hash: buckets hold no addresses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import Counter

from keel.core.identity.errors import TooManyAttempts
from keel.core.logging import get_logger
from keel.core.ratelimit import LimiterUnavailable, RateLimiter

log = get_logger("keel.identity.throttle")

ATTEMPTS = Counter(
    "keel_identity_attempts_total",
    "Logins, sign-ups and reset requests by outcome (failed, locked, refused)",
    ["prefix", "action", "outcome"],
)
_MAX_REMEMBERED = 100_000  # lock-outs kept in memory; bounded under an address-spraying attack


@dataclass(frozen=True)
class LoginLimits:
    """Per ``window_seconds`` (the limiter's window): failed logins per address and per email,
    sign-ups per address, reset requests per address and per email."""

    window_seconds: int = 900
    failures_per_client: int = 30
    failures_per_email: int = 10
    signups_per_client: int = 10
    resets_per_client: int = 10
    resets_per_email: int = 3


def email_key(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class LoginThrottle:
    def __init__(
        self,
        limiter: RateLimiter,
        limits: LoginLimits,
        *,
        prefix: str,
        now: Callable[[], float],
    ) -> None:
        self.limiter = limiter
        self.limits = limits
        self.prefix = prefix
        self.now = now
        self._locked_until: dict[str, float] = {}

    def _client(self, client: str) -> str:
        return f"{self.prefix}:login:client:{client}"[:120]

    def _email(self, email: str) -> str:
        return f"{self.prefix}:login:email:{email_key(email)}"

    def check_login(self, *, client: str, email: str) -> None:
        """TooManyAttempts when logins from ``client`` or to ``email`` are locked out now."""
        now = self.now()
        for bucket in (self._client(client), self._email(email)):
            until = self._locked_until.get(bucket)
            if until is None:
                continue
            if until > now:
                ATTEMPTS.labels(self.prefix, "login", "locked").inc()
                raise TooManyAttempts(retry_after=max(1, int(until - now + 0.999)))
            del self._locked_until[bucket]

    async def failed_login(self, *, client: str, email: str) -> None:
        """Count one failed login; lock out whichever bucket it filled. TooManyAttempts when
        the store already refused it (the lock-out was learnt from another process)."""
        ATTEMPTS.labels(self.prefix, "login", "failed").inc()
        buckets = {
            self._client(client): self.limits.failures_per_client,
            self._email(email): self.limits.failures_per_email,
        }
        try:
            verdict = await self.limiter.hit(buckets)
        except LimiterUnavailable as exc:  # fail open, as every Keel limiter does
            log.warning("login_limiter_unavailable", error=str(exc))
            return
        if verdict.allowed and verdict.remaining > 0:
            return
        # The verdict names the tight bucket only by its limit: lock both when they share it.
        until = float(verdict.reset_at) if verdict.allowed else self.now() + verdict.retry_after
        until = max(until, self.now() + 1)
        for bucket, limit in buckets.items():
            if limit == verdict.limit:
                self._locked_until[bucket] = until
        self._forget_expired()
        if not verdict.allowed:
            ATTEMPTS.labels(self.prefix, "login", "locked").inc()
            raise TooManyAttempts(retry_after=max(1, verdict.retry_after))

    async def attempt(self, action: str, buckets: Mapping[str, int]) -> None:
        """Count one ``action`` (``signup``, ``reset``) against ``buckets`` (key -> limit,
        without the prefix); TooManyAttempts when one is full (then nothing is counted)."""
        named = {f"{self.prefix}:{action}:{key}"[:120]: limit for key, limit in buckets.items()}
        try:
            verdict = await self.limiter.hit(named)
        except LimiterUnavailable as exc:
            log.warning("identity_limiter_unavailable", action=action, error=str(exc))
            return
        if not verdict.allowed:
            ATTEMPTS.labels(self.prefix, action, "refused").inc()
            raise TooManyAttempts(retry_after=verdict.retry_after)

    def _forget_expired(self) -> None:
        if len(self._locked_until) > _MAX_REMEMBERED:
            now = self.now()
            self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}
