"""The replay store: a transaction unlocks one invoice, once. All of payments' SQL is here.

A claim is one row of ``coach_payment_claims`` keyed by (chain, canonical hash), with a unique
``invoice_id``, inserted in the same transaction that turns the invoice from ``open`` to
``paid``. The database decides races, never a read-then-write:

* ``INSERT … ON CONFLICT DO NOTHING RETURNING``: a second claim of the same hash (or of the same
  invoice by another hash) inserts nothing. On PostgreSQL a concurrent insert of the same key
  waits for the first transaction and then does nothing; on SQLite writers are serialised.
  Nothing fails, so the caller's transaction stays usable (an IntegrityError would abort it
  on PostgreSQL).
* ``UPDATE coach_invoices … WHERE status = 'open'``: when the invoice is no longer open (it
  expired, or was paid through coinpay meanwhile) our claim row is deleted again in the same
  transaction, so nothing changed.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.coach import models
from keel.core import db

__all__ = [
    "ClaimResult",
    "ExistingClaim",
    "Invoice",
    "OnClaimed",
    "claim",
    "claim_in",
    "find_claim",
    "load_invoice",
    "open_invoices",
]

OnClaimed = Callable[[AsyncConnection], Awaitable[None]]
_OPEN, _PAID, _DIRECT = "open", "paid", "direct"


class ClaimResult(enum.StrEnum):
    CLAIMED = "claimed"  # the invoice is paid by this transaction
    TX_USED = "tx_used"  # the transaction already paid an invoice: nothing changed
    INVOICE_NOT_OPEN = "invoice_not_open"  # paid by another transaction, or expired


@dataclass(frozen=True, slots=True)
class Invoice:
    """A row of ``coach_invoices`` (``amount`` in base units of ``asset``)."""

    id: str
    user_id: int
    route: str
    chain: str
    asset: str
    amount: int
    recipient: str
    status: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ExistingClaim:
    chain: str
    tx_hash: str
    invoice_id: str
    user_id: int
    claimed_at: datetime


async def claim(
    engine: AsyncEngine,
    *,
    chain: str,
    tx_hash: str,
    invoice_id: str,
    user_id: int,
    now: datetime,
    on_claimed: OnClaimed | None = None,
) -> ClaimResult:
    """Claims ``tx_hash`` for ``invoice_id`` in a write transaction of its own (module
    docstring). ``on_claimed(conn)`` runs in that transaction after a successful claim, so
    what paying buys (the user's paid_until) commits with it or not at all."""
    async with db.writing(engine) as conn:
        result = await claim_in(
            conn,
            chain=chain,
            tx_hash=tx_hash,
            invoice_id=invoice_id,
            user_id=user_id,
            now=now,
        )
        if result is ClaimResult.CLAIMED and on_claimed is not None:
            await on_claimed(conn)
        return result


async def claim_in(
    conn: AsyncConnection,
    *,
    chain: str,
    tx_hash: str,
    invoice_id: str,
    user_id: int,
    now: datetime,
) -> ClaimResult:
    """:func:`claim` inside the caller's open write transaction; changes nothing unless
    it returns CLAIMED."""
    claims = models.payment_claims
    inserted = await conn.scalar(
        db.insert(conn, claims)
        .values(
            chain=chain, tx_hash=tx_hash, invoice_id=invoice_id, user_id=user_id, claimed_at=now
        )
        .on_conflict_do_nothing()
        .returning(claims.c.tx_hash)
    )
    if inserted is None:
        used = await conn.scalar(
            select(claims.c.tx_hash).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
        )
        return ClaimResult.TX_USED if used is not None else ClaimResult.INVOICE_NOT_OPEN
    invoices = models.invoices
    paid = await conn.execute(
        update(invoices)
        .where(
            invoices.c.id == invoice_id,
            invoices.c.user_id == user_id,
            invoices.c.status == _OPEN,
        )
        .values(status=_PAID, paid_at=now, paid_by=tx_hash)
    )
    if paid.rowcount != 1:
        await conn.execute(
            delete(claims).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
        )
        return ClaimResult.INVOICE_NOT_OPEN
    return ClaimResult.CLAIMED


async def find_claim(engine: AsyncEngine, *, chain: str, tx_hash: str) -> ExistingClaim | None:
    """The claim of ``tx_hash`` on ``chain``, if it already unlocked an invoice."""
    claims = models.payment_claims
    async with db.reading(engine) as conn:
        row = (
            await conn.execute(
                select(claims).where(claims.c.chain == chain, claims.c.tx_hash == tx_hash)
            )
        ).first()
    return None if row is None else ExistingClaim(**row._mapping)


async def load_invoice(engine: AsyncEngine, *, invoice_id: str, user_id: int) -> Invoice | None:
    """``user_id``'s invoice ``invoice_id``, whatever its status; None when there is none."""
    invoices = models.invoices
    async with db.reading(engine) as conn:
        row = (
            await conn.execute(
                select(*_INVOICE_COLUMNS).where(
                    invoices.c.id == invoice_id, invoices.c.user_id == user_id
                )
            )
        ).first()
    return None if row is None else _invoice(row._mapping)


async def open_invoices(engine: AsyncEngine, *, user_id: int) -> list[Invoice]:
    """``user_id``'s open invoices to be paid directly on chain, newest first."""
    invoices = models.invoices
    async with db.reading(engine) as conn:
        rows = await conn.execute(
            select(*_INVOICE_COLUMNS)
            .where(
                invoices.c.user_id == user_id,
                invoices.c.route == _DIRECT,
                invoices.c.status == _OPEN,
            )
            .order_by(invoices.c.created_at.desc(), invoices.c.id.desc())
        )
        return [_invoice(row._mapping) for row in rows]


_INVOICE_COLUMNS = tuple(
    models.invoices.c[name]
    for name in (
        "id",
        "user_id",
        "route",
        "chain",
        "asset",
        "amount",
        "recipient",
        "status",
        "created_at",
        "expires_at",
    )
)


def _invoice(row: RowMapping) -> Invoice:
    return Invoice(**row)
