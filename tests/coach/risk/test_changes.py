"""/watch: a re-scanned token alerts on what a holder cares about, and only then."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from keel.coach.risk import (
    Change,
    Level,
    RiskRadar,
    RiskReport,
    Severity,
    diff,
    format_alert,
    score,
)
from keel.core.cache import MemoryCache
from tests.replay import ReplayServer

from .conftest import GoPlusFactory

RUG = "0x5a5b5c5d5e5f60616263646566676869707172ab"
MINT = "2TMQJaNWpzQpTAmDnJDnMfcq1Utvia5s673TmFJpMt7w"


def by_code(changes: list[Change]) -> dict[str, Change]:
    return {change.code: change for change in changes}


async def test_watched_evm_token_alerts_when_sell_tax_rises_and_lp_unlocks(
    goplus: GoPlusFactory, replay: ReplayServer
) -> None:
    # The recording answers the same token three times: as watched, unchanged, then rugged.
    radar = RiskRadar(goplus("watch_evm_rug"), MemoryCache(), ttl_seconds=300)
    watched, _ = await radar.scan(None, RUG)
    stored = watched.to_json()  # what coach_watches.report keeps

    unchanged, _ = await radar.scan(None, RUG, fresh=True)
    assert diff(RiskReport.from_json(stored), unchanged) == []

    rugged, rugged_score = await radar.scan(None, RUG, fresh=True)
    changes = diff(RiskReport.from_json(stored), rugged)

    found = by_code(changes)
    assert set(found) == {"sell_tax", "lp_locked_share", "level"}
    assert found["lp_locked_share"].severity is Severity.DANGER
    assert found["lp_locked_share"].describe() == "🚨 Locked liquidity fell from 90% to 0%"
    assert found["sell_tax"].describe() == "⚠️ The sell tax rose from 2% to 45%"
    assert found["level"].text == "Risk level changed from LOW to HIGH"
    assert changes[0].severity is Severity.DANGER  # most serious first
    assert rugged_score.level is Level.HIGH
    assert replay.hits[("goplus", "watch_evm_rug")] == 3


async def test_watched_solana_token_alerts_when_a_mint_authority_appears(
    goplus: GoPlusFactory,
) -> None:
    radar = RiskRadar(goplus("watch_solana_mint"), MemoryCache(), ttl_seconds=0)
    before, _ = await radar.scan("solana", MINT)
    same, _ = await radar.scan("solana", MINT)
    after, after_score = await radar.scan("solana", MINT)

    assert diff(before, same) == []
    changes = diff(before, after)
    assert [change.describe() for change in changes] == ["⚠️ A mint authority appeared"]
    alert = format_alert(after, changes, after_score)
    assert "Lantern (LNTN)" in alert
    assert "A mint authority appeared" in alert


BASE = RiskReport(
    chain="1",
    address=RUG,
    is_honeypot=False,
    cannot_sell_all=False,
    buy_tax=Decimal("0.01"),
    sell_tax=Decimal("0.02"),
    owner_address="0x2468ace02468ace02468ace02468ace02468ace0",
    owner_share=Decimal("0.12"),
    lp_locked_share=Decimal("0.95"),
    dex_liquidity_usd=Decimal("250000"),
    in_dex=True,
    is_open_source=True,
    mintable=False,
)


ZERO = "0x0000000000000000000000000000000000000000"


@pytest.mark.parametrize(
    ("change", "alert"),
    [
        ({"is_honeypot": True}, "🚨 Now flagged as a honeypot"),
        ({"is_honeypot": False}, None),
        ({"sell_tax": Decimal("0.025")}, None),  # under a point: noise
        ({"sell_tax": Decimal("0.6")}, "🚨 The sell tax rose from 2% to 60%"),
        ({"sell_tax": Decimal("0")}, "ℹ️ The sell tax fell from 2% to 0%"),
        ({"sell_tax": None}, None),  # unknown now: not a change
        ({"owner_share": Decimal("0.02")}, "⚠️ The owner's share fell from 12% to 2%"),
        ({"owner_share": Decimal("0.13")}, None),
        ({"lp_locked_share": Decimal("0.5")}, "🚨 Locked liquidity fell from 95% to 50%"),
        ({"dex_liquidity_usd": Decimal(1000)}, "🚨 DEX liquidity fell from $250,000 to $1,000"),
        ({"mintable": True}, "⚠️ A mint authority appeared"),
        ({"owner_address": ZERO}, "ℹ️ Ownership was renounced"),
        ({"is_open_source": False}, "⚠️ The source is no longer verified"),
    ],
)
def test_one_field_changed(change: dict[str, object], alert: str | None) -> None:
    new = replace(BASE, **change)  # type: ignore[arg-type]
    lines = [c.describe() for c in diff(BASE, new) if c.code != "level"]

    assert lines == ([] if alert is None else [alert])


def test_solana_freeze_authority_and_transfer_fee() -> None:
    old = RiskReport(
        chain="solana", address=MINT, freezable=False, transfer_fee=Decimal(0), mintable=False
    )
    new = replace(old, freezable=True, transfer_fee=Decimal("0.05"))

    found = by_code(diff(old, new))

    assert found["freezable"].severity is Severity.DANGER
    assert found["transfer_fee"].describe() == "⚠️ The transfer fee rose from 0% to 5%"


def test_level_change_alone_is_reported() -> None:
    old = replace(BASE, is_honeypot=None, sell_tax=None)  # unknown sellability: UNKNOWN
    assert score(old).level is Level.UNKNOWN
    found = by_code(diff(old, BASE))
    assert found["level"].severity is Severity.INFO


def test_first_scan_and_other_tokens() -> None:
    assert diff(None, BASE) == []
    with pytest.raises(ValueError, match="one token"):
        diff(BASE, replace(BASE, chain="56"))
