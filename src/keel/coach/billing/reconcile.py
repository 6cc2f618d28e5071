"""Payments whose webhook never arrived: asked of coinpay directly.

coinpay retries a failed delivery eight times over about a day, then gives up; a coach that was
down (or misconfigured) that long would leave a user who paid without their plan. So a worker
asks coinpay, every few minutes, about the open coinpay invoices made between ``settle`` and
``horizon`` ago, and applies what it reads as the event coinpay would have sent: the same
state machine and the same exactly-once unlock as the webhook. An invoice the webhook settles
first is no longer open; a poll that races the webhook loses on the invoice's status, so
nobody is unlocked twice. The synthetic event id (``poll:<payment>:<status>``) keeps each
observation once in ``coach_coinpay_events``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.adapters.coinpay import CoinpayApi, CoinpayError
from keel.coach.billing.coinpay import Outcome, apply_coinpay_event
from keel.coach.billing.events import CoinpayEvent
from keel.coach.billing.lifecycle import InvoiceStatus
from keel.core.logging import get_logger

log = get_logger("keel.coach.billing")

# What coinpay's payment statuses mean as events (billing.lifecycle reads the type).
_EVENT_OF_STATUS: Final = {
    "confirmed": "payment.confirmed",
    "forwarding": "payment.confirmed",
    "forwarded": "payment.forwarded",
    "completed": "payment.completed",
    "expired": "payment.expired",
    "failed": "payment.failed",
}
SETTLE: Final = timedelta(minutes=10)  # the webhook's turn first
HORIZON: Final = timedelta(days=7)  # past this an unpaid invoice is not asked about again
BATCH: Final = 50


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    coinpay: CoinpayApi,
    *,
    now: datetime,
    settle: timedelta = SETTLE,
    horizon: timedelta = HORIZON,
) -> list[Outcome]:
    """Ask coinpay about open invoices old enough; the outcomes of what changed."""
    t = models.invoices
    async with sessions() as session:
        rows = (
            await session.execute(
                select(t.c.coinpay_payment_id)
                .where(
                    t.c.route == "coinpay",
                    t.c.status == InvoiceStatus.OPEN.value,
                    t.c.coinpay_payment_id.is_not(None),
                    t.c.created_at <= now - settle,
                    t.c.created_at > now - horizon,
                )
                .order_by(t.c.created_at)
                .limit(BATCH)
            )
        ).all()
    outcomes: list[Outcome] = []
    for (payment_id,) in rows:
        try:
            payment = await coinpay.get_payment(payment_id)
        except CoinpayError as exc:  # down, or refused: the next pass asks again
            log.warning("coinpay_reconcile_failed", payment_id=payment_id, error=str(exc))
            continue
        event_type = _EVENT_OF_STATUS.get(payment.status)
        if event_type is None:  # still waiting for the money
            continue
        event = CoinpayEvent(
            id=f"poll:{payment_id}:{payment.status}"[:128],
            type=event_type,
            payment_id=payment_id,
            payment_status=payment.status,
            metadata=dict(payment.metadata),
        )
        outcomes.append(await apply_coinpay_event(sessions, event, now=now))
    return outcomes
