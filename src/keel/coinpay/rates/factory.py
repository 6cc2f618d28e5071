"""Build the configured rate provider."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import httpx

from keel.coinpay.rates.cached import CachedRateProvider
from keel.coinpay.rates.coinbase import CoinbaseProvider
from keel.coinpay.rates.coingecko import CoinGeckoProvider
from keel.coinpay.rates.fixture import FixtureRateProvider
from keel.coinpay.rates.guarded import BreakerRateProvider
from keel.coinpay.rates.kraken import KrakenProvider
from keel.coinpay.rates.median import MedianRateProvider
from keel.coinpay.rates.model import Clock, RateProvider, utc_now

RATE_PROVIDER_KINDS = ("fixture", "live")


def build_rate_provider(
    kind: str,
    client: httpx.AsyncClient | None,
    max_age_seconds: int,
    *,
    cache_ttl_seconds: int = 30,
    min_quotes: int = 1,
    fixture_path: Path | str | None = None,
    base_urls: Mapping[str, str] | None = None,
    clock: Clock = utc_now,
) -> RateProvider:
    """``"fixture"``: offline fixed rates. ``"live"``: a cached median of CoinGecko,
    Kraken and Coinbase, dropping quotes older than ``max_age_seconds``.

    ``client`` is required for ``"live"`` (its owner closes it). ``base_urls`` may point
    a provider (by name: coingecko, kraken, coinbase) at a mirror or proxy. Raises
    ``ValueError`` for an unknown kind or a missing client.
    """
    if kind == "fixture":
        return FixtureRateProvider(fixture_path, clock=clock)
    if kind == "live":
        if client is None:
            raise ValueError("the live rate provider needs an httpx.AsyncClient")
        urls = dict(base_urls or {})
        unknown = set(urls) - {"coingecko", "kraken", "coinbase"}
        if unknown:
            raise ValueError(f"base_urls for unknown providers: {sorted(unknown)}")
        sources: list[RateProvider] = [
            CoinGeckoProvider(client, urls.get("coingecko", CoinGeckoProvider.BASE_URL)),
            KrakenProvider(client, urls.get("kraken", KrakenProvider.BASE_URL), clock=clock),
            CoinbaseProvider(client, urls.get("coinbase", CoinbaseProvider.BASE_URL), clock=clock),
        ]
        median = MedianRateProvider(
            [BreakerRateProvider(source) for source in sources],
            max_age=timedelta(seconds=max_age_seconds),
            min_quotes=min_quotes,
            clock=clock,
        )
        return CachedRateProvider(median, ttl=timedelta(seconds=cache_ttl_seconds), clock=clock)
    raise ValueError(f"unknown rate provider kind {kind!r}; expected one of {RATE_PROVIDER_KINDS}")
