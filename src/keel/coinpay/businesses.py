"""Businesses (tenants), their payout wallets and watch-only keys.

Wallets and watch-only keys belong to one mode (ADR 0009): a test payment pays out to the test
world's wallet, a live payment to the live one, and changing either is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import audit, models, notify, wallets
from keel.coinpay.assets import COINS, Coin, get_coin
from keel.coinpay.errors import BusinessNotFound, NoWalletForCoin
from keel.core.clock import Clock
from keel.core.errors import BadRequest

MAINNET_EVERYWHERE: Final[Mapping[str, wallets.Network]] = MappingProxyType({})


@dataclass(frozen=True)
class Receiving:
    """How a business receives a coin: custodial with a payout address, or watch-only."""

    custody: str  # "system" or "watch_only"
    payout_address: str | None
    watch_key: wallets.WatchOnlyKey | None


async def create_business(session: AsyncSession, clock: Clock, *, name: str) -> str:
    clean = name.strip()
    if not clean or len(clean) > 200:
        raise BadRequest("Business name must be 1 to 200 characters")
    business_id = str(uuid.uuid4())
    await session.execute(
        models.businesses.insert().values(id=business_id, name=clean, created_at=clock.now())
    )
    return business_id


async def require_business(session: AsyncSession, business_id: str) -> None:
    found = await session.scalar(
        select(models.businesses.c.id).where(models.businesses.c.id == business_id)
    )
    if found is None:
        raise BusinessNotFound(f"Business {business_id} not found")


async def set_wallet(
    session: AsyncSession,
    actor: audit.Actor,
    *,
    business_id: str,
    mode: str,
    coin: str,
    address: str,
    networks: Mapping[str, wallets.Network] = MAINNET_EVERYWHERE,
) -> str:
    """Set (or replace) one mode's payout address for a coin; returns the normalised address.
    ``networks`` are the mode's chains not on mainnet (``Gateway.networks_of``): a live
    regtest LTC chain takes ``rltc1…`` payout addresses, and refuses ``ltc1…`` ones."""
    await require_business(session, business_id)
    chosen = get_coin(coin)
    network = networks.get(chosen.chain, wallets.Network.MAINNET)
    normalised = wallets.validate_address(chosen.family, address.strip(), network)
    t = models.wallets
    previous = await session.scalar(
        select(t.c.address).where(
            t.c.business_id == business_id, t.c.mode == mode, t.c.coin == chosen.symbol
        )
    )
    if previous == normalised:
        return normalised
    await session.execute(
        t.delete().where(
            t.c.business_id == business_id, t.c.mode == mode, t.c.coin == chosen.symbol
        )
    )
    await session.execute(
        t.insert().values(
            id=str(uuid.uuid4()),
            business_id=business_id,
            mode=mode,
            coin=chosen.symbol,
            address=normalised,
            created_at=actor.clock.now(),
        )
    )
    await notify.record_change(
        session,
        actor,
        audit.Change(
            business_id,
            mode,
            "wallet.set",
            chosen.symbol,
            {"address": normalised, "previous_address": previous},
        ),
    )
    return normalised


async def set_watch_only(
    session: AsyncSession,
    actor: audit.Actor,
    *,
    business_id: str,
    mode: str,
    family: str,
    extended_key: str,
) -> None:
    """Receive a UTXO family's coins of one mode straight into the merchant's wallet
    (xpub/zpub)."""
    await require_business(session, business_id)
    try:
        fam = wallets.Family(family.upper())
    except ValueError as exc:
        raise BadRequest(f"Unknown derivation family {family!r}") from exc
    key = wallets.WatchOnlyKey.parse(fam, extended_key.strip())
    t = models.watch_only_keys
    await session.execute(
        t.delete().where(t.c.business_id == business_id, t.c.mode == mode, t.c.family == fam.value)
    )
    await session.execute(
        t.insert().values(
            id=str(uuid.uuid4()),
            business_id=business_id,
            mode=mode,
            family=fam.value,
            extended_key=key.key,
            created_at=actor.clock.now(),
        )
    )
    await notify.record_change(
        session,
        actor,
        audit.Change(business_id, mode, "watch_only.set", fam.value, {"key_suffix": key.key[-8:]}),
    )


async def receiving(session: AsyncSession, business_id: str, mode: str, coin: Coin) -> Receiving:
    """How one mode of a business receives a coin. Watch-only wins over custodial when both
    exist: then we never hold the funds."""
    wk = models.watch_only_keys
    key = await session.scalar(
        select(wk.c.extended_key).where(
            wk.c.business_id == business_id, wk.c.mode == mode, wk.c.family == coin.family.value
        )
    )
    if key is not None:
        return Receiving("watch_only", None, wallets.WatchOnlyKey.parse(coin.family, key))
    w = models.wallets
    address = await session.scalar(
        select(w.c.address).where(
            w.c.business_id == business_id, w.c.mode == mode, w.c.coin == coin.symbol
        )
    )
    if address is None:
        raise NoWalletForCoin(
            f"Business has no {mode} {coin.symbol} wallet; set one with "
            f"`keel coinpay wallet set --mode {mode} --coin {coin.symbol}`"
        )
    return Receiving("system", address, None)


async def supported_coins(
    session: AsyncSession, business_id: str, mode: str, *, active_only: bool
) -> list[dict[str, object]]:
    """Every coin, and whether this business can receive it in this mode."""
    w, wk = models.wallets, models.watch_only_keys
    payout = set(
        (
            await session.execute(
                select(w.c.coin).where(w.c.business_id == business_id, w.c.mode == mode)
            )
        ).scalars()
    )
    watched = set(
        (
            await session.execute(
                select(wk.c.family).where(wk.c.business_id == business_id, wk.c.mode == mode)
            )
        ).scalars()
    )
    coins: list[dict[str, object]] = []
    for coin in COINS.values():
        source = (
            "xpub"
            if coin.family.value in watched
            else ("payout_wallet" if coin.symbol in payout else None)
        )
        if active_only and source is None:
            continue
        coins.append(
            {
                "symbol": coin.symbol,
                "name": coin.name,
                "is_active": source is not None,
                "has_wallet": source is not None,
                "wallet_source": source,
                "decimals": coin.decimals,
            }
        )
    return coins


async def list_wallets(session: AsyncSession, business_id: str, mode: str) -> list[dict[str, str]]:
    """One mode's payout wallets, by coin."""
    t = models.wallets
    rows = await session.execute(
        select(t.c.coin, t.c.address)
        .where(t.c.business_id == business_id, t.c.mode == mode)
        .order_by(t.c.coin)
    )
    return [{"cryptocurrency": r.coin, "wallet_address": r.address} for r in rows.all()]
