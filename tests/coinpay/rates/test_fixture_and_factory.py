"""FixtureRateProvider and build_rate_provider."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates import (
    SUPPORTED_BASES,
    SUPPORTED_QUOTES,
    CachedRateProvider,
    FixtureRateProvider,
    RateProvider,
    build_rate_provider,
)

from .conftest import NOW, ReplayServer, fixed_clock


async def test_fixture_has_a_positive_decimal_rate_for_every_pair() -> None:
    provider = FixtureRateProvider(clock=fixed_clock)

    assert provider.pairs() >= {(b, q) for b in SUPPORTED_BASES for q in SUPPORTED_QUOTES}
    for base in sorted(SUPPORTED_BASES):
        for quote in sorted(SUPPORTED_QUOTES):
            answer = await provider.get(base, quote)
            assert type(answer.rate) is Decimal
            assert answer.rate > 0
            assert (answer.base, answer.quote, answer.source) == (base, quote, "fixture")
            assert answer.as_of == NOW


@pytest.mark.parametrize("stablecoin", ["USDT", "USDC"])
async def test_fixture_stablecoins_are_about_one_dollar(stablecoin: str) -> None:
    rate = (await FixtureRateProvider().get(stablecoin, "USD")).rate

    assert Decimal("0.99") <= rate <= Decimal("1.01")


async def test_fixture_rates_are_consistent_across_currencies() -> None:
    provider = FixtureRateProvider()
    btc_usd = (await provider.get("BTC", "USD")).rate
    btc_jpy = (await provider.get("BTC", "JPY")).rate

    assert 100 < btc_jpy / btc_usd < 200  # yen per dollar


async def test_fixture_reads_a_given_file(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text('{"btc": {"usd": "50000.123456789"}}')
    provider = FixtureRateProvider(path)

    answer = await provider.get("BTC", "usd")

    assert str(answer.rate) == "50000.123456789"
    with pytest.raises(RateUnavailable, match="ETH/USD"):
        await provider.get("ETH", "USD")


@pytest.mark.parametrize(
    "content",
    ['{"BTC": {"USD": 50000.5}}', '{"BTC": {"USD": "-1"}}', '{"BTC": "50000"}', "[]", "{oops"],
)
def test_fixture_rejects_a_malformed_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "rates.json"
    path.write_text(content)

    with pytest.raises(ValueError, match=str(path)):
        FixtureRateProvider(path)


async def test_factory_builds_the_offline_fixture_provider() -> None:
    provider = build_rate_provider("fixture", None, max_age_seconds=120, clock=fixed_clock)

    assert isinstance(provider, FixtureRateProvider)
    assert (await provider.get("ETH", "EUR")).as_of == NOW


async def test_factory_live_provider_is_a_cached_median_of_three(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider: RateProvider = build_rate_provider(
        "live",
        client,
        max_age_seconds=120,
        base_urls={
            "coingecko": replay.url("coingecko", "simple_price_btc_usd"),
            "kraken": replay.url("kraken", "ticker_xbtusd"),
            "coinbase": replay.url("coinbase", "spot_btc_usd"),
        },
        clock=fixed_clock,
    )

    first = await provider.get("BTC", "USD")
    second = await provider.get("BTC", "USD")

    assert isinstance(provider, CachedRateProvider)
    assert first is second
    assert first.rate == Decimal("100125.40000")
    assert first.source == "median(coingecko,kraken,coinbase)"
    assert sum(replay.hits.values()) == 3


@pytest.mark.parametrize(
    ("kind", "client_given", "extra", "message"),
    [
        ("live", False, {}, "AsyncClient"),
        ("bogus", False, {}, "unknown rate provider kind"),
        ("live", True, {"base_urls": {"binance": "http://x"}}, "unknown providers"),
    ],
)
async def test_factory_rejects_bad_configuration(
    client: httpx.AsyncClient,
    kind: str,
    client_given: bool,
    extra: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        build_rate_provider(kind, client if client_given else None, 120, **extra)  # type: ignore[arg-type]
