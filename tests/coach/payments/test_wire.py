"""Amounts from providers' strings: integers in base units, never floats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.payments.adapters import wire
from keel.coach.payments.errors import MalformedResponse


@pytest.mark.parametrize(
    ("text", "decimals", "units"),
    [
        ("10", 6, 10_000_000),
        ("10.5", 6, 10_500_000),
        ("0.000001", 6, 1),
        ("0.1000000", 6, 100_000),  # trailing zeros past the decimals are exact
        (
            "123456789012345678901234567890.123456789012345678",
            18,
            123456789012345678901234567890123456789012345678,
        ),
    ],
)
def test_display_amounts_scale_exactly(text: str, decimals: int, units: int) -> None:
    assert wire.display_units(text, decimals, "amount", "test") == units


@pytest.mark.parametrize(
    "text", ["0.0000001", "1e6", "-1", "+1", " 1", "1.", ".5", "NaN", "0x10", "1,5"]
)
def test_display_amounts_refuse_what_is_not_exact(text: str) -> None:
    with pytest.raises(MalformedResponse):
        wire.display_units(text, 6, "amount", "test")


@pytest.mark.parametrize("value", [Decimal("10.0"), 10, 10.0, "10.5", "1e7", "-5", None, True])
def test_base_units_are_a_string_of_digits_only(value: object) -> None:
    with pytest.raises(MalformedResponse):
        wire.base_units(value, "amount_str", "test")


@given(st.integers(0, 10**40))
def test_base_units_round_trip(units: int) -> None:
    assert wire.base_units(str(units), "amount_str", "test") == units


def test_json_floats_are_read_as_decimal_and_refused_as_integers() -> None:
    body = wire.loads(b'{"lamports": 1.0, "big": 123456789012345678901234567890}', "test")
    assert body["lamports"] == Decimal("1.0")
    assert not isinstance(body["lamports"], float)
    with pytest.raises(MalformedResponse):
        wire.json_int(body["lamports"], "lamports", "test")
    assert wire.json_int(body["big"], "big", "test") == 123456789012345678901234567890


def test_non_finite_numbers_are_malformed() -> None:
    with pytest.raises(MalformedResponse):
        wire.loads(b'{"amount": NaN}', "test")
