"""Receiving accounts and destination tags, for chains where an account costs a reserve (XRP).

An XRP account exists only once it holds the base reserve (1 XRP on mainnet in 2026), which it
can never spend. A fresh account per payment, as on the other chains, would lock one reserve
per payment and make every payment below the reserve fail on-chain (``tecNO_DST_INSUF_XRP``).
So each business gets one receiving account per mode on such a chain, derived once from the
custody root at an index of the chain's family, and each payment a **destination tag**: a
uint32 the customer's wallet puts in the payment (the payment URI carries it), unique per
account for ever (an old tag paid late must not credit a new payment). Tags are drawn at random,
not counted up, so a customer cannot guess another order's tag; the unique index on
``(payment_address, destination_tag)`` backs the draw.

A live account is activated once, before its first payment: the ``receiving_account.activate``
job (``chains.xrp_sender.activate``) funds it with the reserve from the platform's XRP fee
wallet. Until then a payment cannot be created (:class:`~keel.coinpay.errors.AccountActivating`,
409). Test mode's simulated chain has no reserve: its accounts are active from the start.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import addresses, models, wallets
from keel.coinpay.assets import Coin
from keel.core.jobs import JobQueue

__all__ = [
    "ACTIVATE_JOB",
    "MAX_TAG",
    "TAGGED_FAMILIES",
    "Account",
    "draw_tag",
    "ensure_account",
    "free_tag",
    "tagged",
]

ACTIVATE_JOB: Final = "receiving_account.activate"
MAX_TAG: Final = 2**32 - 1
# The families whose payments share one account per business and differ by destination tag.
TAGGED_FAMILIES: Final = frozenset({wallets.Family.XRP})
# Draws before giving up on a free tag: with a billion tags taken in one account, eight draws
# all hitting taken ones has a chance of 0.23^8, about 1 in 100,000.
_DRAWS: Final = 8


def tagged(coin: Coin) -> bool:
    """Whether ``coin``'s payments get a destination tag at a shared account."""
    return coin.family in TAGGED_FAMILIES


def draw_tag() -> int:
    """A random destination tag, 1 to 2^32 - 1 (0 is left out: some wallets treat it as none)."""
    return secrets.randbelow(MAX_TAG) + 1


@dataclass(frozen=True, slots=True)
class Account:
    """A business's receiving account on one chain and mode."""

    business_id: str
    mode: str
    chain: str
    address: str
    family_key: str
    derivation_index: int
    activated_at: datetime | None

    @property
    def active(self) -> bool:
        return self.activated_at is not None


async def ensure_account(
    session: AsyncSession,
    *,
    allocator: addresses.IndexAllocator,
    queue: JobQueue,
    root: wallets.HDRoot,
    business_id: str,
    mode: str,
    coin: Coin,
    now: datetime,
) -> Account:
    """The receiving account of ``business_id`` in ``mode`` on ``coin``'s chain, created on
    first use inside the caller's transaction: an index of the family, and (live mode) the
    activation job. Two first uses at once make one account (the loser's index is a gap)."""
    found = await _load(session, business_id, mode, coin.chain)
    if found is not None:
        return found
    family_key = addresses.system_family_key(coin.family)
    index = await allocator.allocate(session, family_key)
    row = {
        "business_id": business_id,
        "mode": mode,
        "chain": coin.chain,
        "address": root.address(coin.family, index),
        "family_key": family_key,
        "derivation_index": index,
        "created_at": now,
        "activated_at": now if mode == "test" else None,  # the simulated chain has no reserve
    }
    t = models.receiving_accounts
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(t)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["business_id", "mode", "chain"])
    )
    created = getattr(await session.execute(stmt), "rowcount", 0)
    if created and mode == "live":
        await queue.enqueue(
            session,
            ACTIVATE_JOB,
            {"business_id": business_id, "mode": mode, "chain": coin.chain},
            dedupe_key=f"activate:{business_id}:{mode}:{coin.chain}",
            max_attempts=100_000,
        )
    account = await _load(session, business_id, mode, coin.chain)
    assert account is not None
    return account


async def free_tag(session: AsyncSession, address: str, draw: Callable[[], int]) -> int:
    """A destination tag no payment at ``address`` has had, from ``draw``; RuntimeError after
    a few taken ones in a row (the account is close to full: see ADR 0023)."""
    p = models.payments
    for _ in range(_DRAWS):
        tag = draw()
        if not 0 <= tag <= MAX_TAG:
            raise ValueError(f"a destination tag is a uint32, not {tag}")
        taken = await session.scalar(
            select(p.c.id).where(p.c.payment_address == address, p.c.destination_tag == tag)
        )
        if taken is None:
            return tag
    raise RuntimeError(f"no free destination tag at {address} after {_DRAWS} draws")


async def _load(session: AsyncSession, business_id: str, mode: str, chain: str) -> Account | None:
    t = models.receiving_accounts
    row = (
        await session.execute(
            select(t).where(t.c.business_id == business_id, t.c.mode == mode, t.c.chain == chain)
        )
    ).one_or_none()
    if row is None:
        return None
    return Account(
        row.business_id,
        row.mode,
        row.chain,
        row.address,
        row.family_key,
        row.derivation_index,
        row.activated_at,
    )
