"""What changed between two scans of a watched token that a holder cares about.

:func:`diff` compares the stored report with a new one. It reports a power or flag that
appeared (or went away), taxes and fees that moved by at least one percentage point, the owner
or creator share moving by more than two points, the top-10 share by more than ten, the
locked LP share dropping (or rising) by five points or more, liquidity halving, ownership
moving, and the risk level changing. A field that became unknown is not a change (GoPlus
often leaves fields out for a while); a risk that appears where it was unknown is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from keel.coach.risk import scoring
from keel.coach.risk.report import RiskReport
from keel.coach.risk.scoring import Level

__all__ = ["Change", "Severity", "diff"]

TAX_STEP: Final = Decimal("0.01")
SHARE_STEP: Final = Decimal("0.02")
TOP10_STEP: Final = Decimal("0.10")
LP_STEP: Final = Decimal("0.05")
LIQUIDITY_DROP: Final = Decimal("0.5")  # liquidity falling to half or less
_ZERO_OWNER: Final = frozenset(
    {"0x0000000000000000000000000000000000000000", "0x000000000000000000000000000000000000dead"}
)


class Severity(enum.StrEnum):
    DANGER = "danger"  # a holder may lose the position: look now
    WARNING = "warning"  # the risk grew
    INFO = "info"  # the risk shrank, or something neutral moved


_ICONS: Final = {Severity.DANGER: "🚨", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}
_RANK: Final = {Severity.DANGER: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class Change:
    """One change: a stable ``code`` (the field, or ``level``), how much it matters, and a
    plain-text sentence (no HTML: escape it if you embed it in HTML)."""

    code: str
    severity: Severity
    text: str

    def describe(self) -> str:
        """One alert line, e.g. ``⚠️ The sell tax rose from 5% to 35%``."""
        return f"{_ICONS[self.severity]} {self.text}"


# (field, severity when it turns on, text on, text off) for powers that are bad when True.
_FLAGS: Final = (
    (
        "is_honeypot",
        Severity.DANGER,
        "Now flagged as a honeypot",
        "No longer flagged as a honeypot",
    ),
    (
        "cannot_sell_all",
        Severity.DANGER,
        "Holders can no longer sell their whole balance",
        "Holders can sell their whole balance again",
    ),
    (
        "fake_token",
        Severity.DANGER,
        "Now flagged as impersonating a known token",
        "No longer flagged as a fake token",
    ),
    (
        "is_airdrop_scam",
        Severity.DANGER,
        "Now flagged as an airdrop scam",
        "No longer flagged as an airdrop scam",
    ),
    (
        "non_transferable",
        Severity.DANGER,
        "The token became non-transferable",
        "The token is transferable again",
    ),
    (
        "default_frozen",
        Severity.DANGER,
        "New accounts now start frozen",
        "New accounts no longer start frozen",
    ),
    (
        "owner_change_balance",
        Severity.DANGER,
        "The owner can now change balances",
        "The owner can no longer change balances",
    ),
    (
        "balance_mutable",
        Severity.DANGER,
        "A balance-changing authority appeared",
        "The balance-changing authority is gone",
    ),
    (
        "freezable",
        Severity.DANGER,
        "A freeze authority appeared",
        "The freeze authority was removed",
    ),
    ("mintable", Severity.WARNING, "A mint authority appeared", "The mint authority was removed"),
    (
        "closable",
        Severity.WARNING,
        "The mint can now be closed",
        "The mint can no longer be closed",
    ),
    (
        "transfer_hook",
        Severity.WARNING,
        "A transfer hook was added",
        "The transfer hook was removed",
    ),
    (
        "transfer_pausable",
        Severity.WARNING,
        "Transfers can now be paused",
        "Transfers can no longer be paused",
    ),
    ("hidden_owner", Severity.WARNING, "A hidden owner appeared", "The hidden owner is gone"),
    (
        "can_take_back_ownership",
        Severity.WARNING,
        "Ownership can now be taken back",
        "Ownership can no longer be taken back",
    ),
    (
        "selfdestruct",
        Severity.WARNING,
        "The contract can now self-destruct",
        "The contract can no longer self-destruct",
    ),
    (
        "is_blacklisted",
        Severity.WARNING,
        "The contract can now blacklist holders",
        "The blacklist is gone",
    ),
    (
        "slippage_modifiable",
        Severity.WARNING,
        "The owner can now change the taxes",
        "The taxes can no longer be changed",
    ),
    (
        "personal_slippage_modifiable",
        Severity.WARNING,
        "Taxes can now be set per address",
        "Per-address taxes are gone",
    ),
    (
        "is_proxy",
        Severity.WARNING,
        "The contract became an upgradeable proxy",
        "The contract is no longer a proxy",
    ),
    (
        "honeypot_with_same_creator",
        Severity.WARNING,
        "Its creator is now linked to honeypots",
        "Its creator is no longer linked to honeypots",
    ),
    (
        "creator_malicious",
        Severity.WARNING,
        "A creator is now flagged as malicious",
        "No creator is flagged any more",
    ),
    (
        "transfer_fee_upgradable",
        Severity.INFO,
        "The transfer fee became changeable",
        "The transfer fee is no longer changeable",
    ),
    (
        "transfer_hook_upgradable",
        Severity.INFO,
        "The transfer hook became changeable",
        "The transfer hook is no longer changeable",
    ),
    (
        "default_account_state_upgradable",
        Severity.INFO,
        "New accounts can now be set to start frozen",
        "New accounts can no longer be set to start frozen",
    ),
    (
        "metadata_mutable",
        Severity.INFO,
        "The metadata became changeable",
        "The metadata is now immutable",
    ),
    ("cannot_buy", Severity.INFO, "It can no longer be bought", "It can be bought again"),
)


def diff(old: RiskReport | None, new: RiskReport) -> list[Change]:
    """What changed from ``old`` to ``new`` (most serious first); ``old`` None (the first
    scan of a watch) is no change. Both must be of the same token."""
    if old is None:
        return []
    if (old.chain, old.address) != (new.chain, new.address):
        raise ValueError("diff compares two scans of one token")
    changes = [*_flags(old, new), *_numbers(old, new), *_ownership(old, new), *_level(old, new)]
    return sorted(changes, key=lambda change: _RANK[change.severity])


def _flags(old: RiskReport, new: RiskReport) -> Iterator[Change]:
    for field, severity, on, off in _FLAGS:
        before, after = getattr(old, field), getattr(new, field)
        if after is True and before is not True:
            yield Change(field, severity, on)
        elif before is True and after is False:
            yield Change(field, Severity.INFO, off)
    if old.is_open_source is True and new.is_open_source is False:
        yield Change("is_open_source", Severity.WARNING, "The source is no longer verified")
    if old.trusted is True and new.trusted is False:
        yield Change("trusted", Severity.WARNING, "GoPlus no longer lists it as trusted")


def _moved(
    label: str, before: Decimal | None, after: Decimal | None, step: Decimal
) -> tuple[str, bool] | None:
    """(sentence, rose) when both are known and differ by at least ``step``."""
    if before is None or after is None or abs(after - before) < step:
        return None
    verb = "rose" if after > before else "fell"
    return (
        f"{label} {verb} from {scoring.percent(before)} to {scoring.percent(after)}",
        after > before,
    )


def _numbers(old: RiskReport, new: RiskReport) -> Iterator[Change]:
    exit_label = "The transfer fee" if new.is_solana else "The sell tax"
    exit_old = old.transfer_fee if new.is_solana else old.sell_tax
    exit_new = new.transfer_fee if new.is_solana else new.sell_tax
    if moved := _moved(exit_label, exit_old, exit_new, TAX_STEP):
        text, rose = moved
        severity = Severity.INFO
        if rose:
            high = exit_new is not None and exit_new >= scoring.HONEYPOT_TAX
            severity = Severity.DANGER if high else Severity.WARNING
        yield Change("transfer_fee" if new.is_solana else "sell_tax", severity, text)
    numbers = (
        ("buy_tax", "The buy tax", TAX_STEP, Severity.WARNING),
        ("transfer_fee_scheduled", "The scheduled transfer fee", TAX_STEP, Severity.WARNING),
        ("owner_share", "The owner's share", SHARE_STEP, Severity.INFO),
        ("creator_share", "The creator's share", SHARE_STEP, Severity.INFO),
        ("top10_share", "The top 10 holders' share", TOP10_STEP, Severity.WARNING),
    )
    for field, label, step, when_rising in numbers:
        if moved := _moved(label, getattr(old, field), getattr(new, field), step):
            text, rose = moved
            # An owner or creator whose share falls is selling (or moving) tokens.
            falling = (
                Severity.WARNING if field in ("owner_share", "creator_share") else Severity.INFO
            )
            yield Change(field, when_rising if rose else falling, text)
    if moved := _moved("Locked liquidity", old.lp_locked_share, new.lp_locked_share, LP_STEP):
        text, rose = moved
        yield Change("lp_locked_share", Severity.INFO if rose else Severity.DANGER, text)
    yield from _liquidity(old, new)


def _liquidity(old: RiskReport, new: RiskReport) -> Iterator[Change]:
    if old.in_dex is True and new.in_dex is False:
        yield Change("in_dex", Severity.DANGER, "It is no longer traded on any DEX GoPlus sees")
        return
    before, after = old.dex_liquidity_usd, new.dex_liquidity_usd
    if before is not None and after is not None and before > 0 and after <= before * LIQUIDITY_DROP:
        text = f"DEX liquidity fell from ${before:,.0f} to ${after:,.0f}"
        yield Change("dex_liquidity_usd", Severity.DANGER, text)


def _ownership(old: RiskReport, new: RiskReport) -> Iterator[Change]:
    before, after = old.owner_address, new.owner_address
    if before is None or after is None or before == after:
        return
    if after in _ZERO_OWNER:
        yield Change("owner_address", Severity.INFO, "Ownership was renounced")
    else:
        yield Change("owner_address", Severity.WARNING, f"Ownership moved to {after}")


_ORDER: Final = {Level.LOW: 0, Level.MEDIUM: 1, Level.HIGH: 2, Level.CRITICAL: 3}


def _level(old: RiskReport, new: RiskReport) -> Iterator[Change]:
    before, after = scoring.score(old).level, scoring.score(new).level
    if before == after:
        return
    text = f"Risk level changed from {before.value} to {after.value}"
    if before not in _ORDER or after not in _ORDER:
        yield Change("level", Severity.INFO, text)
    elif _ORDER[after] > _ORDER[before]:
        severity = Severity.DANGER if after is Level.CRITICAL else Severity.WARNING
        yield Change("level", severity, text)
    else:
        yield Change("level", Severity.INFO, text)
