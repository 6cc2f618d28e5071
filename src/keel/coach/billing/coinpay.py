"""The coinpay route: a coinpay payment per invoice, unlocked by coinpay's signed webhook.

``subscribe`` asks coinpay (over its public API, keel.coach.adapters.coinpay) for a payment of
the plan's price in the chosen coin and records it as an open ``coach_invoices`` row; coinpay's
payment metadata carries the invoice and user ids. An open invoice for the same user and coin
that is still payable for a while is handed out again instead of a second payment.

``apply_coinpay_event`` applies one verified webhook event exactly once: the event id is
inserted into ``coach_coinpay_events`` in the same transaction as its effect, so a redelivery,
even one racing the first, finds it and changes nothing. What an event does to its invoice is
keel.coach.billing.lifecycle's state machine.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.adapters.coinpay import CoinpayApi, CoinpayPayment
from keel.coach.billing import coins, invoices, lifecycle
from keel.coach.billing.errors import InconsistentPayment, UnknownUser
from keel.coach.billing.events import CoinpayEvent
from keel.coach.billing.invoices import Invoice
from keel.coach.billing.lifecycle import Effect, InvoiceStatus
from keel.coach.settings import CoachSettings
from keel.core import db
from keel.core.logging import get_logger

log = get_logger("keel.coach.billing")

# An open invoice expiring sooner than this is not handed out again: the user needs time to pay.
REUSE_MARGIN = timedelta(minutes=5)
# Keys of coinpay's payment metadata that name our invoice and user.
INVOICE_KEY, USER_KEY = "coach_invoice_id", "coach_user_id"

EVENTS = Counter(
    "coach_coinpay_events_total", "coinpay webhook events applied, by outcome", ["outcome"]
)


@dataclass(frozen=True)
class Plan:
    """What a subscription costs and buys."""

    price_usd: Decimal
    days: int

    def __post_init__(self) -> None:
        if not self.price_usd.is_finite() or self.price_usd <= 0 or self.days < 1:
            raise ValueError("a plan costs a positive price and buys at least a day")

    @classmethod
    def from_settings(cls, settings: CoachSettings) -> Plan:
        """``price_usd`` and ``period_days``; ``ValueError`` for a price that is not a
        positive decimal."""
        try:
            price = Decimal(settings.price_usd)
        except InvalidOperation as exc:
            raise ValueError(f"price_usd is not a decimal: {settings.price_usd!r}") from exc
        return cls(price_usd=price, days=settings.period_days)


class OutcomeKind(enum.StrEnum):
    """What a webhook event did."""

    UNLOCKED = "unlocked"  # the invoice is paid now: the user has pro until ``paid_until``
    ALREADY_PAID = "already_paid"  # another event of a payment already counted
    EXPIRED = "expired"  # the invoice closed unpaid (coinpay expired or failed the payment)
    REVERSED = "reversed"  # a paid invoice's payment failed after a reorg; access was kept
    IGNORED = "ignored"  # nothing to do (progress, a stale event, not about a payment)
    UNKNOWN_PAYMENT = "unknown_payment"  # no invoice of ours is paid by this payment
    DUPLICATE = "duplicate"  # this very event was applied before: nothing changed


@dataclass(frozen=True)
class Outcome:
    """The result of one event. ``chat_id`` and ``paid_until`` are set when ``UNLOCKED`` (the
    bot tells the user "unlocked until …"); ``user_id`` whenever the invoice is known."""

    kind: OutcomeKind
    event_id: str
    invoice_id: str | None = None
    user_id: int | None = None
    chat_id: int | None = None
    paid_until: datetime | None = None


async def subscribe(
    sessions: async_sessionmaker[AsyncSession],
    coinpay: CoinpayApi,
    plan: Plan,
    *,
    user_id: int,
    coin: str,
    now: datetime,
    reuse_margin: timedelta = REUSE_MARGIN,
) -> Invoice:
    """An open invoice for ``plan`` payable in ``coin`` (coinpay's code: ``ETH``, ``USDC_SOL``):
    the user's open one if it is payable for ``reuse_margin`` more, else a new coinpay payment.
    Raises :class:`UnsupportedCoin`, :class:`UnknownUser`, :class:`InconsistentPayment`, and
    coinpay's :class:`CoinpayUnavailable` / :class:`CoinpayRefused` (nothing is written then)."""
    chosen = coins.get(coin)
    async with sessions() as session:
        if not await invoices.user_exists(session, user_id):
            raise UnknownUser()
        held = await _open_invoice(session, user_id, chosen, now + reuse_margin)
    if held is not None:
        return held

    invoice_id = uuid.uuid4().hex
    # Outside any transaction: a database lock must not wait on the network. The key makes a
    # retried request (a timeout whose answer was lost) return the same payment.
    payment = await coinpay.create_payment(
        plan.price_usd,
        chosen.code,
        f"coach: {plan.days} days",
        {INVOICE_KEY: invoice_id, USER_KEY: str(user_id)},
        idempotency_key=f"coach-invoice-{invoice_id}",
    )
    invoice = Invoice(
        id=invoice_id,
        user_id=user_id,
        route=invoices.COINPAY,
        chain=chosen.chain,
        asset=chosen.asset,
        amount=_checked_units(payment, chosen, plan, invoice_id, now),
        recipient=payment.payment_address,
        coinpay_payment_id=payment.id,
        status=InvoiceStatus.OPEN,
        days=plan.days,
        created_at=now,
        expires_at=payment.expires_at,
    )
    async with sessions() as session, session.begin():
        # The user's row, locked, serialises their /subscribe calls (PostgreSQL; SQLite has
        # one writer): a concurrent call that got in first has its invoice handed out, and
        # the payment just made expires unpaid at coinpay.
        await session.execute(
            models.users.select().where(models.users.c.id == user_id).with_for_update()
        )
        raced = await _open_invoice(session, user_id, chosen, now + reuse_margin)
        if raced is not None:
            return raced
        await invoices.insert(session, invoice)
    log.info(
        "coinpay_invoice_created",
        invoice_id=invoice.id,
        user_id=user_id,
        coin=chosen.code,
        payment_id=payment.id,
    )
    return invoice


async def apply_coinpay_event(
    sessions: async_sessionmaker[AsyncSession], event: CoinpayEvent, *, now: datetime
) -> Outcome:
    """Apply a verified coinpay event exactly once (module docstring). Verifies nothing
    itself: the caller has checked the signature. Database errors propagate, and coinpay's
    redelivery then applies the event."""
    async with sessions() as session, session.begin():
        outcome = await _apply(session, event, now)
    EVENTS.labels(outcome.kind.value).inc()
    log.info(
        "coinpay_event",
        event_id=event.id,
        event_type=event.type,
        payment_id=event.payment_id,
        outcome=outcome.kind.value,
        invoice_id=outcome.invoice_id,
    )
    return outcome


async def _apply(session: AsyncSession, event: CoinpayEvent, now: datetime) -> Outcome:
    conn = await session.connection()
    fresh = await session.execute(
        db.insert(conn, models.coinpay_events)
        .values(id=event.id, type=event.type[:64], received_at=now)
        .on_conflict_do_nothing()
        .returning(models.coinpay_events.c.id)
    )
    if fresh.first() is None:
        return Outcome(OutcomeKind.DUPLICATE, event.id)
    if event.payment_id is None:
        return Outcome(OutcomeKind.IGNORED, event.id)
    invoice = await invoices.by_coinpay_payment(session, event.payment_id, lock=True)
    claimed = event.metadata.get(INVOICE_KEY)
    if invoice is None or (claimed is not None and claimed != invoice.id):
        # Not ours (another integration on the same business), or a payment whose invoice
        # was never written (coach stopped between coinpay's answer and the insert; nobody
        # was shown its address). The event id is kept, so its redeliveries are duplicates.
        log.warning(
            "coinpay_event_unknown_payment",
            event_id=event.id,
            payment_id=event.payment_id,
            claimed_invoice=str(claimed)[:64] if claimed is not None else None,
        )
        return Outcome(OutcomeKind.UNKNOWN_PAYMENT, event.id)
    step = lifecycle.advance(invoice.status, lifecycle.signal(event.type, event.payment_status))

    def known(kind: OutcomeKind) -> Outcome:
        return Outcome(kind, event.id, invoice_id=invoice.id, user_id=invoice.user_id)

    if step.effect is Effect.UNLOCK:
        unlocked = await invoices.unlock(session, invoice, paid_by=event.id, now=now)
        if unlocked is None:  # paid by a transaction that committed after our read
            return known(OutcomeKind.ALREADY_PAID)
        return replace(
            known(OutcomeKind.UNLOCKED), chat_id=unlocked.chat_id, paid_until=unlocked.paid_until
        )
    if step.effect is Effect.CLOSE:
        await invoices.set_status(session, invoice.id, step.status)
        return known(OutcomeKind.EXPIRED)
    if step.effect is Effect.ALREADY_PAID:
        return known(OutcomeKind.ALREADY_PAID)
    if step.effect is Effect.REVERSED:
        log.warning(
            "coinpay_paid_invoice_reversed",
            event_id=event.id,
            invoice_id=invoice.id,
            user_id=invoice.user_id,
        )
        return known(OutcomeKind.REVERSED)
    return known(OutcomeKind.IGNORED)


async def _open_invoice(
    session: AsyncSession, user_id: int, coin: coins.Coin, after: datetime
) -> Invoice | None:
    return await invoices.open_for(
        session,
        user_id=user_id,
        route=invoices.COINPAY,
        chain=coin.chain,
        asset=coin.asset,
        after=after,
    )


def _checked_units(
    payment: CoinpayPayment, coin: coins.Coin, plan: Plan, invoice_id: str, now: datetime
) -> int:
    """The payment's crypto amount in base units, after checking the payment is the one asked
    for: a mismatch must never become an invoice the user pays."""
    if payment.blockchain != coin.code:
        raise InconsistentPayment(f"coinpay made a {payment.blockchain} payment, not {coin.code}")
    if payment.amount_usd != plan.price_usd:
        raise InconsistentPayment(f"coinpay priced the payment at {payment.amount_usd} USD")
    if payment.metadata.get(INVOICE_KEY, invoice_id) != invoice_id:
        raise InconsistentPayment("coinpay's payment belongs to another invoice")
    if payment.expires_at <= now:
        raise InconsistentPayment("coinpay's payment has already expired")
    try:
        units = coins.to_units(payment.crypto_amount, coin.decimals)
    except ValueError as exc:
        raise InconsistentPayment(f"coinpay's amount is not payable: {exc}") from exc
    if units <= 0:
        raise InconsistentPayment("coinpay's amount is zero")
    return units
