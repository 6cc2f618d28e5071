"""Risk scores from recorded GoPlus replies, through the real client over real HTTP.

Each row: the recording, the token as a user would paste it, and the expected score, level
and reasons. The Solana rows only pass when the client calls the Solana endpoint: the replay
server answers nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from keel.coach.risk import Level, RiskReport, RiskScore, score

from .conftest import GoPlusFactory


@dataclass(frozen=True)
class Row:
    recording: str
    chain: str | None  # as the user typed it
    address: str  # as the user pasted it
    score: int
    level: Level
    reasons: set[str]  # these codes, at least
    absent: set[str] = frozenset()  # type: ignore[assignment]


TABLE = [
    Row(
        "evm_honeypot",
        None,
        "0x9C2E5D8F1A4B7C0E3D6F9A2B5C8E1D4F7A0B3C6D",  # upper case: canonicalised
        100,
        Level.CRITICAL,
        {"honeypot", "exit_tax", "creator_made_honeypots", "lp_unlocked", "transfer_pausable"},
    ),
    Row(
        "evm_high_tax_bsc",
        "bsc",
        "0x7e3a9b1c5d2f8e4a6b0c9d3e7f1a5b2c8d4e6f0a",
        75,  # sell 35 + buy 10 + tax modifiable 15 + owner 10 + LP 62 % locked 5
        Level.HIGH,
        {"exit_tax", "buy_tax", "tax_modifiable", "owner_share", "lp_partly_locked"},
        {"creator_share", "unknown", "top10_share"},  # owner is creator: counted once
    ),
    Row(
        "evm_clean",
        "eth",
        "0x4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f",
        0,  # first LP holder unlocked, 95 % of LP locked or burned in all
        Level.LOW,
        set(),
        {"lp_unlocked", "lp_partly_locked", "unknown", "top10_share"},
    ),
    Row(
        "evm_unknown",
        "base",
        "0x0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a69788796",
        60,  # nothing known: every key check's unknown points
        Level.UNKNOWN,
        {"unknown"},
    ),
    Row(
        "solana_mint_freeze",
        None,
        "6anbDQNCcVh2f6okexjaX1VGj6tEnizJ1kV5UTBS8Zhi",
        75,  # freeze 25 + mint 20 + mutable metadata 5 + no LP burned 25
        Level.HIGH,
        {"freeze_authority", "mint_authority", "metadata_mutable", "lp_unlocked"},
        {"top10_share", "unknown"},  # the Raydium authority's 31 % is the pool
    ),
    Row(
        "solana_clean",
        "sol",
        "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr",
        0,
        Level.LOW,
        set(),
        {"unknown"},
    ),
    Row(
        "solana_trusted",
        None,
        "B1rADWGjAKbZYVHMYhS5ZKyMbqFB65vmNNxUXdgFBoh3",
        25,  # freeze 25 + mint 20 + metadata 5 + LP unknown 5 - trusted 30
        Level.MEDIUM,
        {"freeze_authority", "mint_authority", "trusted", "unknown"},
    ),
]


@pytest.mark.parametrize("row", TABLE, ids=[row.recording for row in TABLE])
async def test_recorded_reply_scores_as_the_table_says(
    row: Row, goplus: GoPlusFactory, replay: object
) -> None:
    report = await goplus(row.recording).scan(row.chain, row.address)
    result = score(report)

    codes = {reason.code for reason in result.reasons}
    assert (result.score, result.level) == (row.score, row.level), result.reasons
    assert row.reasons <= codes
    assert not row.absent & codes
    assert_points_add_up(result)


def assert_points_add_up(result: RiskScore) -> None:
    assert result.score == max(0, min(100, sum(reason.points for reason in result.reasons)))


async def test_honeypot_report_carries_every_evm_field(goplus: GoPlusFactory) -> None:
    report = await goplus("evm_honeypot").scan("1", "0x9c2e5d8f1a4b7c0e3d6f9a2b5c8e1d4f7a0b3c6d")

    assert report.address == "0x9c2e5d8f1a4b7c0e3d6f9a2b5c8e1d4f7a0b3c6d"
    assert (report.name, report.symbol, report.holder_count) == ("Moon Safe Inu", "MSI", 412)
    assert report.is_honeypot is True
    assert report.cannot_sell_all is False
    assert (report.buy_tax, report.sell_tax) == (Decimal(0), Decimal(1))
    assert report.owner_share == Decimal("0.081200")
    assert report.owner_address == report.creator_address
    assert report.honeypot_with_same_creator is True
    assert (report.transfer_pausable, report.is_blacklisted, report.mintable) == (True,) * 3
    assert report.lp_locked_share == 0
    # The pair's 64 % is the pool; the creator and two wallets hold the rest.
    assert report.top10_share == Decimal("0.1022")
    assert report.dex_liquidity_usd == Decimal("18734.21")
    assert report.freezable is None  # an EVM token has no freeze authority field


async def test_clean_evm_lp_lock_is_summed_over_every_lp_holder(goplus: GoPlusFactory) -> None:
    report = await goplus("evm_clean").scan("1", "0x4a1f0e2b7c3d9e8f6a5b4c3d2e1f0a9b8c7d6e5f")

    # The first LP holder (4.23 %) is unlocked: the original flagged this token for it.
    # UNCX's lock (55.31 %) and the dead address (40.12 %, burned though not "locked") count.
    assert report.lp_locked_share == Decimal("0.9543")
    # Pool (18.2 %), Team Finance lock (10 %) and the dead address (5.1 %) are left out.
    assert report.top10_share == Decimal("0.129")
    assert report.owner_share == 0
    assert report.trusted is None  # trust_list not sent: unknown, not "untrusted"


async def test_solana_report_reads_authorities_and_pools(goplus: GoPlusFactory) -> None:
    report = await goplus("solana_mint_freeze").scan(
        "solana", "6anbDQNCcVh2f6okexjaX1VGj6tEnizJ1kV5UTBS8Zhi"
    )

    assert report.is_solana
    assert (report.name, report.symbol) == ("Rocket Frog", "ROKF")
    assert report.mintable is True
    assert report.mint_authorities == ("Borqy3dEjw9az7Uj9nW69A9ZDansFGHWEggUx7tkv44f",)
    assert report.freezable is True
    assert report.freeze_authorities == report.mint_authorities
    assert (report.closable, report.balance_mutable, report.transfer_hook) == (False,) * 3
    assert report.transfer_fee == 0
    assert (report.non_transferable, report.default_frozen) == (False, False)
    assert report.creator_malicious is False
    assert report.top10_share == Decimal("0.497")
    assert report.lp_locked_share == 0
    assert report.is_honeypot is None  # no honeypot simulation on Solana


async def test_solana_lp_burn_is_weighted_over_pools_that_report_it(
    goplus: GoPlusFactory,
) -> None:
    report = await goplus("solana_clean").scan(None, "DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr")

    # Raydium reports 100 % burned; Orca's concentrated pool has no LP token to burn.
    assert report.lp_locked_share == 1
    assert report.dex_liquidity_usd == Decimal("1004210.55")


def test_report_round_trips_through_json() -> None:
    report = RiskReport(
        chain="solana",
        address="DYougPS3ao5Ticdy5bFcKKcXgSjHVJ2yuwaMgxHpPoQr",
        mintable=True,
        mint_authorities=("Borqy3dEjw9az7Uj9nW69A9ZDansFGHWEggUx7tkv44f",),
        transfer_fee=Decimal("0.0200"),
    )
    assert RiskReport.from_json(report.to_json()) == report
