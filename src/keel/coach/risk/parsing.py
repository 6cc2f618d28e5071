"""GoPlus token security results -> :class:`RiskReport`.

GoPlus sends flags as ``"0"``/``"1"`` strings (holder flags as the integers 0/1), numbers as
strings (``"0.05"`` is 5 %), and leaves a field out or empty when it does not know. Every
reader here turns what it cannot read into ``None`` (unknown), never into ``False`` or 0, and
no input makes it raise: a result that is not a JSON object raises :class:`MalformedReply`.

How lists are summarised:

* ``top10_share``: the summed share of the ten largest holders **that can sell**. Left out:
  burn addresses (nobody holds their keys), holders GoPlus marks ``is_locked`` (a locker
  holds them until the unlock), and the token's own pools (the DEX pairs GoPlus lists, and
  Raydium's AMM authority on Solana): a pool's tokens are the market, not a seller. Other
  contracts are counted: a contract holder is as often a team multisig, a vesting wallet the
  owner can drain, or a tax collector as it is a bridge, and we cannot tell them apart.
* ``lp_locked_share`` (EVM): the LP supply held by every LP holder that is locked or is a
  burn address, summed (the original looked at the first LP holder only). Solana: GoPlus
  lists pools rather than LP holders, each with ``burn_percent`` (percent, 0-100); the share
  is the TVL-weighted mean over the pools that report it (a plain mean when no TVL is known).
* Solana ``transfer_fee.fee_rate``: documented both as a fraction (``0.02``) and as parts per
  ten thousand (``200``); a value above 1 is read as parts per ten thousand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from keel.coach.risk.addresses import SOLANA
from keel.coach.risk.errors import MalformedReply
from keel.coach.risk.report import RiskReport

__all__ = ["parse_evm", "parse_result", "parse_solana"]

# Long lists are cut: GoPlus sends the top 10 holders; this bounds work on a hostile reply.
_MAX_ITEMS: Final = 200
_MAX_TEXT: Final = 128

_EVM_BURN: Final = frozenset(
    {
        "0x0000000000000000000000000000000000000000",
        "0x000000000000000000000000000000000000dead",
        "0xdead000000000000000000000000000000000000",
    }
)
_SOLANA_BURN: Final = frozenset(
    {"1nc1nerator11111111111111111111111111111111", "11111111111111111111111111111111"}
)
# Raydium's AMM v4 authority owns the token accounts of every Raydium v4 pool.
_SOLANA_POOL_OWNERS: Final = frozenset({"5Q544fKrFoe6tsEbD7S8EmxGTJYAKtTVhAW5Q5pge4j1"})
_ONE: Final = Decimal(1)


def parse_result(chain: str, address: str, payload: object) -> RiskReport:
    """The report of one token from its entry in GoPlus's ``result``."""
    if chain == SOLANA:
        return parse_solana(address, payload)
    return parse_evm(chain, address, payload)


def parse_evm(chain: str, address: str, payload: object) -> RiskReport:
    """An EVM token's report from ``/api/v1/token_security/{chain}``'s entry for it."""
    data = _object(payload)
    pools = {_address(dex.get("pair"), lower=True) for dex in _objects(data.get("dex"))}
    return RiskReport(
        chain=chain,
        address=address,
        name=_text(data.get("token_name")),
        symbol=_text(data.get("token_symbol")),
        holder_count=_count(data.get("holder_count")),
        total_supply=_number(data.get("total_supply")),
        trusted=_flag(data.get("trust_list")),
        is_honeypot=_flag(data.get("is_honeypot")),
        cannot_sell_all=_flag(data.get("cannot_sell_all")),
        cannot_buy=_flag(data.get("cannot_buy")),
        buy_tax=_fraction(data.get("buy_tax")),
        sell_tax=_fraction(data.get("sell_tax")),
        owner_address=_address(data.get("owner_address"), lower=True),
        owner_share=_fraction(data.get("owner_percent")),
        creator_address=_address(data.get("creator_address"), lower=True),
        creator_share=_fraction(data.get("creator_percent")),
        top10_share=_top10_share(data.get("holders"), pools, _EVM_BURN, lower=True),
        in_dex=_in_dex(data),
        dex_liquidity_usd=_summed(dex.get("liquidity") for dex in _objects(data.get("dex"))),
        lp_holder_count=_count(data.get("lp_holder_count")),
        lp_locked_share=_locked_lp_share(data.get("lp_holders")),
        is_open_source=_flag(data.get("is_open_source")),
        is_proxy=_flag(data.get("is_proxy")),
        hidden_owner=_flag(data.get("hidden_owner")),
        can_take_back_ownership=_flag(data.get("can_take_back_ownership")),
        owner_change_balance=_flag(data.get("owner_change_balance")),
        selfdestruct=_flag(data.get("selfdestruct")),
        transfer_pausable=_flag(data.get("transfer_pausable")),
        is_blacklisted=_flag(data.get("is_blacklisted")),
        slippage_modifiable=_flag(data.get("slippage_modifiable")),
        personal_slippage_modifiable=_flag(data.get("personal_slippage_modifiable")),
        external_call=_flag(data.get("external_call")),
        trading_cooldown=_flag(data.get("trading_cooldown")),
        honeypot_with_same_creator=_flag(data.get("honeypot_with_same_creator")),
        fake_token=_fake_token(data.get("fake_token")),
        is_airdrop_scam=_flag(data.get("is_airdrop_scam")),
        mintable=_flag(data.get("is_mintable")),
    )


def parse_solana(address: str, payload: object) -> RiskReport:
    """A Solana token's report from ``/api/v1/solana/token_security``'s entry for it."""
    data = _object(payload)
    metadata = _object_or_empty(data.get("metadata"))
    dexes = _objects(data.get("dex"))
    pools = {_address(dex.get("id"), lower=False) for dex in dexes} | _SOLANA_POOL_OWNERS
    mintable, mint_authorities = _authority(data.get("mintable"))
    freezable, freeze_authorities = _authority(data.get("freezable"))
    fee, fee_scheduled = _transfer_fee(data.get("transfer_fee"))
    lp_holders = data.get("lp_holders")
    return RiskReport(
        chain=SOLANA,
        address=address,
        name=_text(metadata.get("name")),
        symbol=_text(metadata.get("symbol")),
        holder_count=_count(data.get("holder_count")),
        total_supply=_number(data.get("total_supply")),
        trusted=_flag(data.get("trusted_token")),
        top10_share=_top10_share(data.get("holders"), pools, _SOLANA_BURN, lower=False),
        in_dex=None if data.get("dex") is None else bool(dexes),
        dex_liquidity_usd=_summed(dex.get("tvl") for dex in dexes),
        lp_holder_count=_count(data.get("lp_holder_count")),
        lp_locked_share=(
            _locked_lp_share(lp_holders, burn=_SOLANA_BURN, lower=False)
            if isinstance(lp_holders, list) and lp_holders
            else _burned_pool_share(dexes)
        ),
        mintable=mintable,
        mint_authorities=mint_authorities,
        freezable=freezable,
        freeze_authorities=freeze_authorities,
        closable=_authority(data.get("closable"))[0],
        balance_mutable=_authority(data.get("balance_mutable_authority"))[0],
        metadata_mutable=_authority(data.get("metadata_mutable"))[0],
        transfer_fee=fee,
        transfer_fee_scheduled=fee_scheduled,
        transfer_fee_upgradable=_authority(data.get("transfer_fee_upgradable"))[0],
        transfer_hook=_present(data.get("transfer_hook")),
        transfer_hook_upgradable=_authority(data.get("transfer_hook_upgradable"))[0],
        non_transferable=_flag(data.get("non_transferable")),
        default_frozen=_default_frozen(data.get("default_account_state")),
        default_account_state_upgradable=_authority(data.get("default_account_state_upgradable"))[
            0
        ],
        creator_malicious=_any_malicious(data.get("creators", data.get("creator"))),
    )


# --- readers: each returns None for what it cannot read ---------------------------------


def _object(payload: object) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise MalformedReply("GoPlus sent a token entry that is not a JSON object")
    return payload


def _object_or_empty(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value[:_MAX_ITEMS] if isinstance(item, Mapping)]


def _flag(value: object) -> bool | None:
    """``"1"``/``1``/``true`` -> True, ``"0"``/``0``/``false`` -> False, else unknown."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {0: False, 1: True}.get(value)
    if isinstance(value, str):
        return {"0": False, "1": True, "false": False, "true": True}.get(value.strip().lower())
    return None


def _number(value: object) -> Decimal | None:
    """A finite, non-negative number of sane magnitude from a string or JSON number."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | Decimal):
            number = Decimal(value)
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, str) and 0 < len(value.strip()) <= 64:
            number = Decimal(value.strip())
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number < 0:
        return None
    if number.is_zero():
        return Decimal(0)
    # Exponents this far out are not token data, and would overflow arithmetic later.
    return number if -40 <= number.adjusted() <= 40 else None


def _fraction(value: object) -> Decimal | None:
    """A share or tax: a number between 0 and 1."""
    number = _number(value)
    return number if number is not None and number <= _ONE else None


def _count(value: object) -> int | None:
    number = _number(value)
    if number is None or number != number.to_integral_value():
        return None
    return int(number)


def _text(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:_MAX_TEXT]


def _address(value: object, *, lower: bool) -> str | None:
    text = _text(value)
    return text.lower() if text is not None and lower else text


def _summed(values: Any) -> Decimal | None:
    numbers = [number for number in map(_number, values) if number is not None]
    return sum(numbers, Decimal(0)) if numbers else None


def _top10_share(
    holders: object, pools: set[str | None], burn: frozenset[str], *, lower: bool
) -> Decimal | None:
    entries = _objects(holders)
    shares: list[Decimal] = []
    read = 0
    for holder in entries:
        share = _fraction(holder.get("percent"))
        if share is None:
            continue
        read += 1
        who = _address(holder.get("address", holder.get("account")), lower=lower)
        if _flag(holder.get("is_locked")) or who in burn or who in pools:
            continue
        shares.append(share)
    if not read:
        return None
    return min(sum(sorted(shares, reverse=True)[:10], Decimal(0)), _ONE)


def _locked_lp_share(
    lp_holders: object, *, burn: frozenset[str] = _EVM_BURN, lower: bool = True
) -> Decimal | None:
    locked = Decimal(0)
    read = 0
    for holder in _objects(lp_holders):
        share = _fraction(holder.get("percent"))
        if share is None:
            continue
        read += 1
        who = _address(holder.get("address", holder.get("account")), lower=lower)
        if _flag(holder.get("is_locked")) or who in burn:
            locked += share
    return min(locked, _ONE) if read else None


def _burned_pool_share(dexes: Sequence[Mapping[str, Any]]) -> Decimal | None:
    weighted: list[tuple[Decimal, Decimal | None]] = []
    for dex in dexes:
        burned = _number(dex.get("burn_percent"))
        if burned is not None and burned <= 100:
            weighted.append((burned / 100, _number(dex.get("tvl"))))
    if not weighted:
        return None
    if all(tvl is not None for _, tvl in weighted):
        total = sum((tvl for _, tvl in weighted if tvl is not None), Decimal(0))
        if total > 0:
            return sum((share * (tvl or 0) for share, tvl in weighted), Decimal(0)) / total
    return sum((share for share, _ in weighted), Decimal(0)) / len(weighted)


def _in_dex(data: Mapping[str, Any]) -> bool | None:
    listed = _flag(data.get("is_in_dex"))
    if listed is None and _objects(data.get("dex")):
        return True
    return listed


def _authority(value: object) -> tuple[bool | None, tuple[str, ...]]:
    """A Solana ``{status, authority: [{address, ...}]}``: whether the power is live, and who
    holds it. Without a status, a non-empty authority list says it is live."""
    if not isinstance(value, Mapping):
        return _flag(value), ()
    holders = tuple(
        address
        for item in _objects(value.get("authority"))
        if (address := _address(item.get("address"), lower=False)) is not None
    )
    status = _flag(value.get("status"))
    if status is None and holders:
        status = True
    return status, holders


def _present(value: object) -> bool | None:
    """A Solana extension listed as a list or object: empty is absent, missing is unknown."""
    if isinstance(value, list | Mapping):
        return bool(value)
    return None


def _fee_rate(value: object) -> Decimal | None:
    rate = _number(value)
    if rate is None:
        return None
    if rate > 1:
        rate = rate / 10_000  # parts per ten thousand
    return rate if rate <= 1 else None


def _transfer_fee(value: object) -> tuple[Decimal | None, Decimal | None]:
    """(current rate, highest scheduled rate) of a Token-2022 transfer fee; ``{}`` is none."""
    if not isinstance(value, Mapping):
        return None, None
    if not value:
        return Decimal(0), Decimal(0)
    current = value.get("current_fee_rate")
    rate = _fee_rate(current.get("fee_rate")) if isinstance(current, Mapping) else None
    scheduled = value.get("scheduled_fee_rate")
    entries = [scheduled] if isinstance(scheduled, Mapping) else _objects(scheduled)
    rates = [_fee_rate(entry.get("fee_rate")) for entry in entries]
    known = [scheduled_rate for scheduled_rate in rates if scheduled_rate is not None]
    if len(known) < len(rates):
        return rate, None  # a scheduled rate we cannot read: the highest is unknown
    return rate, max(known, default=Decimal(0))


def _default_frozen(value: object) -> bool | None:
    """``default_account_state``: "2" (frozen) means a new holder's account starts frozen."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    return {"2": True, "1": False, "0": False}.get(value.strip())


def _any_malicious(creators: object) -> bool | None:
    flags = [_flag(creator.get("malicious_address")) for creator in _objects(creators)]
    if any(flags):
        return True
    if flags and all(flag is False for flag in flags):
        return False
    return None


def _fake_token(value: object) -> bool | None:
    # {"true_token_address": "0x…", "value": 1} when it copies a known token; null otherwise.
    if isinstance(value, Mapping):
        return _flag(value.get("value"))
    return _flag(value)
