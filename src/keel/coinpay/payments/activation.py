"""The ``receiving_account.activate`` job: a live XRP receiving account is funded with the base
reserve from the platform's fee wallet before its first payment (ADR 0023).

Like a sweep, the signed Payment is stored on the account row before it is sent, so a worker
killed at any point sends the very same bytes again and the fee wallet pays one reserve. A
stored Payment is only replaced once the ledger says it never will be included (validated past
its LastLedgerSequence, or validated with a failure); until the account exists the job retries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from prometheus_client import Counter
from sqlalchemy import select, update

from keel.coinpay import models
from keel.coinpay.chains.base import SignedSweep
from keel.coinpay.chains.xrp_sender import Settled
from keel.coinpay.gateway import Gateway
from keel.core.jobs import Job, RetryLater
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.activation")

ACTIVATIONS = Counter(
    "coinpay_account_activations_total", "Receiving-account activation steps", ["chain", "step"]
)
# A ledger closes every 3 to 5 seconds: look again after about one.
SETTLE_DELAY = timedelta(seconds=4)


class Activator(Protocol):
    async def exists(self, address: str) -> bool: ...

    async def sign_activation(self, address: str) -> SignedSweep: ...

    async def broadcast(self, raw: str) -> None: ...

    async def settled(self, tx_hash: str, raw: str) -> Settled: ...


async def activate(gw: Gateway, job: Job) -> None:
    """Fund one receiving account (module docstring); RetryLater until the ledger shows it."""
    business_id, mode, chain = (job.payload[k] for k in ("business_id", "mode", "chain"))
    t = models.receiving_accounts
    where = (t.c.business_id == business_id, t.c.mode == mode, t.c.chain == chain)
    async with gw.sessions() as session:
        row = (await session.execute(select(t).where(*where))).one()
    if row.activated_at is not None:
        return
    sender = gw.senders.get(mode, {}).get(chain)
    if sender is None or not hasattr(sender, "sign_activation"):
        raise RetryLater(timedelta(hours=1), f"no {chain} sender to activate {row.address}")
    activator: Activator = sender  # type: ignore[assignment]
    if await activator.exists(row.address):
        async with gw.sessions() as session, session.begin():
            await session.execute(update(t).where(*where).values(activated_at=gw.clock.now()))
        ACTIVATIONS.labels(chain, "active").inc()
        log.info(
            "account_activated", chain=chain, address=row.address, tx_hash=row.activation_tx_hash
        )
        return
    raw, tx_hash = row.activation_raw_tx, row.activation_tx_hash
    if raw is not None:
        state = await activator.settled(tx_hash, raw)
        if state in ("pending", "validated"):  # validated: the next look finds the account
            await activator.broadcast(raw)  # the same bytes; "already known" is success
            raise RetryLater(SETTLE_DELAY, f"activation {tx_hash} of {row.address} is {state}")
        log.warning("account_activation_lost", chain=chain, tx_hash=tx_hash, state=state)
        ACTIVATIONS.labels(chain, state).inc()
    signed = await activator.sign_activation(row.address)
    async with gw.sessions() as session, session.begin():
        await session.execute(
            update(t)
            .where(*where)
            .values(activation_tx_hash=signed.tx_hash, activation_raw_tx=signed.raw)
        )
    ACTIVATIONS.labels(chain, "signed").inc()
    await activator.broadcast(signed.raw)
    ACTIVATIONS.labels(chain, "sent").inc()
    raise RetryLater(SETTLE_DELAY, f"activation {signed.tx_hash} of {row.address} sent")
