"""The replay store: a transaction unlocks one invoice, once. All of payments' SQL is here.

A claim is one row of ``coach_payment_claims`` keyed by (chain, canonical hash), with a unique
``invoice_id``, inserted in the same transaction that unlocks the invoice
(:func:`keel.coach.billing.invoices.unlock`: the invoice turns ``paid`` and its user's
``paid_until`` grows). The database decides races, never a read-then-write:

* ``INSERT … ON CONFLICT DO NOTHING RETURNING``: a second claim of the same hash (or of the same
  invoice by another hash) inserts nothing. On PostgreSQL a concurrent insert of the same key
  waits for the first transaction and then does nothing; on SQLite writers are serialised.
  Nothing fails, so the transaction stays usable (an IntegrityError would abort it on
  PostgreSQL).
* ``unlock`` is conditional (``status != 'paid'``): when the invoice was paid meanwhile (through
  coinpay, say) our claim row is deleted again in the same transaction, so nothing changed.

An expired invoice can still be claimed, as billing's lifecycle lets coinpay's late payments
through: the user paid what they were asked, so they get what they paid for.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import RowMapping, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.billing import invoices
from keel.coach.billing.lifecycle import InvoiceStatus
from keel.core import db

__all__ = [
    "Claim",
    "ClaimResult",
    "ExistingClaim",
    "claim",
    "claim_in",
    "find_claim",
    "load_invoice",
    "payable_invoices",
]

DIRECT: Final = "direct"  # coach_invoices.route of an invoice paid by a pasted hash
# The newest this many unpaid direct invoices of a user are matched against a payment.
_CANDIDATES: Final = 20


class ClaimResult(enum.StrEnum):
    CLAIMED = "claimed"  # the invoice is paid by this transaction, its days granted
    TX_USED = "tx_used"  # the transaction already paid an invoice: nothing changed
    INVOICE_PAID = "invoice_paid"  # the invoice was paid by another transaction: nothing changed


@dataclass(frozen=True, slots=True)
class Claim:
    result: ClaimResult
    unlocked: invoices.Unlocked | None = None  # CLAIMED: the user's chat and new paid_until


@dataclass(frozen=True, slots=True)
class ExistingClaim:
    chain: str
    tx_hash: str
    invoice_id: str
    user_id: int
    claimed_at: datetime


async def claim(
    sessions: async_sessionmaker[AsyncSession],
    *,
    chain: str,
    tx_hash: str,
    invoice: invoices.Invoice,
    now: datetime,
) -> Claim:
    """Claims ``tx_hash`` for ``invoice`` and unlocks it, in a write transaction of its own
    (module docstring)."""
    async with db.transaction(sessions) as session:
        return await claim_in(session, chain=chain, tx_hash=tx_hash, invoice=invoice, now=now)


async def claim_in(
    session: AsyncSession,
    *,
    chain: str,
    tx_hash: str,
    invoice: invoices.Invoice,
    now: datetime,
) -> Claim:
    """:func:`claim` inside the caller's write transaction; changes nothing unless the
    result is CLAIMED."""
    claims = models.payment_claims
    inserted = await session.scalar(
        db.insert(await session.connection(), claims)
        .values(
            chain=chain,
            tx_hash=tx_hash,
            invoice_id=invoice.id,
            user_id=invoice.user_id,
            claimed_at=now,
        )
        .on_conflict_do_nothing()
        .returning(claims.c.tx_hash)
    )
    if inserted is None:
        used = await session.scalar(
            select(claims.c.tx_hash).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
        )
        return Claim(ClaimResult.TX_USED if used is not None else ClaimResult.INVOICE_PAID)
    unlocked = await invoices.unlock(session, invoice, paid_by=tx_hash, now=now)
    if unlocked is None:
        await session.execute(
            delete(claims).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
        )
        return Claim(ClaimResult.INVOICE_PAID)
    return Claim(ClaimResult.CLAIMED, unlocked)


async def find_claim(
    sessions: async_sessionmaker[AsyncSession], *, chain: str, tx_hash: str
) -> ExistingClaim | None:
    """The claim of ``tx_hash`` on ``chain``, if it already unlocked an invoice."""
    claims = models.payment_claims
    async with sessions() as session:
        row = (
            await session.execute(
                select(claims).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
            )
        ).first()
    return None if row is None else ExistingClaim(**row._mapping)


async def load_invoice(
    sessions: async_sessionmaker[AsyncSession], *, invoice_id: str, user_id: int
) -> invoices.Invoice | None:
    """``user_id``'s invoice ``invoice_id``, whatever its status; None when there is none."""
    t = models.invoices
    async with sessions() as session:
        row = (
            await session.execute(select(t).where(t.c.id == invoice_id, t.c.user_id == user_id))
        ).first()
    return None if row is None else _invoice(row._mapping)


async def payable_invoices(
    sessions: async_sessionmaker[AsyncSession], *, user_id: int, chains: Collection[str]
) -> list[invoices.Invoice]:
    """``user_id``'s unpaid (open or expired) direct invoices on ``chains``, newest first."""
    t = models.invoices
    async with sessions() as session:
        rows = await session.execute(
            select(t)
            .where(
                t.c.user_id == user_id,
                t.c.route == DIRECT,
                t.c.chain.in_(list(chains)),
                t.c.status != InvoiceStatus.PAID.value,
            )
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(_CANDIDATES)
        )
        return [_invoice(row._mapping) for row in rows]


def _invoice(row: RowMapping) -> invoices.Invoice:
    return invoices.Invoice(**{**row, "status": InvoiceStatus(row["status"])})
