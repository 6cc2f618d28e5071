"""Forwarding: the ``payment.forward`` job sweeps a confirmed custodial payment's funds to the
merchant's payout address through the mode's settlement backend."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import select

from keel.coinpay import commission, lifecycle, models
from keel.coinpay.assets import get_coin
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.store import load, save
from keel.coinpay.settlement import SweepOrder, SweepStatus
from keel.core.jobs import Job, RetryLater
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.payments")

SETTLEMENT_FAILURES = Counter(
    "coinpay_settlement_failures_total", "Sweeps that failed or stayed pending", ["chain"]
)


async def forward(gw: Gateway, job: Job) -> None:
    """The ``payment.forward`` job: sweep confirmed custodial funds to the merchant."""
    payment_id = job.payload["payment_id"]
    async with gw.sessions() as session, session.begin():
        payment = await load(session, payment_id, lock=True)
        if payment.status == Status.CONFIRMED.value:
            # The split is written down before anything is sent, once, on what arrived.
            plan = await session.scalar(
                select(models.businesses.c.plan).where(
                    models.businesses.c.id == payment.business_id
                )
            )
            share = commission.split(payment.received_amount, plan or commission.DEFAULT_PLAN)
            payment = await save(
                gw,
                session,
                payment,
                lifecycle.start_forwarding(payment.state()),
                "settlement",
                commission_bps=share.rate_bps,
                commission_amount=share.commission,
            )
    if payment.status != Status.FORWARDING.value:
        return
    coin = get_coin(payment.blockchain)
    settlement = gw.settlements.get(payment.mode)
    if settlement is None:
        raise RetryLater(timedelta(hours=1), "no settlement backend")
    result = await settlement.sweep(
        SweepOrder(
            payment_id=payment.id,
            chain=coin.chain,
            coin=coin.symbol,
            from_address=payment.payment_address,
            derivation_index=payment.derivation_index,
            to_address=payment.payout_address or "",
            amount=payment.received_amount,
        )
    )
    if result.status is not SweepStatus.SENT:
        SETTLEMENT_FAILURES.labels(coin.chain).inc()
        log.warning(
            "sweep_not_sent", payment_id=payment.id, status=result.status, error=result.error
        )
        raise RetryLater(timedelta(minutes=5), result.error or result.status.value)
    async with gw.sessions() as session, session.begin():
        payment = await load(session, payment_id, lock=True)
        if payment.status == Status.FORWARDING.value:
            await save(
                gw,
                session,
                payment,
                lifecycle.finish_forwarding(payment.state()),
                "settlement",
                forward_tx_hash=result.tx_hash,
                forwarded_at=gw.clock.now(),
            )
