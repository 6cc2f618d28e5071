"""Payments: create at a frozen rate on a fresh address, follow the chain, expire, forward.

Every change runs in one transaction that also appends the event log and writes the webhook
outbox, so the three never disagree.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy import Row, and_, bindparam, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from keel.coinpay import addresses, businesses, lifecycle, models, notify, presentation
from keel.coinpay.apikeys import Principal
from keel.coinpay.assets import get_coin
from keel.coinpay.errors import (
    IdempotencyMismatch,
    InvalidAmount,
    NotTestPayment,
    PaymentClosed,
    PaymentNotFound,
    SeedMissing,
)
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.money import (
    crypto_for_fiat,
    parse_fiat,
    parse_units,
)
from keel.coinpay.settlement import SweepOrder, SweepStatus
from keel.core.errors import BadRequest, Forbidden
from keel.core.jobs import Job, RetryLater
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.payments")

FORWARD_JOB = "payment.forward"

PAYMENTS_CREATED = Counter(
    "coinpay_payments_created_total", "Payments created", ["blockchain", "mode"]
)
PAYMENT_TRANSITIONS = Counter(
    "coinpay_payment_transitions_total", "Payment status changes", ["blockchain", "status"]
)
SETTLEMENT_FAILURES = Counter(
    "coinpay_settlement_failures_total", "Sweeps that failed or stayed pending", ["chain"]
)


@dataclass(frozen=True)
class NewPayment:
    business_id: str
    amount: Decimal
    currency: str
    blockchain: str
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    expires_in_minutes: int | None = None


def _request_hash(req: NewPayment) -> str:
    canonical = json.dumps(
        {
            "business_id": req.business_id,
            "amount": str(req.amount),
            "currency": req.currency.upper(),
            "blockchain": req.blockchain.upper(),
            "description": req.description,
            "metadata": req.metadata,
            "expires_in_minutes": req.expires_in_minutes,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _own_business(principal: Principal, business_id: str) -> None:
    if business_id != principal.business_id:
        raise Forbidden("This API key belongs to another business")


async def create(
    gw: Gateway, principal: Principal, req: NewPayment, *, idempotency_key: str | None = None
) -> Row[Any]:
    """Create a payment; a repeated ``idempotency_key`` returns the first result."""
    principal.require("payments:create")
    _own_business(principal, req.business_id)
    coin = get_coin(req.blockchain)
    amount, currency = parse_fiat(req.amount, req.currency)
    minutes = req.expires_in_minutes or gw.settings.expiry_minutes
    if not 1 <= minutes <= 60 * 24 * 90:
        raise InvalidAmount("expires_in_minutes must be between 1 and 129600")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise BadRequest("Idempotency-Key must be 1 to 255 characters")
    request_hash = _request_hash(req)
    if idempotency_key:
        existing = await _idempotent_replay(gw, principal, idempotency_key, request_hash)
        if existing is not None:
            return existing
    quote = await gw.rates.get(coin.asset, currency)
    crypto_amount = crypto_for_fiat(amount, quote.rate, coin.decimals)
    if crypto_amount <= 0:
        raise InvalidAmount("amount converts to zero base units")
    # Loaded before the write transaction: on SQLite a second session inside it would wait on
    # the writer lock the outer transaction holds. Watch-only businesses never need the seed.
    root = await gw.custody.root_if_initialised()
    now = gw.clock.now()
    payment_id = str(uuid.uuid4())
    try:
        async with gw.sessions() as session, session.begin():
            await businesses.require_business(session, req.business_id)
            how = await businesses.receiving(session, req.business_id, principal.mode, coin)
            if how.watch_key is not None:
                family_key = addresses.watch_only_family_key(req.business_id, coin.family)
                index = await gw.allocator.allocate(session, family_key)
                address = how.watch_key.address(index)
            else:
                if root is None:
                    raise SeedMissing()
                family_key = addresses.system_family_key(coin.family)
                index = await gw.allocator.allocate(session, family_key)
                address = root.address(coin.family, index)
            expires_at = now + timedelta(minutes=minutes)
            await session.execute(
                models.payments.insert().values(
                    id=payment_id,
                    business_id=req.business_id,
                    mode=principal.mode,
                    amount=amount,
                    currency=currency,
                    blockchain=coin.symbol,
                    crypto_amount=crypto_amount,
                    rate=quote.rate,
                    rate_source=quote.source[:200],
                    payment_address=address,
                    family_key=family_key,
                    derivation_index=index,
                    custody=how.custody,
                    payout_address=how.payout_address,
                    status=Status.PENDING.value,
                    paid_partial=False,
                    paid_over=False,
                    paid_late=False,
                    received_amount=0,
                    confirmations=0,
                    required_confirmations=gw.settings.required_confirmations(coin.chain),
                    tolerance_percent=gw.settings.tolerance_percent,
                    description=req.description,
                    metadata=dict(req.metadata),
                    expires_at=expires_at,
                    monitor_until=expires_at + timedelta(minutes=gw.settings.monitoring_minutes),
                    created_at=now,
                    updated_at=now,
                )
            )
            if idempotency_key:
                await session.execute(
                    models.idempotency_keys.insert().values(
                        business_id=req.business_id,
                        mode=principal.mode,
                        key=idempotency_key,
                        request_hash=request_hash,
                        payment_id=payment_id,
                        created_at=now,
                    )
                )
            row = await _load(session, payment_id)
            await _log_event(session, row, "payment.created", None, Status.PENDING, "api", {})
            await _notify(gw, session, row, "payment.created")
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer with its result.
        if idempotency_key:
            existing = await _idempotent_replay(gw, principal, idempotency_key, request_hash)
            if existing is not None:
                return existing
        raise
    PAYMENTS_CREATED.labels(coin.symbol, principal.mode).inc()
    return row


async def _idempotent_replay(
    gw: Gateway, principal: Principal, key: str, request_hash: str
) -> Row[Any] | None:
    """The payment an earlier request with this key created in the caller's world (business
    and mode), or None; the same key with another body raises IdempotencyMismatch."""
    t = models.idempotency_keys
    async with gw.sessions() as session:
        found = (
            await session.execute(
                select(t).where(
                    t.c.business_id == principal.business_id,
                    t.c.mode == principal.mode,
                    t.c.key == key,
                )
            )
        ).one_or_none()
        if found is None:
            return None
        if found.request_hash != request_hash:
            raise IdempotencyMismatch(
                "This Idempotency-Key was already used with a different request body; "
                "send the same body to get the first result, or use a new key"
            )
        return await _load(session, found.payment_id)


async def _load(
    session: AsyncSession | AsyncConnection, payment_id: str, *, lock: bool = False
) -> Row[Any]:
    query = select(models.payments).where(models.payments.c.id == payment_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise PaymentNotFound()
    return row


_BY_ID = select(models.payments).where(models.payments.c.id == bindparam("payment_id"))


async def _lookup(gw: Gateway, payment_id: str) -> Row[Any]:
    """A payment by id, outside any transaction (the API's reads)."""
    row = await gw.lookups.one_or_none(_BY_ID, payment_id=payment_id)
    if row is None:
        raise PaymentNotFound()
    return row


async def get(gw: Gateway, principal: Principal, payment_id: str) -> Row[Any]:
    """A payment of the caller's business and mode; anything else is not found."""
    principal.require("payments:read")
    row = await _lookup(gw, payment_id)
    if row.business_id != principal.business_id or row.mode != principal.mode:
        raise PaymentNotFound()
    return row


async def events(gw: Gateway, principal: Principal, payment_id: str) -> list[dict[str, Any]]:
    """The payment's event log, oldest first."""
    await get(gw, principal, payment_id)
    t = models.payment_events
    async with gw.sessions() as session:
        rows = await session.execute(select(t).where(t.c.payment_id == payment_id).order_by(t.c.id))
        return [
            {
                "type": r.type,
                "from_status": r.from_status,
                "to_status": r.to_status,
                "cause": r.cause,
                "detail": r.detail,
                "created_at": presentation.iso(r.created_at),
            }
            for r in rows.all()
        ]


async def get_public(gw: Gateway, payment_id: str) -> Row[Any]:
    """A payment for its checkout page (the id is the capability)."""
    return await _lookup(gw, payment_id)


async def list_payments(
    gw: Gateway,
    principal: Principal,
    *,
    business_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Row[Any]]:
    principal.require("payments:read")
    if business_id is not None:
        _own_business(principal, business_id)
    if status is not None and status not in {s.value for s in Status}:
        raise BadRequest(f"Unknown status {status!r}")
    t = models.payments
    query = (
        select(t)
        .where(t.c.business_id == principal.business_id, t.c.mode == principal.mode)
        .order_by(t.c.created_at.desc(), t.c.id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(t.c.status == status)
    async with gw.sessions() as session:
        return list((await session.execute(query)).all())


async def operator_list(
    gw: Gateway, *, business_id: str | None, status: str | None, limit: int
) -> list[Row[Any]]:
    """Recent payments across businesses (the CLI's operator view, no API key involved)."""
    t = models.payments
    query = select(t).order_by(t.c.created_at.desc(), t.c.id).limit(limit)
    if business_id is not None:
        query = query.where(t.c.business_id == business_id)
    if status is not None:
        query = query.where(t.c.status == status)
    async with gw.sessions() as session:
        return list((await session.execute(query)).all())


def _state(row: Row[Any]) -> lifecycle.State:
    return lifecycle.State(
        status=Status(row.status),
        expected=row.crypto_amount,
        received=row.received_amount,
        confirmations=row.confirmations,
        paid_partial=row.paid_partial,
        paid_over=row.paid_over,
        paid_late=row.paid_late,
        tx_hash=row.tx_hash,
    )


def _policy(row: Row[Any]) -> lifecycle.Policy:
    return lifecycle.Policy(
        required_confirmations=row.required_confirmations,
        tolerance_percent=row.tolerance_percent,
        expires_at=row.expires_at,
        monitor_until=row.monitor_until,
        custodial=row.custody == "system",
    )


async def _notify(gw: Gateway, session: AsyncSession, row: Row[Any], event_type: str) -> None:
    await notify.record_event(
        session,
        gw.queue,
        gw.clock,
        business_id=row.business_id,
        mode=row.mode,
        event_type=event_type,
        payment_id=row.id,
        data=presentation.event_data(row),
    )


async def _log_event(
    session: AsyncSession,
    row: Row[Any],
    event_type: str,
    from_status: Status | None,
    to_status: Status,
    cause: str,
    detail: Mapping[str, Any],
) -> None:
    await session.execute(
        models.payment_events.insert().values(
            payment_id=row.id,
            type=event_type,
            from_status=from_status.value if from_status else None,
            to_status=to_status.value,
            cause=cause,
            detail=dict(detail),
            created_at=row.updated_at,
        )
    )


async def _save(
    gw: Gateway,
    session: AsyncSession,
    row: Row[Any],
    outcome: lifecycle.Outcome,
    cause: str,
    **extra: Any,
) -> Row[Any]:
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
    if s.status is Status.CONFIRMED and row.status != Status.CONFIRMED.value:
        values["confirmed_at"] = now
    await session.execute(
        models.payments.update().where(models.payments.c.id == row.id).values(**values)
    )
    fresh = await _load(session, row.id)
    for step in outcome.transitions:
        await _log_event(
            session,
            fresh,
            step.event or f"status.{step.to_status.value}",
            step.from_status,
            step.to_status,
            cause,
            {"reason": step.reason, "received": str(s.received), "tx_hash": s.tx_hash},
        )
        if step.from_status is not step.to_status:
            PAYMENT_TRANSITIONS.labels(row.blockchain, step.to_status.value).inc()
        if step.event:
            await _notify(gw, session, fresh, step.event)
    entered_confirmed = any(t.to_status is Status.CONFIRMED for t in outcome.transitions)
    if entered_confirmed and fresh.custody == "system":
        await gw.queue.enqueue(
            session, FORWARD_JOB, {"payment_id": row.id}, dedupe_key=f"forward:{row.id}"
        )
    return fresh


async def _record_deposits(
    session: AsyncSession, row: Row[Any], deposits: Sequence[lifecycle.Deposit], gw: Gateway
) -> None:
    t = models.deposits
    now = gw.clock.now()
    known = {
        r.tx_hash: r
        for r in (await session.execute(select(t).where(t.c.payment_id == row.id))).all()
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
                    payment_id=row.id,
                    tx_hash=d.tx_hash,
                    amount=d.amount,
                    confirmations=d.confirmations,
                    reverted=d.reverted,
                    after_expiry=now > row.expires_at,
                    first_seen_at=now,
                )
            )


async def refresh(gw: Gateway, payment_id: str, *, cause: str) -> Row[Any]:
    """Ask the payment's chain what arrived and move the payment accordingly."""
    async with gw.sessions() as session:
        row = await _load(session, payment_id)
    watcher = gw.watchers.get(row.mode, {}).get(get_coin(row.blockchain).chain)
    if watcher is None:
        return row
    deposits = await watcher.deposits_to(row.blockchain, row.payment_address)
    async with gw.sessions() as session, session.begin():
        row = await _load(session, payment_id, lock=True)
        now = gw.clock.now()
        expired = lifecycle.expire(_state(row), _policy(row), now)
        if expired.transitions:
            row = await _save(gw, session, row, expired, "expiry")
        await _record_deposits(session, row, deposits, gw)
        outcome = lifecycle.observe(_state(row), deposits, _policy(row), now)
        if outcome.state != _state(row) or outcome.transitions:
            row = await _save(gw, session, row, outcome, cause)
    return row


async def simulate(
    gw: Gateway,
    principal: Principal,
    payment_id: str,
    *,
    amount_crypto: str | None,
    confirmations: int | None,
    tx_hash: str | None = None,
    reverted: bool = False,
) -> Row[Any]:
    """Play the customer paying a test payment (or a block confirming it, or a reorg)."""
    principal.require("payments:create")
    row = await get(gw, principal, payment_id)
    if row.mode != "test":
        raise NotTestPayment()
    if row.status in (Status.FORWARDED.value, Status.FAILED.value):
        raise PaymentClosed(f"Payment is {row.status}")
    coin = get_coin(row.blockchain)
    if confirmations is not None and not 0 <= confirmations <= 1_000_000:
        raise BadRequest("confirmations must be between 0 and 1000000")
    depth = row.required_confirmations if confirmations is None else confirmations
    async with gw.sessions() as session, session.begin():
        if tx_hash is None:
            if amount_crypto is None:
                raise BadRequest("amount_crypto is required for a new transfer")
            amount = parse_units(amount_crypto, coin.decimals)
            if amount <= 0:
                raise InvalidAmount("amount_crypto must be positive")
            tx_hash = "sim_" + uuid.uuid4().hex
        else:
            amount = _existing_amount(await _sim_transfer(session, tx_hash, row), tx_hash)
        await gw.simulated_chain.record(
            session,
            chain=row.blockchain,
            address=row.payment_address,
            tx_hash=tx_hash,
            amount=amount,
            confirmations=depth,
            reverted=reverted,
        )
    return await refresh(gw, payment_id, cause="simulate")


async def _sim_transfer(session: AsyncSession, tx_hash: str, row: Row[Any]) -> Row[Any] | None:
    t = models.simulated_transfers
    return (
        await session.execute(
            select(t).where(t.c.tx_hash == tx_hash, t.c.address == row.payment_address)
        )
    ).one_or_none()


def _existing_amount(transfer: Row[Any] | None, tx_hash: str) -> int:
    if transfer is None:
        raise BadRequest(f"No simulated transfer {tx_hash} to this payment")
    return int(transfer.amount)


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
            row = await _load(session, payment_id, lock=True)
            outcome = lifecycle.expire(_state(row), _policy(row), gw.clock.now())
            if outcome.transitions:
                await _save(gw, session, row, outcome, "expiry")
                done += 1
    return done


async def watch_active(gw: Gateway, *, batch: int = 500) -> int:
    """Poll every payment still waiting on its chain (including expired ones within their
    monitoring window, so a late payment is still seen)."""
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
                    select(t.c.id).where(waiting).order_by(t.c.updated_at).limit(batch)
                )
            ).scalars()
        )
    for payment_id in ids:
        try:
            await refresh(gw, payment_id, cause="watcher")
        except Exception:
            log.exception("watch_failed", payment_id=payment_id)
    return len(ids)


async def forward(gw: Gateway, job: Job) -> None:
    """The ``payment.forward`` job: sweep confirmed custodial funds to the merchant."""
    payment_id = job.payload["payment_id"]
    async with gw.sessions() as session, session.begin():
        row = await _load(session, payment_id, lock=True)
        if row.status == Status.CONFIRMED.value:
            row = await _save(
                gw, session, row, lifecycle.start_forwarding(_state(row)), "settlement"
            )
    if row.status != Status.FORWARDING.value:
        return
    coin = get_coin(row.blockchain)
    settlement = gw.settlements.get(row.mode)
    if settlement is None:
        raise RetryLater(timedelta(hours=1), "no settlement backend")
    result = await settlement.sweep(
        SweepOrder(
            payment_id=row.id,
            chain=coin.chain,
            coin=coin.symbol,
            from_address=row.payment_address,
            derivation_index=row.derivation_index,
            to_address=row.payout_address or "",
            amount=row.received_amount,
        )
    )
    if result.status is not SweepStatus.SENT:
        SETTLEMENT_FAILURES.labels(coin.chain).inc()
        log.warning("sweep_not_sent", payment_id=row.id, status=result.status, error=result.error)
        raise RetryLater(timedelta(minutes=5), result.error or result.status.value)
    async with gw.sessions() as session, session.begin():
        row = await _load(session, payment_id, lock=True)
        if row.status == Status.FORWARDING.value:
            await _save(
                gw,
                session,
                row,
                lifecycle.finish_forwarding(_state(row)),
                "settlement",
                forward_tx_hash=result.tx_hash,
                forwarded_at=gw.clock.now(),
            )
