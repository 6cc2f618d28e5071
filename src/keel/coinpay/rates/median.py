"""Median of several providers: one bad or stale source cannot move the price."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates.model import Clock, Quote, RateProvider, utc_now


def median(values: Sequence[Decimal]) -> Decimal:
    """The middle value; for an even count, the mean of the two middle values."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


class MedianRateProvider:
    """Asks every provider at once and answers with the median of the fresh quotes.

    A quote is fresh when ``clock() - quote.as_of <= max_age``. Failures and stale
    quotes are dropped; with fewer than ``min_quotes`` fresh quotes left the answer is
    ``RateUnavailable`` naming why each provider was dropped. The result's ``as_of`` is
    the oldest fresh quote's, and its ``source`` lists them: ``median(a,b,c)``.
    """

    name = "median"

    def __init__(
        self,
        providers: Sequence[RateProvider],
        max_age: timedelta,
        min_quotes: int = 1,
        clock: Clock = utc_now,
    ) -> None:
        if not providers:
            raise ValueError("MedianRateProvider needs at least one provider")
        if not 1 <= min_quotes <= len(providers):
            raise ValueError(f"min_quotes must be within 1..{len(providers)}, got {min_quotes}")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        self._providers = tuple(providers)
        self._max_age = max_age
        self._min_quotes = min_quotes
        self._clock = clock

    async def get(self, base: str, quote: str) -> Quote:
        """Raises ``RateUnavailable`` when fewer than ``min_quotes`` fresh quotes arrive."""
        b, q = base.strip().upper(), quote.strip().upper()
        results = await asyncio.gather(
            *(provider.get(b, q) for provider in self._providers), return_exceptions=True
        )
        now = self._clock()
        fresh: list[Quote] = []
        dropped: list[str] = []
        errors: list[Exception] = []
        for provider, result in zip(self._providers, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation, KeyboardInterrupt: not a provider failure
                errors.append(result)
                dropped.append(f"{provider.name}: {type(result).__name__}: {result}")
            elif (result.base, result.quote) != (b, q):
                dropped.append(f"{provider.name}: answered {result.base}/{result.quote}")
            elif now - result.as_of > self._max_age:
                dropped.append(
                    f"{provider.name}: stale, as of {result.as_of.isoformat()} "
                    f"is older than {self._max_age}"
                )
            else:
                fresh.append(result)
        if len(fresh) < self._min_quotes:
            detail = f"{b}/{q}: {len(fresh)} fresh quote(s), need {self._min_quotes}; " + "; ".join(
                dropped
            )
            cause = ExceptionGroup("rate provider failures", errors) if errors else None
            raise RateUnavailable(detail, pair=f"{b}/{q}", failures=dropped) from cause
        return Quote(
            base=b,
            quote=q,
            rate=median([item.rate for item in fresh]),
            source=f"median({','.join(item.source for item in fresh)})",
            as_of=min(item.as_of for item in fresh),
        )
