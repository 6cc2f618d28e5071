"""MedianRateProvider: concurrency, staleness, min_quotes and the median itself."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates import (
    CoinbaseProvider,
    CoinGeckoProvider,
    KrakenProvider,
    MedianRateProvider,
    Quote,
    RateProvider,
    median,
)

from .conftest import NOW, ReplayServer, fixed_clock


class StaticProvider:
    """An in-process provider answering one fixed rate (or failing)."""

    def __init__(
        self,
        name: str,
        rate: str | Decimal | None,
        as_of: datetime = NOW,
        delay: float = 0,
    ) -> None:
        self.name = name
        self._rate = rate
        self._as_of = as_of
        self._delay = delay

    async def get(self, base: str, quote: str) -> Quote:
        await asyncio.sleep(self._delay)
        if self._rate is None:
            raise RateUnavailable(f"{self.name}: down")
        return Quote(base, quote, Decimal(self._rate), self.name, self._as_of)


class BrokenProvider:
    name = "broken"

    async def get(self, base: str, quote: str) -> Quote:
        raise KeyError("bug in a provider")


async def test_median_of_three_replayed_providers_drops_failing_and_stale(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    providers: list[RateProvider] = [
        CoinGeckoProvider(client, replay.url("coingecko", "simple_price_btc_usd_lagging")),
        KrakenProvider(
            client,
            replay.url("kraken", "ticker_xbtusd_service_unavailable"),
            clock=fixed_clock,
        ),
        CoinbaseProvider(client, replay.url("coinbase", "spot_btc_usd"), clock=fixed_clock),
    ]
    rates = MedianRateProvider(providers, max_age=timedelta(minutes=2), clock=fixed_clock)

    quote = await rates.get("BTC", "USD")

    assert quote.rate == Decimal("100118.795")
    assert type(quote.rate) is Decimal
    assert quote.source == "median(coinbase)"
    assert quote.as_of == NOW


async def test_median_of_three_fresh_replayed_providers_is_the_middle_one(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    providers: list[RateProvider] = [
        CoinGeckoProvider(client, replay.url("coingecko", "simple_price_btc_usd")),
        KrakenProvider(client, replay.url("kraken", "ticker_xbtusd"), clock=fixed_clock),
        CoinbaseProvider(client, replay.url("coinbase", "spot_btc_usd"), clock=fixed_clock),
    ]
    rates = MedianRateProvider(providers, max_age=timedelta(minutes=2), clock=fixed_clock)

    quote = await rates.get("BTC", "USD")

    assert quote.rate == Decimal("100125.40000")
    assert quote.source == "median(coingecko,kraken,coinbase)"
    assert quote.as_of == NOW - timedelta(seconds=15)  # coingecko's, the oldest


async def test_min_quotes_not_met_names_every_dropped_provider(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    providers: list[RateProvider] = [
        CoinGeckoProvider(client, replay.url("coingecko", "simple_price_btc_usd_lagging")),
        KrakenProvider(client, replay.url("kraken", "ticker_xbtusd_service_unavailable")),
        CoinbaseProvider(client, replay.url("coinbase", "spot_btc_usd"), clock=fixed_clock),
    ]
    rates = MedianRateProvider(
        providers, max_age=timedelta(minutes=2), min_quotes=2, clock=fixed_clock
    )

    with pytest.raises(RateUnavailable) as caught:
        await rates.get("BTC", "USD")

    detail = caught.value.detail
    assert "1 fresh quote(s), need 2" in detail
    assert "coingecko: stale" in detail
    assert "kraken: RateUnavailable: kraken: EService:Unavailable" in detail
    assert "coinbase" not in detail.split("need 2;")[1]
    assert isinstance(caught.value.__cause__, ExceptionGroup)


async def test_even_count_gives_mean_of_two_middle_rates() -> None:
    providers = [
        StaticProvider(n, r) for n, r in [("a", "10"), ("b", "13"), ("c", "11"), ("d", "40")]
    ]
    rates = MedianRateProvider(providers, max_age=timedelta(seconds=60), clock=fixed_clock)

    quote = await rates.get("ETH", "EUR")

    assert quote.rate == Decimal("12")
    assert type(quote.rate) is Decimal
    assert quote.source == "median(a,b,c,d)"


async def test_quote_exactly_max_age_old_is_fresh_and_older_is_stale() -> None:
    limit = timedelta(seconds=60)
    providers = [
        StaticProvider("edge", "100", as_of=NOW - limit),
        StaticProvider("old", "999", as_of=NOW - limit - timedelta(microseconds=1)),
    ]
    rates = MedianRateProvider(providers, max_age=limit, clock=fixed_clock)

    quote = await rates.get("BTC", "USD")

    assert (quote.rate, quote.source, quote.as_of) == (Decimal(100), "median(edge)", NOW - limit)


async def test_unexpected_provider_exception_counts_as_a_failure() -> None:
    rates = MedianRateProvider(
        [BrokenProvider(), StaticProvider("ok", "5")],
        max_age=timedelta(seconds=60),
        clock=fixed_clock,
    )

    assert (await rates.get("BTC", "USD")).rate == Decimal(5)


async def test_all_failing_is_unavailable() -> None:
    rates = MedianRateProvider(
        [StaticProvider("a", None), BrokenProvider()], max_age=timedelta(seconds=60)
    )

    with pytest.raises(RateUnavailable, match=r"0 fresh quote\(s\).*a: .*down.*broken: KeyError"):
        await rates.get("BTC", "USD")


async def test_providers_are_asked_concurrently() -> None:
    providers = [StaticProvider(str(i), "1", delay=0.2) for i in range(5)]
    rates = MedianRateProvider(providers, max_age=timedelta(seconds=60), clock=fixed_clock)

    loop = asyncio.get_running_loop()
    started = loop.time()
    await rates.get("BTC", "USD")

    assert loop.time() - started < 0.6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"providers": []}, "at least one"),
        ({"min_quotes": 0}, "min_quotes"),
        ({"min_quotes": 3}, "min_quotes"),
        ({"max_age": timedelta(0)}, "max_age"),
    ],
)
def test_invalid_configuration_is_rejected(kwargs: dict[str, object], message: str) -> None:
    config: dict[str, object] = {
        "providers": [StaticProvider("a", "1"), StaticProvider("b", "1")],
        "max_age": timedelta(seconds=60),
    }
    config.update(kwargs)
    with pytest.raises(ValueError, match=message):
        MedianRateProvider(**config)  # type: ignore[arg-type]


rates_strategy = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=Decimal("10000000"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=150, deadline=None)
@given(
    fresh=st.lists(rates_strategy, min_size=1, max_size=7),
    stale=st.lists(rates_strategy, max_size=3),
)
def test_median_is_sorted_middle_of_fresh_quotes_and_within_their_range(
    fresh: list[Decimal], stale: list[Decimal]
) -> None:
    max_age = timedelta(seconds=60)
    providers = [StaticProvider(f"f{i}", r) for i, r in enumerate(fresh)] + [
        StaticProvider(f"s{i}", r, as_of=NOW - timedelta(minutes=5)) for i, r in enumerate(stale)
    ]
    rates = MedianRateProvider(providers, max_age=max_age, clock=fixed_clock)

    quote = asyncio.run(rates.get("BTC", "USD"))

    ordered = sorted(fresh)
    n = len(ordered)
    middle = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    assert type(quote.rate) is Decimal
    assert min(fresh) <= quote.rate <= max(fresh)
    assert quote.rate == middle == median(fresh)


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        median([])
