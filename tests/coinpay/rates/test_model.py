"""Quote invariants, pair validation and float-free number parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from keel.coinpay.errors import RateUnavailable, UnsupportedCoin, UnsupportedCurrency
from keel.coinpay.rates import Quote, check_pair
from keel.coinpay.rates._http import loads_decimal
from keel.coinpay.rates.model import parse_rate

from .conftest import NOW


def test_quote_rejects_a_float_rate() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        Quote("BTC", "USD", 97250.5, "test", NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", ["0", "-1", "NaN", "Infinity"])
def test_quote_rejects_non_positive_or_non_finite_rate(rate: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        Quote("BTC", "USD", Decimal(rate), "test", NOW)


def test_quote_rejects_naive_as_of() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Quote("BTC", "USD", Decimal(1), "test", datetime(2025, 1, 15, 12, 0))


def test_quote_rejects_lower_case_symbols() -> None:
    with pytest.raises(ValueError, match="upper-case"):
        Quote("btc", "USD", Decimal(1), "test", NOW)


def test_quote_normalises_as_of_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    quote = Quote("BTC", "USD", Decimal(1), "test", datetime(2025, 1, 15, 14, 0, tzinfo=plus_two))

    assert quote.as_of == NOW
    assert quote.as_of.tzinfo is UTC


def test_check_pair_upper_cases_supported_symbols() -> None:
    assert check_pair(" btc ", "eur") == ("BTC", "EUR")


def test_check_pair_rejects_unknown_coin_and_currency() -> None:
    with pytest.raises(UnsupportedCoin):
        check_pair("FOO", "USD")
    with pytest.raises(UnsupportedCurrency):
        check_pair("BTC", "XYZ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("97250.10", "97250.10"), (Decimal("0.000001"), "0.000001"), (15712345, "15712345")],
)
def test_parse_rate_accepts_strings_decimals_and_ints(value: object, expected: str) -> None:
    rate = parse_rate("test", value)

    assert type(rate) is Decimal
    assert str(rate) == expected


@pytest.mark.parametrize("value", [1.5, True, None, "abc", "", "0", "-3.2", "NaN", "Infinity", []])
def test_parse_rate_rejects_floats_and_non_positive_values(value: object) -> None:
    with pytest.raises(RateUnavailable):
        parse_rate("test", value)


def test_json_numbers_parse_to_decimal_never_float() -> None:
    data = loads_decimal('{"a": 0.1, "b": 1e-8, "c": 3}')

    assert data == {"a": Decimal("0.1"), "b": Decimal("1e-8"), "c": 3}
    assert isinstance(data, dict)
    assert not any(isinstance(v, float) for v in data.values())


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_rejected(constant: str) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        loads_decimal(f'{{"usd": {constant}}}')
