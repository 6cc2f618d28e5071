"""``apply_coinpay_event``: a paid invoice extends ``paid_until`` exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from keel.coach import models
from keel.coach.billing import coinpay
from keel.coach.billing.coinpay import OutcomeKind, Plan
from keel.coach.billing.events import CoinpayEvent
from keel.coach.billing.invoices import Invoice
from keel.coach.billing.lifecycle import InvoiceStatus
from tests.coach.billing.conftest import NOW, MakeUser, Sessions, paid_until
from tests.coach.billing.fake_coinpay import FakeCoinpay

PLAN = Plan(price_usd=Decimal("10"), days=30)
LATER = NOW + timedelta(minutes=3)


def event(invoice: Invoice, event_type: str, status: str, **fields: object) -> CoinpayEvent:
    defaults: dict[str, object] = {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "payment_id": invoice.coinpay_payment_id,
        "payment_status": status,
        "metadata": {"coach_invoice_id": invoice.id, "coach_user_id": str(invoice.user_id)},
    }
    defaults.update(fields)
    return CoinpayEvent(**defaults)  # type: ignore[arg-type]


async def open_invoice(sessions: Sessions, user_id: int, coin: str = "ETH") -> Invoice:
    return await coinpay.subscribe(
        sessions, FakeCoinpay(lambda: NOW), PLAN, user_id=user_id, coin=coin, now=NOW
    )


async def invoice_status(sessions: Sessions, invoice_id: str) -> str:
    async with sessions() as session:
        status = await session.scalar(
            select(models.invoices.c.status).where(models.invoices.c.id == invoice_id)
        )
    return str(status)


async def test_a_confirmed_payment_unlocks_its_days_from_now(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    confirmed = event(invoice, "payment.confirmed", "confirmed")
    outcome = await coinpay.apply_coinpay_event(sessions, confirmed, now=LATER)
    assert outcome == coinpay.Outcome(
        OutcomeKind.UNLOCKED,
        confirmed.id,
        invoice_id=invoice.id,
        user_id=user,
        chat_id=user + 1_000_000,
        paid_until=LATER + timedelta(days=30),
    )
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)
    async with sessions() as session:
        row = (await session.execute(select(models.invoices))).one()
    assert (row.status, row.paid_at, row.paid_by) == ("paid", LATER, confirmed.id)


async def test_paying_early_adds_to_the_time_left(sessions: Sessions, make_user: MakeUser) -> None:
    ahead = NOW + timedelta(days=5)
    user = await make_user(paid_until=ahead)
    invoice = await open_invoice(sessions, user)
    await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.confirmed", "confirmed"), now=LATER
    )
    assert await paid_until(sessions, user) == ahead + timedelta(days=30)


async def test_a_lapsed_plan_restarts_from_now(sessions: Sessions, make_user: MakeUser) -> None:
    user = await make_user(paid_until=NOW - timedelta(days=40))
    invoice = await open_invoice(sessions, user)
    await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.confirmed", "confirmed"), now=LATER
    )
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)


async def test_a_redelivered_event_changes_nothing(sessions: Sessions, make_user: MakeUser) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    confirmed = event(invoice, "payment.confirmed", "confirmed")
    await coinpay.apply_coinpay_event(sessions, confirmed, now=LATER)
    again = await coinpay.apply_coinpay_event(sessions, confirmed, now=LATER + timedelta(hours=1))
    assert again == coinpay.Outcome(OutcomeKind.DUPLICATE, confirmed.id)
    completed = event(invoice, "payment.completed", "forwarded")
    later = await coinpay.apply_coinpay_event(sessions, completed, now=LATER)
    assert later.kind is OutcomeKind.ALREADY_PAID
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)


async def test_racing_deliveries_unlock_once(sessions: Sessions, make_user: MakeUser) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    confirmed = event(invoice, "payment.confirmed", "confirmed")
    completed = event(invoice, "payment.completed", "forwarded")
    # The same event delivered four times at once, and another paid event of the same payment.
    outcomes = await asyncio.gather(
        *(
            coinpay.apply_coinpay_event(sessions, e, now=LATER)
            for e in (confirmed, confirmed, completed, confirmed, completed, confirmed)
        )
    )
    kinds = sorted(o.kind.value for o in outcomes)
    assert kinds.count("unlocked") == 1
    assert kinds.count("duplicate") == 4  # every repeat of an id after its first
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)
    async with sessions() as session:
        seen = await session.scalar(select(func.count()).select_from(models.coinpay_events))
    assert seen == 2


async def test_two_invoices_of_one_user_paid_at_once_both_count(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    eth = await open_invoice(sessions, user, "ETH")
    sol = await open_invoice(sessions, user, "SOL")
    await asyncio.gather(
        coinpay.apply_coinpay_event(sessions, event(eth, "payment.confirmed", "c"), now=LATER),
        coinpay.apply_coinpay_event(sessions, event(sol, "payment.confirmed", "c"), now=LATER),
    )
    assert await paid_until(sessions, user) == LATER + timedelta(days=60)


async def test_an_expired_payment_closes_its_invoice_and_a_late_payment_still_unlocks(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    expired = event(invoice, "payment.expired", "expired")
    closed = await coinpay.apply_coinpay_event(sessions, expired, now=LATER)
    assert closed.kind is OutcomeKind.EXPIRED
    assert await invoice_status(sessions, invoice.id) == InvoiceStatus.EXPIRED
    assert await paid_until(sessions, user) is None
    # coinpay keeps watching an expired payment; paid in full late, it confirms.
    late = event(invoice, "payment.confirmed", "confirmed")
    unlocked = await coinpay.apply_coinpay_event(sessions, late, now=LATER)
    assert unlocked.kind is OutcomeKind.UNLOCKED
    assert await invoice_status(sessions, invoice.id) == InvoiceStatus.PAID


async def test_out_of_order_expiry_after_payment_is_ignored(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.confirmed", "confirmed"), now=LATER
    )
    stale = await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.expired", "expired"), now=LATER
    )
    assert stale.kind is OutcomeKind.IGNORED
    assert await invoice_status(sessions, invoice.id) == InvoiceStatus.PAID
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)


async def test_a_reorg_after_unlocking_is_flagged_and_access_kept(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.confirmed", "confirmed"), now=LATER
    )
    reversed_ = await coinpay.apply_coinpay_event(
        sessions, event(invoice, "payment.reversed", "failed"), now=LATER
    )
    assert reversed_.kind is OutcomeKind.REVERSED
    assert await paid_until(sessions, user) == LATER + timedelta(days=30)


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("payment.created", "pending"),
        ("payment.pending", "pending"),  # partly paid
        ("payment.confirming", "confirming"),
        ("payment.reversed", "pending"),
    ],
)
async def test_progress_events_change_nothing(
    sessions: Sessions, make_user: MakeUser, event_type: str, status: str
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    outcome = await coinpay.apply_coinpay_event(
        sessions, event(invoice, event_type, status), now=LATER
    )
    assert (outcome.kind, outcome.invoice_id) == (OutcomeKind.IGNORED, invoice.id)
    assert await invoice_status(sessions, invoice.id) == InvoiceStatus.OPEN


async def test_events_that_are_not_for_one_of_our_invoices_unlock_nothing(
    sessions: Sessions, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(sessions, user)
    strangers = [
        event(invoice, "payment.confirmed", "confirmed", payment_id="someone-elses"),
        event(invoice, "payment.confirmed", "confirmed", metadata={"coach_invoice_id": "other"}),
    ]
    for stranger in strangers:
        outcome = await coinpay.apply_coinpay_event(sessions, stranger, now=LATER)
        assert outcome.kind is OutcomeKind.UNKNOWN_PAYMENT
        again = await coinpay.apply_coinpay_event(sessions, stranger, now=LATER)
        assert again.kind is OutcomeKind.DUPLICATE  # recorded, so retries are cheap
    business = CoinpayEvent(id="evt_b", type="business.updated")
    assert (await coinpay.apply_coinpay_event(sessions, business, now=LATER)).kind is (
        OutcomeKind.IGNORED
    )
    assert await paid_until(sessions, user) is None
    assert await invoice_status(sessions, invoice.id) == InvoiceStatus.OPEN
