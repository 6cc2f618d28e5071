"""The /scan and /watch texts: Telegram HTML, escaped, bounded, never advice."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.risk import (
    Change,
    RiskReport,
    Severity,
    diff,
    format_alert,
    format_report,
    score,
)
from keel.coach.risk.messages import MAX_MESSAGE_CHARS

from .conftest import GoPlusFactory

EVM = "0x9c2e5d8f1a4b7c0e3d6f9a2b5c8e1d4f7a0b3c6d"
TAGS = re.compile(r"</?(b|i|code)>")


def assert_telegram_html(text: str) -> None:
    assert len(text) <= MAX_MESSAGE_CHARS
    # Only the tags we write; every other "<" or "&" is escaped.
    bare = TAGS.sub("", text)
    assert "<" not in bare
    assert ">" not in bare
    assert re.search(r"&(?!(lt|gt|amp);)", bare) is None
    for tag in ("b", "i", "code"):
        assert text.count(f"<{tag}>") == text.count(f"</{tag}>")


async def test_scan_reply_for_a_honeypot(goplus: GoPlusFactory) -> None:
    report = await goplus("evm_honeypot").scan(None, EVM)

    text = format_report(report, score(report))

    assert_telegram_html(text)
    assert text.startswith("🔴 <b>Risk scan: Moon Safe Inu (MSI)</b>")
    assert f"<code>{EVM}</code>" in text
    assert "Risk: <b>CRITICAL</b> · 100/100" in text
    assert "• Honeypot: buying works, selling does not (+100)" in text
    assert "Sell tax: 100%" in text
    assert "not financial advice" in text
    assert not re.search(r"\b(you should|buy now|sell now|we recommend)\b", text, re.IGNORECASE)


async def test_scan_reply_for_solana_shows_authorities(goplus: GoPlusFactory) -> None:
    report = await goplus("solana_mint_freeze").scan(
        None, "6anbDQNCcVh2f6okexjaX1VGj6tEnizJ1kV5UTBS8Zhi"
    )
    text = format_report(report, score(report))

    assert_telegram_html(text)
    assert "Solana · " in text
    assert "Mint authority: present · Freeze authority: present" in text
    assert "LP locked or burned: 0% · Liquidity: $52,340" in text


def test_unknown_values_say_unknown() -> None:
    report = RiskReport(chain="1", address=EVM)
    text = format_report(report, score(report))

    assert "Honeypot: unknown · Buy tax: unknown · Sell tax: unknown" in text
    assert "Risk: <b>UNKNOWN</b>" in text
    assert "GoPlus answered 0 of 8 key checks." in text


@given(st.text(max_size=300), st.text(max_size=300))
def test_hostile_names_are_escaped(name: str, symbol: str) -> None:
    report = RiskReport(chain="56", address=EVM, name=name, symbol=symbol, sell_tax=Decimal("0.3"))
    assert_telegram_html(format_report(report, score(report)))


def test_alert_lists_changes_and_stays_bounded() -> None:
    report = RiskReport(chain="1", address=EVM, name="<Rug & Co>", is_honeypot=True)
    changes = [Change("sell_tax", Severity.WARNING, f"Change {i} <x>") for i in range(100)]

    text = format_alert(report, changes, score(report))

    assert_telegram_html(text)
    assert "&lt;Rug &amp; Co&gt;" in text
    assert "⚠️ Change 0 &lt;x&gt;" in text
    assert "… and 80 more" in text


def test_every_reason_fits() -> None:
    everything = RiskReport(
        chain="1",
        address=EVM,
        name="x" * 500,
        # Every yes/no risk at once (and trusted: it never offsets a critical finding).
        **{field.name: True for field in fields(RiskReport) if field.type == "bool | None"},
    )
    worse = replace(everything, sell_tax=Decimal(1), buy_tax=Decimal(1), is_open_source=False)
    text = format_report(worse, score(worse))
    assert_telegram_html(text)
    assert "… and" in text  # reasons beyond fifteen are counted, not listed


def test_no_line_reads_as_a_trade_call() -> None:
    """The coach's last check against trade calls (``keel.coach.advice``, when present) leaves
    every scan and alert line alone: "Sell tax 35%" would read as an imperative "Sell"."""
    advice = pytest.importorskip("keel.coach.advice")
    flags = {field.name: True for field in fields(RiskReport) if field.type == "bool | None"}
    numbers = {
        name: Decimal("0.2")
        for name in ("sell_tax", "buy_tax", "transfer_fee", "owner_share", "top10_share")
    }
    texts = []
    for chain in ("1", "solana"):
        worst = RiskReport(chain=chain, address=EVM, **flags, **numbers)  # type: ignore[arg-type]
        calmer = replace(worst, is_honeypot=False, cannot_sell_all=False, non_transferable=False)
        texts += [format_report(report, score(report)) for report in (worst, calmer)]
        moved = replace(calmer, sell_tax=Decimal("0.4"), transfer_fee=Decimal("0.4"))
        changes = diff(calmer, moved) + diff(RiskReport(chain=chain, address=EVM), worst)
        texts.append(format_alert(moved, changes, score(moved)))

    assert [text for text in texts if advice.check(text).removed] == []
