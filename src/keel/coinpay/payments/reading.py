"""Reading payments: one by id within the caller's world, its event log, lists."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from keel.coinpay import models, presentation
from keel.coinpay.apikeys import Principal
from keel.coinpay.errors import PaymentNotFound
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.creation import own_business
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.store import lookup
from keel.core.errors import BadRequest


async def get(gw: Gateway, principal: Principal, payment_id: str) -> Payment:
    """A payment of the caller's business and mode; anything else is not found."""
    principal.require("payments:read")
    payment = await lookup(gw, payment_id)
    if payment.business_id != principal.business_id or payment.mode != principal.mode:
        raise PaymentNotFound()
    return payment


async def events(gw: Gateway, principal: Principal, payment_id: str) -> list[dict[str, Any]]:
    """The payment's event log, oldest first."""
    await get(gw, principal, payment_id)
    t = models.payment_events
    async with gw.sessions() as session:
        rows = await session.execute(select(t).where(t.c.payment_id == payment_id).order_by(t.c.id))
        return [
            {
                "type": r.type,
                "from_status": r.from_status,
                "to_status": r.to_status,
                "cause": r.cause,
                "detail": r.detail,
                "created_at": presentation.iso(r.created_at),
            }
            for r in rows.all()
        ]


async def get_public(gw: Gateway, payment_id: str) -> Payment:
    """A payment for its checkout page (the id is the capability)."""
    return await lookup(gw, payment_id)


async def list_payments(
    gw: Gateway,
    principal: Principal,
    *,
    business_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Payment]:
    principal.require("payments:read")
    if business_id is not None:
        own_business(principal, business_id)
    if status is not None and status not in {s.value for s in Status}:
        raise BadRequest(f"Unknown status {status!r}")
    t = models.payments
    query = (
        select(t)
        .where(t.c.business_id == principal.business_id, t.c.mode == principal.mode)
        .order_by(t.c.created_at.desc(), t.c.id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(t.c.status == status)
    async with gw.sessions() as session:
        return [Payment.from_row(r) for r in (await session.execute(query)).all()]


async def operator_list(
    gw: Gateway, *, business_id: str | None, status: str | None, limit: int
) -> list[Payment]:
    """Recent payments across businesses (the CLI's operator view, no API key involved)."""
    t = models.payments
    query = select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    if business_id is not None:
        query = query.where(t.c.business_id == business_id)
    if status is not None:
        query = query.where(t.c.status == status)
    async with gw.sessions() as session:
        return [Payment.from_row(r) for r in (await session.execute(query)).all()]
