"""A risk score from a :class:`RiskReport`: 0-100 points, a level, and the reasons.

Each finding adds the points below (bands are not cumulative: the highest band that applies
counts). The total is capped at 100. "Critical" findings mean a holder may not get out at all;
any of them makes the level CRITICAL whatever the total.

=========================================  ======  =============================================
Finding                                    Points  Why
=========================================  ======  =============================================
honeypot (EVM)                             100 (C) buying works, selling does not
cannot_sell_all (EVM)                       80 (C) a holder can never sell the whole balance
sell tax / Solana transfer fee >= 50 %      80 (C) selling gives back half or less: a honeypot
fake_token, is_airdrop_scam (EVM)           80 (C) impersonates a known token / spam drop
non_transferable (Solana)                  100 (C) the token cannot move, so cannot be sold
default account state frozen (Solana)       80 (C) every new holder's account starts frozen
sell tax / transfer fee > 30 / > 10 / > 1   35 / 15 / 5
buy tax >= 50 / > 30 / > 10 / > 5 %         40 / 25 / 10 / 5
owner can change balances (EVM), balance-   40     the owner can take tokens from any holder
  mutable authority (Solana)
owner or creator holds > 50 / > 20 / > 5 %  40 / 25 / 10  (once when owner is creator)
top-10 sellers hold > 90 / > 70 / > 50 %    30 / 20 / 10
locked/burned LP < 10 / < 50 / < 90 %       25 / 15 / 5   summed over all LP holders
closable (Solana)                           30     the mint can be closed under holders
honeypot_with_same_creator, malicious       30     the creator made honeypots before
  creator (Solana)
freeze authority (Solana)                   25     the authority can freeze any holder
selfdestruct                                25
mint authority (Solana)                     20     supply can grow at will
take back ownership, not open source,       20 each
  transfer hook (Solana)
hidden owner, transfer pausable,            15 each
  taxes modifiable (slippage_modifiable)
proxy, mintable (EVM), blacklist,           10 each
  per-address taxes, not on any DEX,
  Solana fee / hook / default-state
  upgradable
external call, trading cooldown,             5 each
  cannot buy, mutable metadata (Solana)
trusted by GoPlus (trust_list /            -30     well-known tokens keep powers (USDC can
  trusted_token)                                   mint and freeze); never offsets a critical
=========================================  ======  =============================================

Unknown is never safe. Each key check GoPlus did not answer adds points (EVM: honeypot 15,
sell tax 10, open source 10, buy tax, cannot_sell_all, owner/creator share, top-10 share, LP
lock on a traded token 5 each; Solana: mint and freeze authority 10 each, the rest 5 each),
listed as one reason. Levels: CRITICAL >= 80 or any critical finding, HIGH >= 50, MEDIUM >= 25,
LOW below. When fewer than half of the key checks are known, or nothing says whether a holder
can sell (EVM: neither the honeypot check nor the sell tax; Solana: neither the freeze
authority nor transferability), the level is UNKNOWN unless the findings alone (without the
unknown points) make it HIGH or CRITICAL. The score still counts the unknown points.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from keel.coach.risk.report import RiskReport

__all__ = ["HONEYPOT_TAX", "Level", "Reason", "RiskScore", "percent", "score"]


class Level(enum.StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Reason:
    """One finding: a stable ``code``, a short English ``text`` and the points it added."""

    code: str
    text: str
    points: int
    critical: bool = False


@dataclass(frozen=True)
class RiskScore:
    """``score`` 0-100, its ``level``, the ``reasons`` (largest first), and how many of the
    key checks GoPlus answered (``known`` of ``checks``)."""

    score: int
    level: Level
    reasons: tuple[Reason, ...]
    known: int
    checks: int


CRITICAL_AT: Final = 80
HIGH_AT: Final = 50
MEDIUM_AT: Final = 25
TRUSTED_DISCOUNT: Final = -30

_PCT = Decimal(100)


def percent(share: Decimal) -> str:
    """``0.351`` -> ``35.1%`` (at most two decimals, no trailing zeros)."""
    text = f"{(share * _PCT).quantize(Decimal('0.01')):f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _band(value: Decimal, bands: tuple[tuple[str, Decimal, int], ...]) -> int:
    """The points of the first band ``value`` passes (``>=`` or ``>`` its bound)."""
    for op, bound, points in bands:
        if (value >= bound) if op == ">=" else (value > bound):
            return points
    return 0


_SELL_BANDS: Final = (
    (">", Decimal("0.30"), 35),
    (">", Decimal("0.10"), 15),
    (">", Decimal("0.01"), 5),
)
_BUY_BANDS: Final = (
    (">=", Decimal("0.50"), 40),
    (">", Decimal("0.30"), 25),
    (">", Decimal("0.10"), 10),
    (">", Decimal("0.05"), 5),
)
_HOLDING_BANDS: Final = (
    (">", Decimal("0.50"), 40),
    (">", Decimal("0.20"), 25),
    (">", Decimal("0.05"), 10),
)
_TOP10_BANDS: Final = (
    (">", Decimal("0.90"), 30),
    (">", Decimal("0.70"), 20),
    (">", Decimal("0.50"), 10),
)
HONEYPOT_TAX: Final = Decimal("0.50")

# (field, points, code, text) for plain yes/no powers; a True adds the points.
_EVM_FLAGS: Final = (
    ("owner_change_balance", 40, "owner_change_balance", "The owner can change holders' balances"),
    (
        "honeypot_with_same_creator",
        30,
        "creator_made_honeypots",
        "Its creator made honeypots before",
    ),
    ("selfdestruct", 25, "selfdestruct", "The contract can self-destruct"),
    (
        "can_take_back_ownership",
        20,
        "take_back_ownership",
        "Ownership can be taken back after renouncing",
    ),
    ("hidden_owner", 15, "hidden_owner", "The contract has a hidden owner"),
    ("transfer_pausable", 15, "transfer_pausable", "Transfers can be paused"),
    ("slippage_modifiable", 15, "tax_modifiable", "The owner can change the taxes"),
    ("is_proxy", 10, "proxy", "Upgradeable proxy: the code can be replaced"),
    ("mintable", 10, "mintable", "The owner can mint more tokens"),
    ("is_blacklisted", 10, "blacklist", "The contract can blacklist holders"),
    ("personal_slippage_modifiable", 10, "personal_tax", "Taxes can be set per address"),
    ("external_call", 5, "external_call", "Transfers call other contracts"),
    ("trading_cooldown", 5, "trading_cooldown", "Trading has a cooldown"),
    ("cannot_buy", 5, "cannot_buy", "It cannot be bought right now"),
)
_SOLANA_FLAGS: Final = (
    ("balance_mutable", 40, "balance_mutable", "An authority can change holders' balances"),
    ("closable", 30, "closable", "The mint can be closed by its authority"),
    ("creator_malicious", 30, "creator_malicious", "A creator is flagged as malicious"),
    ("freezable", 25, "freeze_authority", "A freeze authority can freeze holders' tokens"),
    ("mintable", 20, "mint_authority", "A mint authority can create more tokens"),
    ("transfer_hook", 20, "transfer_hook", "A transfer hook runs on every transfer"),
    ("transfer_fee_upgradable", 10, "fee_upgradable", "The transfer fee can be changed"),
    ("transfer_hook_upgradable", 10, "hook_upgradable", "The transfer hook can be changed"),
    (
        "default_account_state_upgradable",
        10,
        "default_state_upgradable",
        "New accounts can be set to start frozen",
    ),
    ("metadata_mutable", 5, "metadata_mutable", "Name and metadata can be changed"),
)
_EVM_CRITICAL: Final = (
    ("is_honeypot", 100, "honeypot", "Honeypot: buying works, selling does not"),
    ("cannot_sell_all", 80, "cannot_sell_all", "Holders cannot sell their whole balance"),
    ("fake_token", 80, "fake_token", "It impersonates a well-known token"),
    ("is_airdrop_scam", 80, "airdrop_scam", "Flagged as an airdrop scam"),
)
_SOLANA_CRITICAL: Final = (
    ("non_transferable", 100, "non_transferable", "The token cannot be transferred, so not sold"),
    ("default_frozen", 80, "default_frozen", "New holders' accounts start frozen"),
)
# Key checks: (name shown when unknown, points when unknown, is it known?).
_Check = tuple[str, int, Callable[[RiskReport], bool]]
_EVM_CHECKS: Final[tuple[_Check, ...]] = (
    ("honeypot check", 15, lambda r: r.is_honeypot is not None),
    ("sell tax", 10, lambda r: r.sell_tax is not None),
    ("open source", 10, lambda r: r.is_open_source is not None),
    ("buy tax", 5, lambda r: r.buy_tax is not None),
    ("sell-all check", 5, lambda r: r.cannot_sell_all is not None),
    ("owner share", 5, lambda r: r.owner_share is not None or r.creator_share is not None),
    ("holder spread", 5, lambda r: r.top10_share is not None),
    ("LP lock", 5, lambda r: r.lp_locked_share is not None or r.in_dex is False),
)
_SOLANA_CHECKS: Final[tuple[_Check, ...]] = (
    ("mint authority", 10, lambda r: r.mintable is not None),
    ("freeze authority", 10, lambda r: r.freezable is not None),
    ("close authority", 5, lambda r: r.closable is not None),
    ("balance authority", 5, lambda r: r.balance_mutable is not None),
    ("transferability", 5, lambda r: r.non_transferable is not None),
    ("transfer fee", 5, lambda r: r.transfer_fee is not None),
    ("transfer hook", 5, lambda r: r.transfer_hook is not None),
    ("holder spread", 5, lambda r: r.top10_share is not None),
    ("LP lock", 5, lambda r: r.lp_locked_share is not None or r.in_dex is False),
)


def score(report: RiskReport) -> RiskScore:
    """Score ``report`` by the table in this module's docstring."""
    reasons = list(_findings(report))
    checks = _SOLANA_CHECKS if report.is_solana else _EVM_CHECKS
    missing = [(name, points) for name, points, known in checks if not known(report)]
    if missing:
        names = ", ".join(name for name, _ in missing)
        reasons.append(
            Reason("unknown", f"Not reported: {names}", sum(points for _, points in missing))
        )
    critical = any(reason.critical for reason in reasons)
    if report.trusted and not critical:
        reasons.append(Reason("trusted", "GoPlus lists it as a trusted token", TRUSTED_DISCOUNT))
    total = _clamp(sum(reason.points for reason in reasons))
    known = len(checks) - len(missing)
    level = _level(total, critical)
    if known * 2 < len(checks) or not _sellability_known(report):
        # Too little is known to call it LOW or MEDIUM; only what is known can call it worse.
        found = _clamp(sum(reason.points for reason in reasons if reason.code != "unknown"))
        level = _level(found, critical)
        if level not in (Level.HIGH, Level.CRITICAL):
            level = Level.UNKNOWN
    ordered = sorted(reasons, key=lambda reason: (-reason.critical, -reason.points))
    return RiskScore(total, level, tuple(ordered), known, len(checks))


def _clamp(points: int) -> int:
    return max(0, min(100, points))


def _level(total: int, critical: bool) -> Level:
    if critical or total >= CRITICAL_AT:
        return Level.CRITICAL
    if total >= HIGH_AT:
        return Level.HIGH
    if total >= MEDIUM_AT:
        return Level.MEDIUM
    return Level.LOW


def _sellability_known(report: RiskReport) -> bool:
    if report.is_solana:
        return report.freezable is not None or report.non_transferable is not None
    return report.is_honeypot is not None or report.sell_tax is not None


def _findings(report: RiskReport) -> Iterator[Reason]:
    solana = report.is_solana
    for name, points, code, text in _SOLANA_CRITICAL if solana else _EVM_CRITICAL:
        if getattr(report, name) is True:
            yield Reason(code, text, points, critical=True)
    yield from _taxes(report)
    for name, points, code, text in _SOLANA_FLAGS if solana else _EVM_FLAGS:
        if getattr(report, name) is True:
            yield Reason(code, text, points)
    if report.is_open_source is False:
        yield Reason("closed_source", "The contract source is not verified", 20)
    yield from _holdings(report)
    yield from _liquidity(report)


def _taxes(report: RiskReport) -> Iterator[Reason]:
    if report.is_solana:
        rates = [
            rate
            for rate in (report.transfer_fee, report.transfer_fee_scheduled)
            if rate is not None
        ]
        exit_tax, what = (max(rates), "Transfer fee") if rates else (None, "")
        if report.transfer_fee_scheduled and report.transfer_fee_scheduled > (
            report.transfer_fee or 0
        ):
            what = "Scheduled transfer fee"
    else:
        exit_tax, what = report.sell_tax, "Tax on selling"
    if exit_tax is not None:
        if exit_tax >= HONEYPOT_TAX:
            yield Reason(
                "exit_tax", f"{what} {percent(exit_tax)}: effectively a honeypot", 80, True
            )
        elif points := _band(exit_tax, _SELL_BANDS):
            yield Reason("exit_tax", f"{what}: {percent(exit_tax)}", points)
    if report.buy_tax is not None and (points := _band(report.buy_tax, _BUY_BANDS)):
        yield Reason("buy_tax", f"Tax on buying: {percent(report.buy_tax)}", points)


def _holdings(report: RiskReport) -> Iterator[Reason]:
    owner = report.owner_share
    creator = report.creator_share
    same = report.owner_address is not None and report.owner_address == report.creator_address
    if same and owner is not None and creator is not None:
        owner, creator = max(owner, creator), None
    if owner is not None and (points := _band(owner, _HOLDING_BANDS)):
        yield Reason("owner_share", f"The owner holds {percent(owner)}", points)
    if creator is not None and (points := _band(creator, _HOLDING_BANDS)):
        yield Reason("creator_share", f"The creator holds {percent(creator)}", points)
    top10 = report.top10_share
    if top10 is not None and (points := _band(top10, _TOP10_BANDS)):
        yield Reason("top10_share", f"The top 10 holders hold {percent(top10)}", points)


def _liquidity(report: RiskReport) -> Iterator[Reason]:
    if report.in_dex is False:
        yield Reason("not_in_dex", "Not traded on any DEX GoPlus sees", 10)
        return
    locked = report.lp_locked_share
    if locked is None:
        return
    if locked < Decimal("0.10"):
        yield Reason("lp_unlocked", f"Only {percent(locked)} of liquidity is locked or burned", 25)
    elif locked < Decimal("0.50"):
        yield Reason("lp_unlocked", f"Only {percent(locked)} of liquidity is locked or burned", 15)
    elif locked < Decimal("0.90"):
        yield Reason("lp_partly_locked", f"{percent(locked)} of liquidity is locked or burned", 5)
