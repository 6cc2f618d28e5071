"""Forwarding: the ``payment.forward`` job starts a confirmed custodial payment's sweep: it
writes the commission split down, then, on a chain that sends one payment a transaction, runs a
sweep round at once (``sweeping``); a batching chain's periodic round takes it with the others
waiting there. Confirmation of what was sent is followed by the chain's periodic round."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import Counter
from sqlalchemy import select

from keel.coinpay import commission, lifecycle, models
from keel.coinpay.assets import get_coin
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.store import load, save
from keel.coinpay.payments.sweeping import Sweeper
from keel.core.jobs import Job, RetryLater
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.payments")

SETTLEMENT_FAILURES = Counter(
    "coinpay_settlement_failures_total", "Sweeps that could not start", ["chain"]
)


def sweeper(gw: Gateway, mode: str, chain: str) -> Sweeper | None:
    """The sweeper of ``chain`` in ``mode``, or None when nobody can sign there."""
    sender = gw.senders.get(mode, {}).get(chain)
    platform = gw.settings.platform_wallets.get(chain, "") if mode == "live" else "simulated"
    if sender is None or not platform:
        return None
    return Sweeper(
        gw,
        mode,
        sender,
        platform_address=platform,
        confirmations=1 if mode == "test" else gw.settings.required_confirmations(chain),
        parallel=gw.settings.sweep_parallel,
        stuck_after=timedelta(minutes=gw.settings.sweep_stuck_minutes),
    )


async def forward(gw: Gateway, job: Job) -> None:
    """The ``payment.forward`` job (module docstring)."""
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
    if payment.status != Status.FORWARDING.value or payment.sweep_id is not None:
        return
    chain = get_coin(payment.blockchain).chain
    sweeps = sweeper(gw, payment.mode, chain)
    if sweeps is None:
        SETTLEMENT_FAILURES.labels(chain).inc()
        raise RetryLater(timedelta(hours=1), f"no {chain} sender or platform wallet configured")
    if sweeps.sender.batch_limit > 1:
        # A batching chain (UTXO) sweeps at its next periodic round, together with every other
        # payment that reached forwarding meanwhile: one transaction, one fee, for all of them.
        return
    await sweeps.round()
    async with gw.sessions() as session:
        payment = await load(session, payment_id)
    if payment.sweep_id is None:
        SETTLEMENT_FAILURES.labels(chain).inc()
        raise RetryLater(timedelta(minutes=5), f"{chain} sweep not signed yet")
