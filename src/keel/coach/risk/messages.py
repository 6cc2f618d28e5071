"""Telegram messages (HTML parse mode) for a scan and for a watch alert.

Everything that came from GoPlus or the user (name, symbol, address) is escaped. Messages
stay under Telegram's 4096 characters, give facts and risks only (never advice to act), and
say so.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from keel.coach.risk import addresses
from keel.coach.risk.changes import Change
from keel.coach.risk.report import RiskReport
from keel.coach.risk.scoring import Level, RiskScore, percent

__all__ = ["DISCLAIMER", "MAX_MESSAGE_CHARS", "format_alert", "format_report"]

MAX_MESSAGE_CHARS: Final = 4096
DISCLAIMER: Final = (
    "Data from GoPlus Security. Automated checks can miss risks; this is not financial "
    "advice. Do your own research."
)
_MAX_REASONS: Final = 15
_MAX_CHANGES: Final = 20
_ICONS: Final = {
    Level.LOW: "🟢",
    Level.MEDIUM: "🟡",
    Level.HIGH: "🟠",
    Level.CRITICAL: "🔴",
    Level.UNKNOWN: "⚪",
}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _title(report: RiskReport) -> str:
    name = report.name or report.symbol or "Unnamed token"
    if report.symbol and report.name:
        name = f"{report.name} ({report.symbol})"
    return _e(name[:80])


def _yes_no(value: bool | None, *, yes: str = "yes", no: str = "no") -> str:
    return "unknown" if value is None else yes if value else no


def _share(value: Decimal | None) -> str:
    return "unknown" if value is None else percent(value)


def _bar(score: int) -> str:
    filled = round(score / 10)
    return "▰" * filled + "▱" * (10 - filled)


def format_report(report: RiskReport, score: RiskScore) -> str:
    """The /scan reply: level and score, the reasons with their points, the key facts."""
    lines = [
        f"{_ICONS[score.level]} <b>Risk scan: {_title(report)}</b>",
        f"{_e(addresses.chain_name(report.chain))} · <code>{_e(report.address)}</code>",
        f"Risk: <b>{score.level.value}</b> · {score.score}/100 {_bar(score.score)}",
        "",
        "<b>Findings</b>",
    ]
    shown = score.reasons[:_MAX_REASONS]
    for reason in shown:
        points = f"+{reason.points}" if reason.points >= 0 else str(reason.points)
        lines.append(f"• {_e(reason.text)} ({points})")
    if len(score.reasons) > len(shown):
        lines.append(f"• … and {len(score.reasons) - len(shown)} more")
    if not shown:
        lines.append("• Nothing alarming in what GoPlus reports")
    lines += ["", "<b>Facts</b>", *_facts(report)]
    lines += [
        f"GoPlus answered {score.known} of {score.checks} key checks.",
        "",
        f"<i>{_e(DISCLAIMER)}</i>",
    ]
    return _fit("\n".join(lines))


def _facts(report: RiskReport) -> list[str]:
    facts: list[str] = []
    if report.is_solana:
        facts.append(
            f"Mint authority: {_yes_no(report.mintable, yes='present', no='none')} · "
            f"Freeze authority: {_yes_no(report.freezable, yes='present', no='none')}"
        )
        facts.append(
            f"Transfer fee: {_share(report.transfer_fee)} · "
            f"Transfer hook: {_yes_no(report.transfer_hook)}"
        )
    else:
        facts.append(
            f"Honeypot: {_yes_no(report.is_honeypot)} · Buy tax: {_share(report.buy_tax)} · "
            f"Sell tax: {_share(report.sell_tax)}"
        )
        facts.append(
            f"Owner holds: {_share(report.owner_share)} · "
            f"Creator holds: {_share(report.creator_share)}"
        )
    facts.append(f"Top 10 holders (excl. pools, burned, locked): {_share(report.top10_share)}")
    liquidity = (
        "unknown" if report.dex_liquidity_usd is None else f"${report.dex_liquidity_usd:,.0f}"
    )
    facts.append(f"LP locked or burned: {_share(report.lp_locked_share)} · Liquidity: {liquidity}")
    if report.holder_count is not None:
        facts.append(f"Holders: {report.holder_count:,}")
    return facts


def format_alert(report: RiskReport, changes: Sequence[Change], score: RiskScore) -> str:
    """A /watch alert: what changed in a watched token since the last scan, and where its
    risk stands now."""
    lines = [
        f"🔔 <b>Watched token changed: {_title(report)}</b>",
        f"{_e(addresses.chain_name(report.chain))} · <code>{_e(report.address)}</code>",
        "",
    ]
    lines += [_e(change.describe()) for change in changes[:_MAX_CHANGES]]
    if len(changes) > _MAX_CHANGES:
        lines.append(f"… and {len(changes) - _MAX_CHANGES} more")
    lines += [
        "",
        f"Risk now: {_ICONS[score.level]} <b>{score.level.value}</b> · {score.score}/100",
        f"<i>{_e(DISCLAIMER)}</i>",
    ]
    return _fit("\n".join(lines))


def _fit(text: str) -> str:
    """``text`` cut at a line end to fit a message. Bounded lists keep messages far below the
    limit; this is the last guard. Every line closes its own tags, so the cut keeps the HTML
    valid."""
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: text.rindex("\n", 0, MAX_MESSAGE_CHARS - 2)] + "\n…"
