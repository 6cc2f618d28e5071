from __future__ import annotations

import contextlib
import json
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coinpay.errors import InvalidAmount, UnsupportedCurrency
from keel.coinpay.money import (
    covers,
    crypto_for_fiat,
    format_units,
    parse_fiat,
    parse_units,
    units_of,
)

EXACT = Context(prec=100)  # the default 28 digits would round the amounts under test
decimals = st.sampled_from([0, 6, 8, 9, 18])
fiat = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000000000"), places=2)
rates = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=6)


@given(st.integers(min_value=0, max_value=10**40), decimals)
def test_formatting_then_parsing_base_units_is_identity(units: int, places: int) -> None:
    assert parse_units(format_units(units, places), places) == units


@given(fiat, rates, decimals)
def test_crypto_amount_covers_the_fiat_and_is_the_smallest_that_does(
    amount: Decimal, rate: Decimal, places: int
) -> None:
    units = crypto_for_fiat(amount, rate, places)
    with localcontext(prec=200):  # the default 28 digits would round the check itself
        scale = Decimal(10) ** places
        assert Decimal(units) * rate >= amount * scale
        assert Decimal(units - 1) * rate < amount * scale


@given(st.integers(min_value=1, max_value=10**30), st.decimals(min_value=0, max_value=99, places=3))
def test_tolerance_accepts_exactly_the_allowed_shortfall(expected: int, tolerance: Decimal) -> None:
    # The smallest acceptable amount, computed independently: ceil(expected * (100 - tol) / 100).
    numerator = expected * int((100 - tolerance) * 1000)
    minimum = -(-numerator // 100_000)
    assert covers(minimum, expected, tolerance)
    assert not covers(minimum - 1, expected, tolerance)
    assert covers(expected, expected, tolerance)


@given(st.text(max_size=30))
def test_parse_units_never_raises_anything_but_invalid_amount(text: str) -> None:
    with contextlib.suppress(InvalidAmount):
        parse_units(text, 8)


@pytest.mark.parametrize("bad", ["-1", "1e5", "0.123456789", "1,5", "", "NaN", "+2"])
def test_parse_units_rejects_what_is_not_exact(bad: str) -> None:
    with pytest.raises(InvalidAmount):
        parse_units(bad, 8)


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        (Decimal("-5"), "USD", InvalidAmount),
        (Decimal("0"), "USD", InvalidAmount),
        (Decimal("1e12"), "USD", InvalidAmount),
        (Decimal("1.001"), "USD", InvalidAmount),
        (Decimal("1.5"), "JPY", InvalidAmount),
        (Decimal("10"), "XYZ", UnsupportedCurrency),
    ],
)
def test_bad_fiat_amounts_are_refused(amount: Decimal, currency: str, error: type) -> None:
    with pytest.raises(error):
        parse_fiat(amount, currency)


def test_usdt_uses_each_chains_decimals() -> None:
    from keel.coinpay.assets import COINS

    assert COINS["USDT_ETH"].decimals == 6
    assert COINS["USDT_BNB"].decimals == 18
    assert crypto_for_fiat(Decimal("10"), Decimal("1"), COINS["USDT_ETH"].decimals) == 10_000_000
    assert crypto_for_fiat(Decimal("10"), Decimal("1"), COINS["USDT_BNB"].decimals) == 10 * 10**18


@given(st.integers(min_value=0, max_value=10**40), decimals)
def test_a_node_s_decimal_amount_is_exactly_its_base_units(units: int, places: int) -> None:
    # As a UTXO node writes it (fixed decimals, e.g. 1.23456789) and read back from JSON.
    coins = Decimal(units).scaleb(-places, context=EXACT)
    written = format(coins, "f") if places else str(units)
    read = json.loads(f'{{"value": {written}}}', parse_float=Decimal)["value"]
    assert units_of(read, places) == units
    assert units_of(coins, places) == units


@given(st.integers(min_value=0, max_value=10**20), st.integers(min_value=1, max_value=9), decimals)
def test_an_amount_finer_than_the_base_unit_is_refused(units: int, digit: int, places: int) -> None:
    finer = EXACT.add(Decimal(units).scaleb(-places), Decimal(digit).scaleb(-places - 1))
    with pytest.raises(InvalidAmount, match="decimal places"):
        units_of(finer, places)


@given(st.one_of(st.floats(), st.booleans(), st.text(max_size=10), st.none()))
def test_units_of_refuses_anything_but_int_and_decimal(value: object) -> None:
    with pytest.raises(InvalidAmount):
        units_of(value, 8)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [Decimal("-1E-8"), Decimal("NaN"), Decimal("Infinity"), Decimal("1E+78"), -1]
)
def test_units_of_refuses_negative_non_finite_and_huge_amounts(bad: Decimal | int) -> None:
    with pytest.raises(InvalidAmount):
        units_of(bad, 8)
