"""A circuit breaker around one rate provider, so a dead exchange API is skipped quickly
instead of costing a timeout on every payment."""

from __future__ import annotations

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates.model import Quote, RateProvider
from keel.core.resilience import CircuitBreaker, CircuitOpen


class BreakerRateProvider:
    def __init__(self, inner: RateProvider, breaker: CircuitBreaker | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.breaker = breaker or CircuitBreaker(
            f"rates.{inner.name}", minimum_calls=5, open_seconds=60.0, slow_call_seconds=5.0
        )

    async def get(self, base: str, quote: str) -> Quote:
        """The inner provider's quote; RateUnavailable (never CircuitOpen) when it is failing."""
        try:
            return await self.breaker.call(lambda: self.inner.get(base, quote))
        except CircuitOpen as exc:
            raise RateUnavailable(f"{self.name} is failing; circuit open") from exc
