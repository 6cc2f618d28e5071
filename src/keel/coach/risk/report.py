"""What GoPlus knows about one token, as typed values: :class:`RiskReport`.

Every field is ``None`` when GoPlus did not say (a missing or empty field, or a value we could
not read): unknown is never read as "no". Shares and taxes are ``Decimal`` fractions of one
(``0.05`` is 5 %). Fields that only one family of chains has stay ``None`` on the other (a
Solana token has no honeypot simulation; an EVM token no freeze authority).

Holder and LP lists are summarised here, not kept (``parsing.py`` documents how):
``top10_share`` is what the ten largest holders who can sell hold; ``lp_locked_share`` is the
part of the liquidity that is locked or burned, summed over every LP holder (or pool).

``to_json`` / ``from_json`` store a report (``coach_watches.report``) and cache it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Final, get_type_hints

from keel.coach.risk.addresses import SOLANA
from keel.coach.risk.errors import StoredReportInvalid

__all__ = ["JSON_VERSION", "RiskReport"]

JSON_VERSION: Final = 1


@dataclass(frozen=True)
class RiskReport:
    """One token's GoPlus security data; ``None`` is unknown."""

    chain: str  # "1", "56", ... or "solana"
    address: str  # canonical (EVM lower-case)
    name: str | None = None
    symbol: str | None = None
    holder_count: int | None = None
    total_supply: Decimal | None = None
    trusted: bool | None = None  # trust_list (EVM) / trusted_token (Solana)

    # Selling and taxes (EVM; Solana's transfer fee is below)
    is_honeypot: bool | None = None
    cannot_sell_all: bool | None = None
    cannot_buy: bool | None = None
    buy_tax: Decimal | None = None
    sell_tax: Decimal | None = None

    # Who holds what
    owner_address: str | None = None
    owner_share: Decimal | None = None
    creator_address: str | None = None
    creator_share: Decimal | None = None
    top10_share: Decimal | None = None  # ten largest holders that can sell (not pools/burn/locked)

    # Liquidity
    in_dex: bool | None = None
    dex_liquidity_usd: Decimal | None = None  # summed over the pools GoPlus lists
    lp_holder_count: int | None = None
    lp_locked_share: Decimal | None = None  # of the LP supply: locked or burned, all holders

    # Contract powers (EVM)
    is_open_source: bool | None = None
    is_proxy: bool | None = None
    hidden_owner: bool | None = None
    can_take_back_ownership: bool | None = None
    owner_change_balance: bool | None = None
    selfdestruct: bool | None = None
    transfer_pausable: bool | None = None
    is_blacklisted: bool | None = None
    slippage_modifiable: bool | None = None  # the owner can change the taxes
    personal_slippage_modifiable: bool | None = None  # ... for chosen addresses
    external_call: bool | None = None
    trading_cooldown: bool | None = None
    honeypot_with_same_creator: bool | None = None
    fake_token: bool | None = None  # impersonates a well-known token
    is_airdrop_scam: bool | None = None

    # Mint powers: EVM is_mintable, Solana mint authority
    mintable: bool | None = None
    mint_authorities: tuple[str, ...] = ()

    # Solana authorities and Token-2022 extensions
    freezable: bool | None = None
    freeze_authorities: tuple[str, ...] = ()
    closable: bool | None = None
    balance_mutable: bool | None = None  # an authority can change holders' balances
    metadata_mutable: bool | None = None
    transfer_fee: Decimal | None = None  # current rate
    transfer_fee_scheduled: Decimal | None = None  # highest scheduled rate (0: none)
    transfer_fee_upgradable: bool | None = None
    transfer_hook: bool | None = None  # an external program runs on every transfer
    transfer_hook_upgradable: bool | None = None
    non_transferable: bool | None = None
    default_frozen: bool | None = None  # new token accounts start frozen
    default_account_state_upgradable: bool | None = None
    creator_malicious: bool | None = None  # a creator GoPlus flags as malicious

    @property
    def is_solana(self) -> bool:
        return self.chain == SOLANA

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (Decimals as strings), versioned; :meth:`from_json` reads it."""
        out: dict[str, Any] = {"v": JSON_VERSION}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Decimal):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_json(cls, data: object) -> RiskReport:
        """The report :meth:`to_json` wrote. Unknown keys are ignored and missing ones are
        unknown (older or newer versions); anything else raises :class:`StoredReportInvalid`."""
        if not isinstance(data, Mapping) or data.get("v") != JSON_VERSION:
            raise StoredReportInvalid()
        values: dict[str, Any] = {}
        for name, read in _readers().items():
            if name in data:
                try:
                    values[name] = read(data[name])
                except (TypeError, ValueError, InvalidOperation) as exc:
                    raise StoredReportInvalid(f"stored report field {name!r} is invalid") from exc
        if not isinstance(values.get("chain"), str) or not isinstance(values.get("address"), str):
            raise StoredReportInvalid()
        return cls(**values)


def _read_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _read_optional(read: Callable[[object], Any]) -> Callable[[object], Any]:
    return lambda value: None if value is None else read(value)


def _read_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value


def _read_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def _read_decimal(value: object) -> Decimal:
    decimal = Decimal(_read_str(value))
    if not decimal.is_finite():
        raise ValueError("not a finite number")
    return decimal


def _read_strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError("not a list")
    return tuple(_read_str(item) for item in value)


_TYPE_READERS: Final[Mapping[object, Callable[[object], Any]]] = {
    str: _read_str,
    str | None: _read_optional(_read_str),
    bool | None: _read_optional(_read_bool),
    int | None: _read_optional(_read_int),
    Decimal | None: _read_optional(_read_decimal),
    tuple[str, ...]: _read_strings,
}


@cache
def _readers() -> dict[str, Callable[[object], Any]]:
    """Each field's reader, from its annotation (a new field type must be added above)."""
    hints = get_type_hints(RiskReport)
    return {
        field.name: _TYPE_READERS[hints[field.name]] for field in dataclasses.fields(RiskReport)
    }
