"""Payments whose webhook never came: the worker asks coinpay and unlocks exactly once, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from keel.coach import models
from keel.coach.adapters.coinpay import CoinpayUnavailable
from keel.coach.billing import coinpay
from keel.coach.billing.coinpay import OutcomeKind, Plan
from keel.coach.billing.events import CoinpayEvent
from keel.coach.billing.reconcile import reconcile
from tests.coach.billing.conftest import NOW, MakeUser, Sessions, paid_until
from tests.coach.billing.fake_coinpay import FakeCoinpay

PLAN = Plan(price_usd=Decimal("10"), days=30)
LATER = NOW + timedelta(minutes=11)


async def status_of(sessions: Sessions, invoice_id: str) -> str:
    async with sessions() as session:
        row = (
            await session.execute(
                select(models.invoices.c.status).where(models.invoices.c.id == invoice_id)
            )
        ).one()
    return str(row.status)


async def test_a_confirmed_payment_without_its_webhook_unlocks_once(
    sessions: Sessions, make_user: MakeUser
) -> None:
    fake = FakeCoinpay(lambda: NOW)
    user = await make_user()
    invoice = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    payment_id = invoice.coinpay_payment_id or ""
    # Too young: the webhook gets its turn first; nothing is asked.
    assert await reconcile(sessions, fake, now=NOW + timedelta(minutes=5)) == []
    calls = fake.calls
    # Still waiting for the money: asked, nothing changes.
    assert await reconcile(sessions, fake, now=LATER) == []
    assert fake.calls == calls + 1
    fake.set_status(payment_id, "confirmed")
    (outcome,) = await reconcile(sessions, fake, now=LATER)
    assert outcome.kind is OutcomeKind.UNLOCKED
    assert outcome.paid_until == LATER + timedelta(days=30)
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)
    # Paid now: no longer asked about; the late webhook is a no-op.
    assert await reconcile(sessions, fake, now=LATER + timedelta(minutes=5)) == []
    late = CoinpayEvent(
        id="evt_late", type="payment.confirmed", payment_id=payment_id, payment_status="confirmed"
    )
    assert (await coinpay.apply_coinpay_event(sessions, late, now=LATER)).kind is (
        OutcomeKind.ALREADY_PAID
    )
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)


async def test_an_expired_payment_closes_and_coinpay_down_is_tried_again(
    sessions: Sessions, make_user: MakeUser
) -> None:
    fake = FakeCoinpay(lambda: NOW)
    user = await make_user()
    invoice = await coinpay.subscribe(sessions, fake, PLAN, user_id=user, coin="ETH", now=NOW)
    fake.fail_with = CoinpayUnavailable("coinpay is down")
    assert await reconcile(sessions, fake, now=LATER) == []
    assert await status_of(sessions, invoice.id) == "open"
    fake.fail_with = None
    fake.set_status(invoice.coinpay_payment_id or "", "expired")
    (outcome,) = await reconcile(sessions, fake, now=LATER)
    assert outcome.kind is OutcomeKind.EXPIRED
    assert await status_of(sessions, invoice.id) == "expired"
    assert await paid_until(sessions, user) is None
    # Closed now: not asked about again.
    assert await reconcile(sessions, fake, now=NOW + timedelta(days=8)) == []
