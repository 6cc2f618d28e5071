"""Exact unit arithmetic and the coins coach sells through coinpay."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.billing import coins
from keel.coach.billing.errors import UnsupportedCoin


@given(st.integers(min_value=0, max_value=10**40), st.sampled_from([0, 6, 8, 9, 18]))
def test_units_round_trip_through_text_exactly(units: int, decimals: int) -> None:
    text = coins.format_units(units, decimals)
    assert coins.to_units(Decimal(text), decimals) == units


def test_an_amount_finer_than_a_base_unit_is_refused() -> None:
    assert coins.to_units(Decimal("0.003846153846153846"), 18) == 3846153846153846
    assert coins.to_units(Decimal("1E-6"), 6) == 1
    assert coins.to_units(Decimal("12.50"), 2) == 1250
    for bad in ("0.0000001", "-1", "NaN", "Infinity"):
        with pytest.raises(ValueError, match=r"decimals|payable"):
            coins.to_units(Decimal(bad), 6)


def test_a_coin_is_named_by_coinpays_code_and_stored_as_chain_and_asset() -> None:
    usdc = coins.get("usdc_sol")
    assert (usdc.code, usdc.chain, usdc.asset, usdc.decimals) == ("USDC_SOL", "SOL", "USDC", 6)
    assert coins.of("SOL", "USDC") == usdc
    assert coins.get("USDT_BNB").decimals == 18  # token decimals are the chain's
    with pytest.raises(UnsupportedCoin):
        coins.get("XRP")  # needs a destination tag, which an invoice cannot hold
    with pytest.raises(UnsupportedCoin):
        coins.of("TRON", "USDT")
