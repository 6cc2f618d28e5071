"""CachedRateProvider: one fetch per pair per ttl."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates import CachedRateProvider, KrakenProvider, Quote

from .conftest import NOW, ReplayServer


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class CountingProvider:
    name = "counting"

    def __init__(self, fail: bool = False, delay: float = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.delay = delay

    async def get(self, base: str, quote: str) -> Quote:
        self.calls.append((base, quote))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RateUnavailable("counting: down")
        return Quote(base, quote, Decimal(len(self.calls)), self.name, NOW)


async def test_second_call_within_ttl_hits_the_cache() -> None:
    clock = FakeClock()
    inner = CountingProvider()
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=clock)

    first = await cached.get("BTC", "USD")
    clock.now += timedelta(seconds=29)
    second = await cached.get("btc", "usd")

    assert first is second
    assert inner.calls == [("BTC", "USD")]
    assert cached.name == "counting"


async def test_entry_expires_after_ttl() -> None:
    clock = FakeClock()
    inner = CountingProvider()
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=clock)

    await cached.get("BTC", "USD")
    clock.now += timedelta(seconds=30)
    refreshed = await cached.get("BTC", "USD")

    assert refreshed.rate == Decimal(2)
    assert len(inner.calls) == 2


async def test_pairs_are_cached_separately() -> None:
    inner = CountingProvider()
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=FakeClock())

    await cached.get("BTC", "USD")
    await cached.get("BTC", "EUR")
    await cached.get("BTC", "USD")

    assert inner.calls == [("BTC", "USD"), ("BTC", "EUR")]


async def test_failures_are_not_cached() -> None:
    inner = CountingProvider(fail=True)
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=FakeClock())

    for _ in range(2):
        with pytest.raises(RateUnavailable):
            await cached.get("BTC", "USD")

    assert len(inner.calls) == 2


async def test_concurrent_misses_share_one_fetch() -> None:
    inner = CountingProvider(delay=0.05)
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=FakeClock())

    quotes = await asyncio.gather(*(cached.get("BTC", "USD") for _ in range(10)))

    assert len(inner.calls) == 1
    assert {q.rate for q in quotes} == {Decimal(1)}


async def test_clear_forgets_cached_quotes() -> None:
    inner = CountingProvider()
    cached = CachedRateProvider(inner, ttl=timedelta(seconds=30), clock=FakeClock())

    await cached.get("BTC", "USD")
    cached.clear()
    await cached.get("BTC", "USD")

    assert len(inner.calls) == 2


async def test_cache_spares_the_real_api(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    kraken = KrakenProvider(client, replay.url("kraken", "ticker_xbtusd"))
    cached = CachedRateProvider(kraken, ttl=timedelta(seconds=30), clock=FakeClock())

    for _ in range(3):
        assert (await cached.get("BTC", "USD")).rate == Decimal("100125.40000")

    assert replay.hits[("kraken", "ticker_xbtusd")] == 1


def test_negative_ttl_is_rejected() -> None:
    with pytest.raises(ValueError, match="ttl"):
        CachedRateProvider(CountingProvider(), ttl=timedelta(seconds=-1))
