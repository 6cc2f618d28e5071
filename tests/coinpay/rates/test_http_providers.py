"""CoinGecko, Kraken and Coinbase against recorded responses replayed over real HTTP."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from keel.coinpay.errors import RateUnavailable
from keel.coinpay.rates import CoinbaseProvider, CoinGeckoProvider, KrakenProvider, Quote

from .conftest import NOW, ReplayServer, fixed_clock


def assert_exact(quote: Quote, rate: str) -> None:
    assert type(quote.rate) is Decimal
    assert quote.rate == Decimal(rate)
    assert str(quote.rate) == rate  # digit for digit: never went through a float


# --- CoinGecko -------------------------------------------------------------------------


async def test_coingecko_parses_price_and_last_updated_at(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinGeckoProvider(client, replay.url("coingecko", "simple_price_btc_usd"))

    quote = await provider.get("BTC", "USD")

    assert_exact(quote, "100131.27")
    assert (quote.base, quote.quote, quote.source) == ("BTC", "USD", "coingecko")
    assert quote.as_of == datetime(2025, 1, 15, 11, 59, 45, tzinfo=UTC)
    assert replay.hits[("coingecko", "simple_price_btc_usd")] == 1


async def test_coingecko_accepts_lower_case_symbols_and_integer_prices(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinGeckoProvider(client, replay.url("coingecko", "simple_price_btc_jpy"))

    quote = await provider.get("btc", "jpy")

    assert_exact(quote, "15712345")
    assert (quote.base, quote.quote) == ("BTC", "JPY")


async def test_coingecko_maps_pol_to_polygon_ecosystem_token(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinGeckoProvider(client, replay.url("coingecko", "simple_price_pol_eur"))

    assert_exact(await provider.get("POL", "EUR"), "0.4519823")


async def test_coingecko_rate_limit_429_is_unavailable_with_cause(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinGeckoProvider(client, replay.url("coingecko", "rate_limited"))

    with pytest.raises(RateUnavailable, match="HTTP 429") as caught:
        await provider.get("BTC", "USD")

    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)
    assert caught.value.extra["status"] == 429


async def test_coingecko_empty_answer_for_a_coin_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinGeckoProvider(client, replay.url("coingecko", "simple_price_unknown_id"))

    with pytest.raises(RateUnavailable, match="binancecoin"):
        await provider.get("BNB", "CHF")


# --- Kraken ----------------------------------------------------------------------------


async def test_kraken_parses_last_trade_price_under_legacy_key(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = KrakenProvider(client, replay.url("kraken", "ticker_xbtusd"), clock=fixed_clock)

    quote = await provider.get("BTC", "USD")

    assert_exact(quote, "100125.40000")
    assert (quote.base, quote.quote, quote.source, quote.as_of) == ("BTC", "USD", "kraken", NOW)


async def test_kraken_maps_doge_to_xdg_and_reads_plain_key(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = KrakenProvider(client, replay.url("kraken", "ticker_xdgusd"), clock=fixed_clock)

    assert_exact(await provider.get("DOGE", "USD"), "0.3548000")


@pytest.mark.parametrize(
    ("recording", "base", "quote", "message"),
    [
        ("ticker_unknown_pair", "BNB", "CHF", "EQuery:Unknown asset pair"),
        ("ticker_xbtusd_service_unavailable", "BTC", "USD", "EService:Unavailable"),
    ],
)
async def test_kraken_error_array_is_unavailable(
    replay: ReplayServer,
    client: httpx.AsyncClient,
    recording: str,
    base: str,
    quote: str,
    message: str,
) -> None:
    provider = KrakenProvider(client, replay.url("kraken", recording))

    with pytest.raises(RateUnavailable, match=message):
        await provider.get(base, quote)


async def test_kraken_truncated_body_is_unavailable_with_cause(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = KrakenProvider(client, replay.url("kraken", "ticker_xbtusd_truncated"))

    with pytest.raises(RateUnavailable, match="malformed JSON") as caught:
        await provider.get("BTC", "USD")

    assert isinstance(caught.value.__cause__, ValueError)


async def test_kraken_response_slower_than_timeout_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = KrakenProvider(client, replay.url("kraken", "ticker_xbtusd_slow"), timeout=0.1)

    with pytest.raises(RateUnavailable, match="request failed") as caught:
        await provider.get("BTC", "USD")

    assert isinstance(caught.value.__cause__, httpx.TimeoutException | TimeoutError)


# --- Coinbase --------------------------------------------------------------------------


async def test_coinbase_parses_spot_amount(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_btc_usd"), clock=fixed_clock)

    quote = await provider.get("BTC", "USD")

    assert_exact(quote, "100118.795")
    assert (quote.base, quote.quote, quote.source, quote.as_of) == ("BTC", "USD", "coinbase", NOW)


async def test_coinbase_keeps_every_digit_of_a_long_amount(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_eth_gbp"))

    assert_exact(await provider.get("ETH", "GBP"), "2687.3100000000000000")


async def test_coinbase_404_json_error_is_unavailable_with_cause(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_not_found"))

    with pytest.raises(RateUnavailable, match=r"HTTP 404.*Invalid currency") as caught:
        await provider.get("BNB", "CHF")

    assert isinstance(caught.value.__cause__, httpx.HTTPStatusError)


async def test_coinbase_502_html_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_bad_gateway"))

    with pytest.raises(RateUnavailable, match="HTTP 502"):
        await provider.get("BTC", "USD")


async def test_coinbase_html_body_with_200_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_maintenance_page"))

    with pytest.raises(RateUnavailable, match="malformed JSON"):
        await provider.get("BTC", "USD")


async def test_coinbase_answer_for_another_currency_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_wrong_currency"))

    with pytest.raises(RateUnavailable, match="asked for BTC-EUR, answered BTC-USD"):
        await provider.get("BTC", "EUR")


async def test_coinbase_zero_amount_is_unavailable(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    provider = CoinbaseProvider(client, replay.url("coinbase", "spot_zero_amount"))

    with pytest.raises(RateUnavailable, match="not positive"):
        await provider.get("USDC", "USD")


# --- Shared behaviour ------------------------------------------------------------------


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("provider_type", [CoinGeckoProvider, KrakenProvider, CoinbaseProvider])
async def test_connection_refused_is_unavailable_with_transport_cause(
    client: httpx.AsyncClient,
    provider_type: type[CoinGeckoProvider | KrakenProvider | CoinbaseProvider],
) -> None:
    provider = provider_type(client, _closed_port_url(), timeout=1.0)

    with pytest.raises(RateUnavailable, match="request failed") as caught:
        await provider.get("BTC", "USD")

    assert isinstance(caught.value.__cause__, httpx.TransportError)


@pytest.mark.parametrize("provider_type", [CoinGeckoProvider, KrakenProvider, CoinbaseProvider])
@pytest.mark.parametrize(("base", "quote"), [("FOO", "USD"), ("BTC", "XYZ"), ("../BTC", "USD")])
async def test_unsupported_pair_is_unavailable_without_a_request(
    replay: ReplayServer,
    client: httpx.AsyncClient,
    provider_type: type[CoinGeckoProvider | KrakenProvider | CoinbaseProvider],
    base: str,
    quote: str,
) -> None:
    provider = provider_type(client, f"{replay.base}/nothing/recorded")

    with pytest.raises(RateUnavailable, match="no rate for"):
        await provider.get(base, quote)

    assert replay.unmatched == []
    assert not replay.hits
