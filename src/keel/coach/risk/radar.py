"""Scans through a cache: :class:`RiskRadar`.

A report is cached per chain and address for ``ttl_seconds`` in the product's shared
:class:`~keel.core.cache.Cache` (in memory, or the failover Redis pair), as JSON stamped with
the time of the scan, so every process answers from one scan and a report older than the TTL
is never served whatever the store's own expiry does. Concurrent scans of one token in this
process share one request (single flight). Errors are not cached: the scanner's breaker
already stops hammering a failing GoPlus.

Metrics: ``coach_risk_scans_total{source}``: ``cache``, ``goplus`` or ``shared`` (joined a scan
already under way).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

from prometheus_client import Counter

from keel.coach.risk import addresses, scoring
from keel.coach.risk.errors import StoredReportInvalid
from keel.coach.risk.goplus import TokenScanner
from keel.coach.risk.report import RiskReport
from keel.coach.risk.scoring import RiskScore
from keel.core.cache import Cache

__all__ = ["RiskRadar", "cache_key"]

SCANS = Counter(
    "coach_risk_scans_total",
    "Risk scans answered, by source (cache, goplus, shared: joined a scan under way)",
    ["source"],
)
_SOURCES: Final = {source: SCANS.labels(source) for source in ("cache", "goplus", "shared")}


def cache_key(token: addresses.Token) -> str:
    return f"risk:{token.chain}:{token.address}"


class RiskRadar:
    """Scores tokens, scanning each at most once per ``ttl_seconds`` (0: never cached).

    ``clock`` is wall-clock seconds (``time.time``): cached entries are stamped with it, and
    other processes sharing the cache read the stamps.
    """

    def __init__(
        self,
        scanner: TokenScanner,
        cache: Cache,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 <= ttl_seconds <= cache.max_ttl_seconds:
            raise ValueError(f"ttl_seconds must be in [0, {cache.max_ttl_seconds}]")
        self._scanner = scanner
        self._cache = cache
        self._ttl = ttl_seconds
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[RiskReport]] = {}

    async def scan(
        self, chain: str | None, address: str, *, fresh: bool = False
    ) -> tuple[RiskReport, RiskScore]:
        """The report and score of the token ``address`` on ``chain`` (an id or name; None:
        guessed from the address). ``fresh``: skip the cache (a scan under way is still
        joined). Raises what :meth:`TokenScanner.scan` raises."""
        token = addresses.parse_token(address, chain)
        key = cache_key(token)
        if not fresh:
            cached = await self._cached(key)
            if cached is not None:
                _SOURCES["cache"].inc()
                return cached, scoring.score(cached)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch(token, key))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
            _SOURCES["goplus"].inc()
        else:
            _SOURCES["shared"].inc()
        # Shielded: one caller giving up (a cancelled handler) must not cancel the others.
        report = await asyncio.shield(task)
        return report, scoring.score(report)

    async def _cached(self, key: str) -> RiskReport | None:
        if self._ttl <= 0:
            return None
        entry = await self._cache.get_json(key)
        if not isinstance(entry, dict):
            return None
        scanned_at = entry.get("at")
        if not isinstance(scanned_at, int | float):
            return None
        if not 0 <= self._clock() - scanned_at < self._ttl:
            return None
        try:
            return RiskReport.from_json(entry.get("report"))
        except StoredReportInvalid:
            return None  # another version wrote it: scan again

    async def _fetch(self, token: addresses.Token, key: str) -> RiskReport:
        report = await self._scanner.scan(token.chain, token.address)
        if self._ttl > 0:
            entry = {"at": self._clock(), "report": report.to_json()}
            await self._cache.set_json(key, entry, ttl_seconds=self._ttl)
        return report

    def _finished(self, key: str, task: asyncio.Task[RiskReport]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone
