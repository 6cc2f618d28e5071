"""Following payments on their chains: what arrived, how deep, what expired."""

from __future__ import annotations

from sqlalchemy import and_, or_, select

from keel.coinpay import lifecycle, models
from keel.coinpay.assets import coins_on, get_coin
from keel.coinpay.chains.scanner import ScanReport, live_payments_at
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.store import load, record_deposits, save
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.payments")


async def refresh(gw: Gateway, payment_id: str, *, cause: str) -> Payment:
    """Ask the payment's chain what arrived and move the payment accordingly."""
    async with gw.sessions() as session:
        payment = await load(session, payment_id)
    watcher = gw.watchers.get(payment.mode, {}).get(get_coin(payment.blockchain).chain)
    if watcher is None:
        return payment
    tag = payment.destination_tag
    deposits = await watcher.deposits_to(
        payment.blockchain, payment.payment_address, None if tag is None else str(tag)
    )
    async with gw.sessions() as session, session.begin():
        payment = await load(session, payment_id, lock=True)
        now = gw.clock.now()
        expired = lifecycle.expire(payment.state(), payment.policy(), now)
        if expired.transitions:
            payment = await save(gw, session, payment, expired, "expiry")
        await record_deposits(gw, session, payment, deposits)
        outcome = lifecycle.observe(payment.state(), deposits, payment.policy(), now)
        if outcome.state != payment.state() or outcome.transitions:
            payment = await save(gw, session, payment, outcome, cause)
    return payment


async def expire_due(gw: Gateway, *, batch: int = 500) -> int:
    """Expire pending payments whose window has passed; returns how many."""
    t = models.payments
    now = gw.clock.now()
    async with gw.sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(t.c.id)
                    .where(t.c.status == Status.PENDING.value, t.c.expires_at <= now)
                    .limit(batch)
                )
            ).scalars()
        )
    done = 0
    for payment_id in ids:
        async with gw.sessions() as session, session.begin():
            payment = await load(session, payment_id, lock=True)
            outcome = lifecycle.expire(payment.state(), payment.policy(), gw.clock.now())
            if outcome.transitions:
                await save(gw, session, payment, outcome, "expiry")
                done += 1
    return done


async def watch_active(gw: Gateway, *, mode: str = "test", batch: int = 500) -> int:
    """Ask the watcher of every payment of ``mode`` still waiting on its chain (including
    expired ones within their monitoring window, so a late payment is still seen). The test
    world's simulated chain is polled this way; live chains are scanned (:func:`after_scan`)."""
    t = models.payments
    now = gw.clock.now()
    waiting = or_(
        t.c.status.in_([Status.PENDING.value, Status.CONFIRMING.value]),
        and_(t.c.status == Status.EXPIRED.value, t.c.monitor_until >= now),
    )
    async with gw.sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(t.c.id)
                    .where(waiting, t.c.mode == mode)
                    .order_by(t.c.updated_at)
                    .limit(batch)
                )
            ).scalars()
        )
    for payment_id in ids:
        try:
            await refresh(gw, payment_id, cause="watcher")
        except Exception:
            log.exception("watch_failed", payment_id=payment_id)
    return len(ids)


async def after_scan(gw: Gateway, report: ScanReport) -> int:
    """Move the live payments a scan concerns: those whose transfers changed, and, when blocks
    were added or dropped, every payment of the chain still counting confirmations. Returns how
    many were looked at."""
    t = models.payments
    async with gw.sessions() as session:
        touched = await live_payments_at(session, report.touched)
        ids = {payment_id for payment_id, _coin in touched.values()}
        if report.scanned or report.dropped:
            statuses = [Status.CONFIRMING.value]
            if report.dropped:  # a reorg can take back what had confirmed
                statuses.append(Status.CONFIRMED.value)
            rows = await session.execute(
                select(t.c.id).where(
                    t.c.status.in_(statuses),
                    t.c.mode == "live",
                    t.c.blockchain.in_(coins_on(report.chain)),
                )
            )
            ids.update(rows.scalars())
    for payment_id in sorted(ids):
        try:
            await refresh(gw, payment_id, cause="scanner")
        except Exception:
            log.exception("refresh_failed", payment_id=payment_id, chain=report.chain)
    return len(ids)
