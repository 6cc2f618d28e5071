from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates.guarded import BreakerRateProvider
from keel.coinpay.rates.model import Quote
from keel.core.resilience import CircuitBreaker


class Flaky:
    name = "flaky"

    def __init__(self) -> None:
        self.calls = 0
        self.failing = True

    async def get(self, base: str, quote: str) -> Quote:
        self.calls += 1
        if self.failing:
            raise RateUnavailable("exchange down")
        return Quote(base, quote, Decimal("100"), self.name, datetime.now(UTC))


async def test_a_failing_provider_is_skipped_once_its_circuit_opens() -> None:
    inner = Flaky()
    now = [0.0]
    guarded = BreakerRateProvider(
        inner, CircuitBreaker("t", minimum_calls=3, open_seconds=10, clock=lambda: now[0])
    )
    for _ in range(3):
        with pytest.raises(RateUnavailable):
            await guarded.get("BTC", "USD")
    with pytest.raises(RateUnavailable, match="circuit open"):
        await guarded.get("BTC", "USD")
    assert inner.calls == 3  # the open circuit did not call the dead provider
    inner.failing = False
    now[0] = 11.0
    assert (await guarded.get("BTC", "USD")).rate == Decimal("100")
