"""Sweeps: confirmed custodial funds leave for the merchant (and the commission for the
platform), safely under any crash.

A round of one chain's :class:`Sweeper` does three things, each restartable:

1. **Sign and claim.** Payments in ``forwarding`` without a sweep are grouped (a UTXO chain
   batches many into one transaction, an account chain sends one each), signed by the chain's
   :class:`~keel.coinpay.chains.base.ChainSender`, and then, in one transaction, the signed
   bytes are stored and the payments claimed (``sweep_id``). A claim that finds a payment
   already taken (another worker) stores nothing, and the signature is thrown away unsent.
2. **Send.** Stored sweeps are broadcast; a failure is recorded and retried next round with the
   very same bytes. A worker killed before or after the broadcast sends those bytes again,
   which the node accepts as already known: the chain sees one transaction. The one exception
   is a transaction that expires (an :class:`~keel.coinpay.chains.base.ExpiringSender`'s,
   Solana): once the sender says the stored one can never land, the payments are signed again
   and the new bytes replace the old in one compare-and-swap, before they are sent.
3. **Confirm.** A sweep the node reports at the policy's depth forwards its payments (status,
   ``forward_tx_hash``, webhooks) in one transaction. A sweep the node has forgotten is sent
   again; one unconfirmed past ``stuck_after`` shows in ``coinpay_sweeps_stuck`` and its
   reason in ``last_error``.

Rounds of different chains run in their own worker tasks; within a round, up to ``parallel``
transactions are signed and sent at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge
from sqlalchemy import func, select, update

from keel.coinpay import lifecycle, models
from keel.coinpay.assets import coins_on
from keel.coinpay.chains.base import (
    ChainSender,
    ExpiringSender,
    MultiTxSender,
    SignedSweep,
    SweepInput,
)
from keel.coinpay.errors import SweepWaiting
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.store import load, save
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.sweeps")

SWEEPS = Counter("coinpay_sweeps_total", "Sweep steps done", ["chain", "step"])
SWEEP_ERRORS = Counter("coinpay_sweep_errors_total", "Sweep steps that failed", ["chain", "step"])
SWEEPS_STUCK = Gauge(
    "coinpay_sweeps_stuck", "Sweeps sent and not confirmed past the threshold", ["mode", "chain"]
)
UNSIGNED_STUCK = Gauge(
    "coinpay_sweeps_unsigned",
    "Payments in forwarding the sender refuses to sign for past the threshold (see the log)",
    ["mode", "chain"],
)

# A payment's ``forwarding_reason``: fixed texts, as merchants read them. The detail (node
# addresses, other merchants' payments of a batch, fee wallet balances) goes to the log and the
# sweep's ``last_error`` only.
WAITING = "waiting for the network fee of its sweep to arrive; retried every round"
NOT_SIGNED = "its sweep cannot be signed yet; retried every round (the operator is alerted)"
LEFT_OUT = "its funds are not all confirmed and spendable at its address yet; retried every round"
NOT_SENT = "its sweep could not be sent yet; retried every round"
UNCONFIRMED = "its sweep was sent and is not confirmed yet"

A = TypeVar("A")
T = TypeVar("T")


class SweepStatus(StrEnum):
    SIGNED = "signed"  # stored, maybe not sent yet
    BROADCAST = "broadcast"  # the node accepted it
    CONFIRMED = "confirmed"  # at the policy's depth; its payments are forwarded


@dataclass(frozen=True, slots=True)
class RoundReport:
    signed: int = 0
    sent: int = 0
    confirmed: int = 0
    stuck: int = 0


class _Taken(Exception):
    """Another worker claimed one of the payments first."""


class Sweeper:
    """Sweeps one chain's payments of one mode (module docstring)."""

    def __init__(
        self,
        gw: Gateway,
        mode: str,
        sender: ChainSender,
        *,
        platform_address: str,
        confirmations: int,
        parallel: int = 4,
        stuck_after: timedelta = timedelta(hours=1),
    ) -> None:
        self._gw = gw
        self.mode = mode
        self.sender = sender
        self.chain = sender.chain
        self._platform = platform_address
        self._depth = confirmations
        self._parallel = parallel
        self._stuck_after = stuck_after
        self._coins = coins_on(self.chain)

    async def round(self) -> RoundReport:
        signed = await self._sign_and_claim()
        sent = await self._send()
        confirmed, stuck = await self._confirm()
        return RoundReport(signed, sent, confirmed, stuck)

    # 1. Sign and claim ------------------------------------------------------------------------

    async def _sign_and_claim(self) -> int:
        t = models.payments
        limit = self.sender.batch_limit * self._parallel
        async with self._gw.sessions() as session:
            rows = (
                await session.execute(
                    select(t)
                    .where(
                        t.c.mode == self.mode,
                        t.c.blockchain.in_(self._coins),
                        t.c.status == Status.FORWARDING.value,
                        t.c.sweep_id.is_(None),
                        t.c.custody == "system",
                    )
                    # Payments a sender refused or left out before (they carry a note) come
                    # after the others: a few that cannot go must not take every slot of
                    # every round and starve the rest.
                    .order_by(t.c.settlement_note.is_not(None), t.c.confirmed_at, t.c.id)
                    .limit(limit)
                )
            ).all()
        waiting = [Payment.from_row(r) for r in rows]
        size = self.sender.batch_limit
        batches = [tuple(waiting[i : i + size]) for i in range(0, len(waiting), size)]
        done = await _bounded(self._parallel, self._sign_one, batches)
        # A refusal (dust, a contract payee, no seed), a wait or a left-out payment repeats
        # every round: once one has waited past the threshold it is counted, so it cannot sit
        # in forwarding unseen.
        overdue = self._gw.clock.now() - self._stuck_after
        async with self._gw.sessions() as session:
            unsigned = await session.scalar(
                select(func.count())
                .select_from(t)
                .where(
                    t.c.mode == self.mode,
                    t.c.blockchain.in_(self._coins),
                    t.c.status == Status.FORWARDING.value,
                    t.c.sweep_id.is_(None),
                    t.c.custody == "system",
                    t.c.updated_at < overdue,
                )
            )
        UNSIGNED_STUCK.labels(self.mode, self.chain).set(unsigned or 0)
        return sum(1 for ok in done if ok)

    async def _sign_one(self, batch: tuple[Payment, ...]) -> bool | None:
        """True: signed and claimed; False: another worker claimed first; None: refused."""
        inputs = tuple(sweep_input(p) for p in batch)
        try:
            signed = await self.sender.sign(inputs, self._platform)
        except SweepWaiting as exc:
            ids = [p.id for p in batch]
            log.info("sweep_waiting", chain=self.chain, payments=ids, why=str(exc))
            await self._explain(batch, WAITING)
            return None
        except Exception as exc:
            SWEEP_ERRORS.labels(self.chain, "sign").inc()
            log.warning(
                "sweep_sign_failed",
                chain=self.chain,
                payments=[p.id for p in batch],
                error=str(exc)[:200],
            )
            await self._explain(batch, NOT_SIGNED)
            return None
        swept = tuple(p for p in batch if p.id in signed.fees)
        if signed.left_out:
            log.info("sweep_left_out", chain=self.chain, payments=dict(signed.left_out))
            await self._explain([p for p in batch if p.id in signed.left_out], LEFT_OUT)
        if not swept or set(signed.fees) - {p.id for p in batch}:
            raise ValueError(f"{self.chain}: a sweep must move some of the payments it was given")
        try:
            await self._claim(swept, signed)
        except _Taken:
            log.info("sweep_claim_lost", chain=self.chain, tx_hash=signed.tx_hash)
            return False
        SWEEPS.labels(self.chain, "signed").inc()
        return True

    async def _claim(self, batch: tuple[Payment, ...], signed: SignedSweep) -> None:
        sweep_id = str(uuid.uuid4())
        t = models.payments
        async with self._gw.sessions() as session, session.begin():
            if getattr(self.sender, "serial_per_address", False):
                await _one_sweep_per_address(session, batch)
            for payment in batch:
                claimed = await session.execute(
                    update(t)
                    .where(
                        t.c.id == payment.id,
                        t.c.sweep_id.is_(None),
                        t.c.status == Status.FORWARDING.value,
                    )
                    .values(
                        sweep_id=sweep_id,
                        network_fee=signed.fees.get(payment.id, 0),
                        settlement_note=None,
                    )
                )
                if not getattr(claimed, "rowcount", 0):
                    raise _Taken()  # rolls back the claims made so far; nothing was stored
            await session.execute(
                models.sweeps.insert().values(
                    id=sweep_id,
                    mode=self.mode,
                    chain=self.chain,
                    status=SweepStatus.SIGNED.value,
                    tx_hash=signed.tx_hash,
                    raw_tx=signed.raw,
                    payments=len(batch),
                    attempts=0,
                    created_at=self._gw.clock.now(),
                )
            )

    # 2. Send ----------------------------------------------------------------------------------

    async def _send(self) -> int:
        signed = await self._sweeps(SweepStatus.SIGNED)
        done = await _bounded(self._parallel, self._send_one, signed)
        return sum(done)

    async def _send_one(self, sweep: Any, *, sign_again: bool = True) -> int:
        s = models.sweeps
        try:
            await self.sender.broadcast(sweep.raw_tx)
        except Exception as exc:
            SWEEP_ERRORS.labels(self.chain, "send").inc()
            await self._note(sweep.id, f"broadcast failed: {exc}"[:2000], NOT_SENT)
            if sign_again and isinstance(self.sender, ExpiringSender):
                fresh = await self._signed_again(self.sender, sweep)
                if fresh is not None:
                    return await self._send_one(fresh, sign_again=False)
            return 0
        async with self._gw.sessions() as session, session.begin():
            await session.execute(
                update(s)
                .where(s.c.id == sweep.id, s.c.status == SweepStatus.SIGNED.value)
                .values(
                    status=SweepStatus.BROADCAST.value,
                    broadcast_at=self._gw.clock.now(),
                    attempts=s.c.attempts + 1,
                    last_error=None,
                )
            )
            t = models.payments
            await session.execute(
                update(t).where(t.c.sweep_id == sweep.id).values(settlement_note=None)
            )
        SWEEPS.labels(self.chain, "sent").inc()
        return 1

    async def _signed_again(self, sender: ExpiringSender, sweep: Any) -> Any | None:
        """The sweep signed again and stored in place of its transaction, once the sender says
        that one can never land (it expired unsent): the new row, or None while it may still
        land, when the sender refuses, or when another worker replaced it first (the stored
        transaction is compared and swapped, so only one new signing is ever stored or sent)."""
        try:
            if not await sender.expired(sweep.tx_hash, sweep.raw_tx):
                return None
        except Exception as exc:
            await self._note(sweep.id, f"expiry unknown: {exc}"[:2000], NOT_SENT)
            return None
        s, t = models.sweeps, models.payments
        async with self._gw.sessions() as session:
            rows = (
                await session.execute(select(t).where(t.c.sweep_id == sweep.id).order_by(t.c.id))
            ).all()
        batch = tuple(Payment.from_row(r) for r in rows)
        if not batch or any(p.status != Status.FORWARDING.value for p in batch):
            return None
        try:
            signed = await sender.sign(tuple(sweep_input(p) for p in batch), self._platform)
        except Exception as exc:
            SWEEP_ERRORS.labels(self.chain, "sign").inc()
            await self._note(sweep.id, f"signing again failed: {exc}"[:2000], NOT_SENT)
            return None
        async with self._gw.sessions() as session, session.begin():
            replaced = await session.execute(
                update(s)
                .where(
                    s.c.id == sweep.id,
                    s.c.tx_hash == sweep.tx_hash,
                    s.c.status != SweepStatus.CONFIRMED.value,
                )
                .values(
                    tx_hash=signed.tx_hash,
                    raw_tx=signed.raw,
                    status=SweepStatus.SIGNED.value,
                    broadcast_at=None,
                    last_error=None,
                )
            )
            if not getattr(replaced, "rowcount", 0):
                return None
            for payment in batch:
                await session.execute(
                    update(t)
                    .where(t.c.id == payment.id)
                    .values(network_fee=signed.fees.get(payment.id, 0))
                )
            fresh = (await session.execute(select(s).where(s.c.id == sweep.id))).one()
        SWEEPS.labels(self.chain, "signed_again").inc()
        log.info(
            "sweep_signed_again", chain=self.chain, expired=sweep.tx_hash, tx_hash=signed.tx_hash
        )
        return fresh

    # 3. Confirm -------------------------------------------------------------------------------

    async def _confirm(self) -> tuple[int, int]:
        confirmed = stuck = 0
        now = self._gw.clock.now()
        waiting = await self._sweeps(SweepStatus.BROADCAST)
        # Asked of the node within the round's bound, not one after another: with hundreds of
        # sweeps waiting (12 blocks on Ethereum) a remote provider's round trips would add up.
        depths = await _bounded(self._parallel, self._depth_of, waiting)
        for sweep, depth in zip(waiting, depths, strict=True):
            if isinstance(depth, Exception):
                SWEEP_ERRORS.labels(self.chain, "confirm").inc()
                await self._note(sweep.id, f"status unknown: {depth}"[:2000], UNCONFIRMED)
                continue
            if depth is None:
                # The node forgot it (evicted, or a reorg): send the same bytes again.
                await self._send_one(sweep)
            elif depth >= self._depth:
                await self._forward(sweep)
                confirmed += 1
                continue
            if sweep.broadcast_at is not None and now - sweep.broadcast_at > self._stuck_after:
                stuck += 1
                await self._note(
                    sweep.id,
                    f"not confirmed {int((now - sweep.broadcast_at).total_seconds())} s "
                    f"after it was sent (depth {depth})",
                )
        # A sweep stored and never accepted by a node (every broadcast refused) is as stuck.
        unsent = await self._sweeps(SweepStatus.SIGNED)
        stuck += sum(1 for sweep in unsent if now - sweep.created_at > self._stuck_after)
        SWEEPS_STUCK.labels(self.mode, self.chain).set(stuck)
        return confirmed, stuck

    async def _depth_of(self, sweep: Any) -> int | Exception | None:
        """How deep the sweep is: its shallowest transaction's depth (None when the node has
        forgotten any of them; SweepReverted, returned, when any of them failed)."""
        try:
            if not isinstance(self.sender, MultiTxSender):
                return await self.sender.confirmations(sweep.tx_hash)
            depths = [
                await self.sender.confirmations(h) for h in self.sender.tx_hashes(sweep.raw_tx)
            ]
            return None if None in depths else min(d for d in depths if d is not None)
        except Exception as exc:  # reported per sweep by the caller
            return exc

    async def _forward(self, sweep: Any) -> None:
        s, t = models.sweeps, models.payments
        async with self._gw.sessions() as session, session.begin():
            ids = (await session.execute(select(t.c.id).where(t.c.sweep_id == sweep.id))).scalars()
            for payment_id in sorted(ids):
                payment = await load(session, payment_id, lock=True)
                if payment.status != Status.FORWARDING.value:
                    continue
                await save(
                    self._gw,
                    session,
                    payment,
                    lifecycle.finish_forwarding(payment.state()),
                    "settlement",
                    forward_tx_hash=sweep.tx_hash,
                    forwarded_at=self._gw.clock.now(),
                    settlement_note=None,
                )
            await session.execute(
                update(s)
                .where(s.c.id == sweep.id)
                .values(
                    status=SweepStatus.CONFIRMED.value,
                    confirmed_at=self._gw.clock.now(),
                    last_error=None,
                )
            )
        SWEEPS.labels(self.chain, "confirmed").inc()

    # Helpers ----------------------------------------------------------------------------------

    async def _sweeps(self, status: SweepStatus) -> Sequence[Any]:
        s = models.sweeps
        async with self._gw.sessions() as session:
            return (
                await session.execute(
                    select(s)
                    .where(s.c.mode == self.mode, s.c.chain == self.chain, s.c.status == status)
                    .order_by(s.c.created_at, s.c.id)
                )
            ).all()

    async def _note(self, sweep_id: str, error: str, public: str = UNCONFIRMED) -> None:
        """Record a sweep's problem on it (``error``: for the operator) and ``public``, one of
        this module's fixed texts, on its payments as their reason."""
        s, t = models.sweeps, models.payments
        log.warning("sweep_problem", chain=self.chain, sweep_id=sweep_id, error=error[:200])
        async with self._gw.sessions() as session, session.begin():
            await session.execute(
                update(s)
                .where(s.c.id == sweep_id)
                .values(last_error=error, attempts=s.c.attempts + 1)
            )
            await session.execute(
                update(t)
                .where(t.c.sweep_id == sweep_id, t.c.status == Status.FORWARDING.value)
                .values(settlement_note=public)
            )

    async def _explain(self, batch: Sequence[Payment], note: str) -> None:
        """Show on each payment of an unsigned batch why it waits (written when it changes)."""
        stale = [p.id for p in batch if p.settlement_note != note]
        if not stale:
            return
        t = models.payments
        async with self._gw.sessions() as session, session.begin():
            await session.execute(
                update(t)
                .where(
                    t.c.id.in_(stale),
                    t.c.sweep_id.is_(None),
                    t.c.status == Status.FORWARDING.value,
                )
                .values(settlement_note=note)
            )


async def _one_sweep_per_address(session: Any, batch: tuple[Payment, ...]) -> None:
    """For a sender whose payments share an account and its sequence (XRP): raise _Taken while
    another sweep from one of ``batch``'s addresses is signed or sent and not settled, so two
    sweeps never hold the same sequence. The account rows are locked first (PostgreSQL), so two
    claims from one account queue instead of both seeing none."""
    t, s, a = models.payments, models.sweeps, models.receiving_accounts
    addresses = sorted({p.payment_address for p in batch})
    await session.execute(select(a.c.address).where(a.c.address.in_(addresses)).with_for_update())
    busy = await session.scalar(
        select(s.c.id)
        .select_from(t.join(s, t.c.sweep_id == s.c.id))
        .where(
            t.c.payment_address.in_(addresses),
            s.c.status.in_([SweepStatus.SIGNED.value, SweepStatus.BROADCAST.value]),
        )
        .limit(1)
    )
    if busy is not None:
        raise _Taken()


def sweep_input(payment: Payment) -> SweepInput:
    """What a sender is given of a payment in forwarding: its funds, split and payout."""
    commission = payment.commission_amount or 0
    return SweepInput(
        payment_id=payment.id,
        coin=payment.blockchain,
        address=payment.payment_address,
        derivation_index=payment.derivation_index,
        received=payment.received_amount,
        commission=commission,
        merchant_address=payment.payout_address or "",
    )


async def _bounded(limit: int, work: Callable[[A], Awaitable[T]], items: Sequence[A]) -> list[T]:
    """``work`` on each of ``items``, at most ``limit`` at a time; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: A) -> T:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(i) for i in items)))
