"""Reading and writing payments: every change runs in the caller's transaction, which also
appends the event log and writes the webhook outbox, so the three never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import lifecycle, models, notify, presentation
from keel.coinpay.errors import PaymentNotFound
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.model import Payment

FORWARD_JOB = "payment.forward"
# A sweep never gives up: until it lands the funds sit at our address. Retries are spaced by
# the handler; a sweep that keeps failing shows in coinpay_settlement_failures_total.
FORWARD_ATTEMPTS = 100_000

PAYMENT_TRANSITIONS = Counter(
    "coinpay_payment_transitions_total", "Payment status changes", ["blockchain", "status"]
)

_BY_ID = select(models.payments).where(models.payments.c.id == bindparam("payment_id"))


async def load(session: AsyncSession, payment_id: str, *, lock: bool = False) -> Payment:
    """A payment inside the caller's transaction (``lock``: FOR UPDATE where the engine has it)."""
    query = select(models.payments).where(models.payments.c.id == payment_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise PaymentNotFound()
    return Payment.from_row(row)


async def lookup(gw: Gateway, payment_id: str) -> Payment:
    """A payment by id, outside any transaction (the API's and the checkout page's reads)."""
    row = await gw.lookups.one_or_none(_BY_ID, payment_id=payment_id)
    if row is None:
        raise PaymentNotFound()
    return Payment.from_row(row)


async def notify_event(
    gw: Gateway, session: AsyncSession, payment: Payment, event_type: str
) -> None:
    await notify.record_event(
        session,
        gw.queue,
        gw.clock,
        business_id=payment.business_id,
        mode=payment.mode,
        event_type=event_type,
        payment_id=payment.id,
        data=presentation.event_data(payment),
    )


async def log_event(
    session: AsyncSession,
    payment: Payment,
    event_type: str,
    from_status: Status | None,
    to_status: Status,
    cause: str,
    detail: Mapping[str, Any],
) -> None:
    await session.execute(
        models.payment_events.insert().values(
            payment_id=payment.id,
            type=event_type,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            cause=cause,
            detail=dict(detail),
            created_at=payment.updated_at,
        )
    )


async def save(
    gw: Gateway,
    session: AsyncSession,
    payment: Payment,
    outcome: lifecycle.Outcome,
    cause: str,
    **extra: Any,
) -> Payment:
    """Persist a new state, its event log entries, webhooks and follow-up jobs."""
    s = outcome.state
    now = gw.clock.now()
    values: dict[str, Any] = {
        "status": s.status.value,
        "received_amount": s.received,
        "confirmations": s.confirmations,
        "paid_partial": s.paid_partial,
        "paid_over": s.paid_over,
        "paid_late": s.paid_late,
        "tx_hash": s.tx_hash,
        "updated_at": now,
        **extra,
    }
    if s.status is Status.CONFIRMED and payment.status != Status.CONFIRMED.value:
        values["confirmed_at"] = now
    await session.execute(
        models.payments.update().where(models.payments.c.id == payment.id).values(**values)
    )
    fresh = await load(session, payment.id)
    for step in outcome.transitions:
        await log_event(
            session,
            fresh,
            step.event or f"status.{step.to_status.value}",
            step.from_status,
            step.to_status,
            cause,
            {"reason": step.reason, "received": str(s.received), "tx_hash": s.tx_hash},
        )
        if step.from_status is not step.to_status:
            PAYMENT_TRANSITIONS.labels(payment.blockchain, step.to_status.value).inc()
        if step.event:
            await notify_event(gw, session, fresh, step.event)
    entered_confirmed = any(t.to_status is Status.CONFIRMED for t in outcome.transitions)
    if entered_confirmed and fresh.custodial:
        await gw.queue.enqueue(
            session,
            FORWARD_JOB,
            {"payment_id": payment.id},
            dedupe_key=f"forward:{payment.id}",
            max_attempts=FORWARD_ATTEMPTS,
        )
    return fresh


async def record_deposits(
    gw: Gateway, session: AsyncSession, payment: Payment, deposits: Sequence[lifecycle.Deposit]
) -> None:
    """Keep the payment's own copy of what the chain showed (amounts, depth, reversals)."""
    t = models.deposits
    now = gw.clock.now()
    known = {
        r.tx_hash: r
        for r in (await session.execute(select(t).where(t.c.payment_id == payment.id))).all()
    }
    for d in deposits:
        if d.tx_hash in known:
            await session.execute(
                t.update()
                .where(t.c.id == known[d.tx_hash].id)
                .values(confirmations=d.confirmations, reverted=d.reverted)
            )
        else:
            await session.execute(
                t.insert().values(
                    payment_id=payment.id,
                    tx_hash=d.tx_hash,
                    amount=d.amount,
                    confirmations=d.confirmations,
                    reverted=d.reverted,
                    after_expiry=now > payment.expires_at,
                    first_seen_at=now,
                )
            )
