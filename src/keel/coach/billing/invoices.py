"""coach_invoices as value objects, and the one write that turns a paid invoice into access.

Every function runs in the caller's session and transaction. :func:`unlock` is the only place
``coach_users.paid_until`` grows, whichever route (coinpay or a direct transfer) was paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coach import models
from keel.coach.billing.errors import UnknownUser
from keel.coach.billing.lifecycle import InvoiceStatus

COINPAY = "coinpay"  # coach_invoices.route


@dataclass(frozen=True)
class Invoice:
    """What a user was asked to pay. ``amount`` is in the asset's base units."""

    id: str
    user_id: int
    route: str
    chain: str
    asset: str
    amount: int
    recipient: str  # the address to pay
    coinpay_payment_id: str | None
    status: InvoiceStatus
    days: int  # what paying buys
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None = None
    paid_by: str | None = None  # a transaction hash, or the coinpay event that paid it


@dataclass(frozen=True)
class Unlocked:
    """Access after an invoice was paid: the user's pro plan runs until ``paid_until``."""

    user_id: int
    chat_id: int
    paid_until: datetime


async def insert(session: AsyncSession, invoice: Invoice) -> None:
    await session.execute(
        models.invoices.insert().values(
            id=invoice.id,
            user_id=invoice.user_id,
            route=invoice.route,
            chain=invoice.chain,
            asset=invoice.asset,
            amount=invoice.amount,
            recipient=invoice.recipient,
            coinpay_payment_id=invoice.coinpay_payment_id,
            status=invoice.status.value,
            days=invoice.days,
            created_at=invoice.created_at,
            expires_at=invoice.expires_at,
        )
    )


async def open_for(
    session: AsyncSession, *, user_id: int, route: str, chain: str, asset: str, after: datetime
) -> Invoice | None:
    """The user's newest open invoice of this route, chain and asset still payable at
    ``after``; None if there is none."""
    t = models.invoices
    row = (
        await session.execute(
            select(t)
            .where(
                t.c.user_id == user_id,
                t.c.status == InvoiceStatus.OPEN.value,
                t.c.route == route,
                t.c.chain == chain,
                t.c.asset == asset,
                t.c.expires_at > after,
            )
            .order_by(t.c.created_at.desc(), t.c.id)
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else _invoice(row)


async def by_coinpay_payment(
    session: AsyncSession, payment_id: str, *, lock: bool = False
) -> Invoice | None:
    """The invoice coinpay's payment ``payment_id`` pays (``lock``: FOR UPDATE on
    PostgreSQL, so events of one payment apply one after the other)."""
    t = models.invoices
    query = select(t).where(t.c.coinpay_payment_id == payment_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else _invoice(row)


async def set_status(session: AsyncSession, invoice_id: str, status: InvoiceStatus) -> None:
    t = models.invoices
    await session.execute(update(t).where(t.c.id == invoice_id).values(status=status.value))


async def user_exists(session: AsyncSession, user_id: int) -> bool:
    u = models.users
    return (await session.execute(select(u.c.id).where(u.c.id == user_id))).first() is not None


async def unlock(
    session: AsyncSession, invoice: Invoice, *, paid_by: str, now: datetime
) -> Unlocked | None:
    """Mark ``invoice`` paid and extend its user's ``paid_until`` by its days, counted from
    the later of ``now`` and the current ``paid_until`` (paying early never loses days).
    None when the invoice was already paid: the update is conditional, so of two racing
    transactions exactly one extends."""
    t, u = models.invoices, models.users
    marked = await session.execute(
        update(t)
        .where(t.c.id == invoice.id, t.c.status != InvoiceStatus.PAID.value)
        .values(status=InvoiceStatus.PAID.value, paid_at=now, paid_by=paid_by[:128])
    )
    if _rowcount(marked) != 1:
        return None
    # Locked: two invoices of one user paid at once must both count.
    user = (
        await session.execute(
            select(u.c.chat_id, u.c.paid_until).where(u.c.id == invoice.user_id).with_for_update()
        )
    ).one_or_none()
    if user is None:  # the row is cascaded away with its user, so this is a bug
        raise UnknownUser(f"Invoice {invoice.id} names no user")
    start = max(now, user.paid_until) if user.paid_until is not None else now
    paid_until = start + timedelta(days=invoice.days)
    await session.execute(update(u).where(u.c.id == invoice.user_id).values(paid_until=paid_until))
    return Unlocked(user_id=invoice.user_id, chat_id=user.chat_id, paid_until=paid_until)


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return count


def _invoice(row: Any) -> Invoice:
    return Invoice(
        id=row.id,
        user_id=row.user_id,
        route=row.route,
        chain=row.chain,
        asset=row.asset,
        amount=row.amount,
        recipient=row.recipient,
        coinpay_payment_id=row.coinpay_payment_id,
        status=InvoiceStatus(row.status),
        days=row.days,
        created_at=row.created_at,
        expires_at=row.expires_at,
        paid_at=row.paid_at,
        paid_by=row.paid_by,
    )
