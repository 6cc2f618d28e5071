"""GoPlus JSON -> RiskReport: unknown stays unknown, and no input crashes the parser."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.coach.risk import Level, MalformedReply, RiskReport, StoredReportInvalid, score
from keel.coach.risk.parsing import parse_evm, parse_result, parse_solana

EVM = "0x4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f"
MINT = "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr"

EVM_KEYS = [
    "is_honeypot",
    "buy_tax",
    "sell_tax",
    "cannot_sell_all",
    "cannot_buy",
    "owner_percent",
    "creator_percent",
    "owner_address",
    "creator_address",
    "holder_count",
    "holders",
    "lp_holders",
    "lp_holder_count",
    "dex",
    "is_open_source",
    "is_proxy",
    "is_mintable",
    "hidden_owner",
    "can_take_back_ownership",
    "owner_change_balance",
    "selfdestruct",
    "transfer_pausable",
    "is_blacklisted",
    "slippage_modifiable",
    "trust_list",
    "fake_token",
    "is_in_dex",
    "token_name",
    "token_symbol",
    "total_supply",
    "honeypot_with_same_creator",
]
SOLANA_KEYS = [
    "mintable",
    "freezable",
    "closable",
    "balance_mutable_authority",
    "metadata_mutable",
    "transfer_fee",
    "transfer_hook",
    "transfer_fee_upgradable",
    "non_transferable",
    "default_account_state",
    "creators",
    "holders",
    "lp_holders",
    "dex",
    "metadata",
    "trusted_token",
    "holder_count",
    "total_supply",
]

NESTED_KEYS = [
    "address",
    "account",
    "percent",
    "is_locked",
    "status",
    "authority",
    "fee_rate",
    "current_fee_rate",
    "scheduled_fee_rate",
    "burn_percent",
    "tvl",
    "liquidity",
    "pair",
    "id",
    "value",
    "malicious_address",
    "name",
    "symbol",
    "x",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["0", "1", "", " 1 ", "0.05", "1e999999", "-0.1", "NaN", "2", "1.5"]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.sampled_from(NESTED_KEYS),
            children,
            max_size=6,
        ),
    ),
    max_leaves=20,
)


def payloads(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), json_values, max_size=len(keys))


@settings(max_examples=300)
@given(payloads(EVM_KEYS))
def test_any_evm_payload_yields_a_report_that_scores_and_stores(payload: dict[str, Any]) -> None:
    report = parse_evm("1", EVM, payload)
    assert_sane(report)


@settings(max_examples=300)
@given(payloads(SOLANA_KEYS))
def test_any_solana_payload_yields_a_report_that_scores_and_stores(
    payload: dict[str, Any],
) -> None:
    report = parse_solana(MINT, payload)
    assert_sane(report)


@given(json_values, st.sampled_from(["1", "56", "solana"]))
def test_any_json_yields_a_report_or_malformed_reply(value: object, chain: str) -> None:
    try:
        report = parse_result(chain, MINT if chain == "solana" else EVM, value)
    except MalformedReply:
        assert not isinstance(value, dict)
        return
    assert_sane(report)


def assert_sane(report: RiskReport) -> None:
    for field in dataclasses.fields(report):
        value = getattr(report, field.name)
        if isinstance(value, Decimal):
            assert value.is_finite()
            assert value >= 0
            if field.name.endswith(("_share", "_tax", "transfer_fee", "_scheduled")):
                assert value <= 1, field.name
    result = score(report)
    assert 0 <= result.score <= 100
    assert RiskReport.from_json(report.to_json()) == report


@pytest.mark.parametrize("empty", ["", None, "  ", "yes", 2, [], {}])
def test_empty_or_odd_flags_are_unknown_not_false(empty: object) -> None:
    report = parse_evm("1", EVM, {"is_honeypot": empty, "sell_tax": empty, "owner_percent": empty})
    assert (report.is_honeypot, report.sell_tax, report.owner_share) == (None, None, None)


def test_flags_accept_strings_and_integers() -> None:
    report = parse_evm("1", EVM, {"is_honeypot": 1, "is_proxy": "0", "hidden_owner": " 1 "})
    assert (report.is_honeypot, report.is_proxy, report.hidden_owner) == (True, False, True)


def test_out_of_range_shares_are_unknown() -> None:
    report = parse_evm("1", EVM, {"sell_tax": "1.5", "buy_tax": "-0.1", "owner_percent": "NaN"})
    assert (report.sell_tax, report.buy_tax, report.owner_share) == (None, None, None)


def test_an_empty_report_is_unknown_never_low() -> None:
    for report in (RiskReport(chain="1", address=EVM), RiskReport(chain="solana", address=MINT)):
        result = score(report)
        assert result.level is Level.UNKNOWN
        assert result.known == 0
        assert result.score >= 50


def test_solana_transfer_fee_in_either_documented_unit() -> None:
    basis_points = {"current_fee_rate": {"fee_rate": "200", "maximum_fee": "5000000"}}
    fraction = {
        "current_fee_rate": {"fee_rate": "0.02"},
        "scheduled_fee_rate": [{"epoch": "700", "fee_rate": "0.6"}],
    }
    assert parse_solana(MINT, {"transfer_fee": basis_points}).transfer_fee == Decimal("0.02")
    scheduled = parse_solana(MINT, {"transfer_fee": fraction})
    assert (scheduled.transfer_fee, scheduled.transfer_fee_scheduled) == (
        Decimal("0.02"),
        Decimal("0.6"),
    )
    # A fee scheduled to 60 % already counts: holders would be trapped at that epoch.
    assert score(scheduled).reasons[0].code == "exit_tax"
    assert score(scheduled).level is Level.CRITICAL


def test_solana_authority_without_status_counts_when_someone_holds_it() -> None:
    report = parse_solana(MINT, {"mintable": {"authority": [{"address": MINT}]}, "freezable": {}})
    assert (report.mintable, report.mint_authorities) == (True, (MINT,))
    assert report.freezable is None


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {"v": 2, "chain": "1", "address": EVM},
        {"v": 1, "chain": "1"},
        {"v": 1, "chain": "1", "address": EVM, "sell_tax": 0.5},
        {"v": 1, "chain": "1", "address": EVM, "is_honeypot": "1"},
        {"v": 1, "chain": "1", "address": EVM, "mint_authorities": "abc"},
        {"v": 1, "chain": "1", "address": EVM, "buy_tax": "NaN"},
    ],
)
def test_unreadable_stored_report_is_a_typed_error(stored: object) -> None:
    with pytest.raises(StoredReportInvalid):
        RiskReport.from_json(stored)


def test_stored_report_ignores_unknown_keys() -> None:
    stored = {"v": 1, "chain": "1", "address": EVM, "sell_tax": "0.05", "from_the_future": 1}
    assert RiskReport.from_json(stored) == RiskReport(
        chain="1", address=EVM, sell_tax=Decimal("0.05")
    )
