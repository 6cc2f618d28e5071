"""Exchange rates: how many units of fiat one whole crypto unit is worth.

A payment's fiat amount is converted at a rate frozen on the payment. Rates come from
providers behind one interface, ``RateProvider``; build the configured one with
``build_rate_provider``. Every rate is a ``Decimal``: provider JSON is parsed with
``parse_float=Decimal`` and no float is ever produced.
"""

from keel.coinpay.rates.cached import CachedRateProvider
from keel.coinpay.rates.coinbase import CoinbaseProvider
from keel.coinpay.rates.coingecko import COINGECKO_IDS, CoinGeckoProvider
from keel.coinpay.rates.factory import RATE_PROVIDER_KINDS, build_rate_provider
from keel.coinpay.rates.fixture import FixtureRateProvider
from keel.coinpay.rates.kraken import KrakenProvider
from keel.coinpay.rates.median import MedianRateProvider, median
from keel.coinpay.rates.model import (
    SUPPORTED_BASES,
    SUPPORTED_QUOTES,
    Clock,
    Quote,
    RateProvider,
    check_pair,
    utc_now,
)

__all__ = [
    "COINGECKO_IDS",
    "RATE_PROVIDER_KINDS",
    "SUPPORTED_BASES",
    "SUPPORTED_QUOTES",
    "CachedRateProvider",
    "Clock",
    "CoinGeckoProvider",
    "CoinbaseProvider",
    "FixtureRateProvider",
    "KrakenProvider",
    "MedianRateProvider",
    "Quote",
    "RateProvider",
    "build_rate_provider",
    "check_pair",
    "median",
    "utc_now",
]
