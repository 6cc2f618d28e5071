"""Creating a payment: a fresh address, the amount at a rate frozen now, and the first event,
in one transaction; a repeated Idempotency-Key answers with the first result."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import addresses, businesses, models, tags
from keel.coinpay.apikeys import Principal
from keel.coinpay.assets import get_coin
from keel.coinpay.chains import cardano_tx
from keel.coinpay.errors import (
    AccountActivating,
    ChainNotWatched,
    IdempotencyMismatch,
    InvalidAmount,
    SeedMissing,
)
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.money import crypto_for_fiat, parse_fiat
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.store import load, log_event, notify_event
from keel.coinpay.wallets import HDRoot
from keel.core.errors import BadRequest, Forbidden

PAYMENTS_CREATED = Counter(
    "coinpay_payments_created_total", "Payments created", ["blockchain", "mode"]
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


def own_business(principal: Principal, business_id: str) -> None:
    if business_id != principal.business_id:
        raise Forbidden("This API key belongs to another business")


async def create(
    gw: Gateway, principal: Principal, req: NewPayment, *, idempotency_key: str | None = None
) -> Payment:
    """Create a payment; a repeated ``idempotency_key`` returns the first result."""
    principal.require("payments:create")
    own_business(principal, req.business_id)
    coin = get_coin(req.blockchain)
    if coin.chain not in gw.watchers.get(principal.mode, {}):
        # Money sent to an address nobody watches would be taken and never seen.
        raise ChainNotWatched(
            f"{principal.mode.capitalize()} payments on {coin.chain} are not available: "
            f"this server watches no {coin.chain} node (its operator sets "
            f"KEEL_COINPAY_{coin.chain}_RPC_URLS)"
        )
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
    if coin.chain == "ADA":
        cardano_tx.check_payment_amount(crypto_amount)  # ADR 0025
    # Loaded before the write transaction: on SQLite a second session inside it would wait on
    # the writer lock the outer transaction holds. Watch-only businesses never need the seed.
    root = await gw.custody.root_if_initialised()
    now = gw.clock.now()
    payment_id = str(uuid.uuid4())
    account = await _receiving_account(gw, principal, req, root) if tags.tagged(coin) else None
    try:
        async with gw.sessions() as session, session.begin():
            await businesses.require_business(session, req.business_id)
            how = await businesses.receiving(session, req.business_id, principal.mode, coin)
            tag = None
            if account is not None:
                address = account.address
                family_key, index = account.family_key, account.derivation_index
                tag = await tags.free_tag(session, address, gw.destination_tags)
            elif how.watch_key is not None:
                family_key = addresses.watch_only_family_key(req.business_id, coin.family)
                index = await gw.allocator.allocate(session, family_key)
                address = how.watch_key.address(index)
            else:
                if root is None:
                    raise SeedMissing()
                network = gw.network(principal.mode, coin.chain)
                family_key = addresses.system_family_key(coin.family, network)
                index = await gw.allocator.allocate(session, family_key)
                address = root.address(coin.family, index, network)
            expires_at = now + timedelta(minutes=minutes)
            await _insert(
                gw,
                session,
                dict(
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
                    destination_tag=tag,
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
                ),
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
            payment = await load(session, payment_id)
            await log_event(session, payment, "payment.created", None, Status.PENDING, "api", {})
            await notify_event(gw, session, payment, "payment.created")
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer with its result.
        if idempotency_key:
            existing = await _idempotent_replay(gw, principal, idempotency_key, request_hash)
            if existing is not None:
                return existing
        raise
    PAYMENTS_CREATED.labels(coin.symbol, principal.mode).inc()
    return payment


async def _receiving_account(
    gw: Gateway, principal: Principal, req: NewPayment, root: HDRoot | None
) -> tags.Account:
    """The business's receiving account of a tagged chain (``tags``), made on first use in a
    transaction of its own (its activation job must survive a refused payment). A live account
    not activated yet refuses the payment: AccountActivating (409)."""
    coin = get_coin(req.blockchain)
    if root is None:
        raise SeedMissing()
    if principal.mode == "live" and coin.chain not in gw.senders.get("live", {}):
        raise ChainNotWatched(
            f"Live payments on {coin.chain} are not available: its receiving accounts are "
            f"activated from the platform's {coin.chain} fee wallet by the {coin.chain} sender, "
            f"which needs a {coin.chain} platform wallet (KEEL_COINPAY_PLATFORM_WALLETS)"
        )
    async with gw.sessions() as session, session.begin():
        await businesses.require_business(session, req.business_id)
        await businesses.receiving(session, req.business_id, principal.mode, coin)
        account = await tags.ensure_account(
            session,
            allocator=gw.allocator,
            queue=gw.queue,
            root=root,
            business_id=req.business_id,
            mode=principal.mode,
            coin=coin,
            now=gw.clock.now(),
        )
    if not account.active:
        raise AccountActivating(
            f"This business's {coin.chain} receiving account is being activated (funded with "
            f"the {coin.chain} reserve from the platform's fee wallet); retry in a few seconds"
        )
    return account


async def _insert(gw: Gateway, session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the payment. A tagged one is inserted in a savepoint, and a tag a concurrent
    creation took between the draw and the insert is drawn again."""
    insert = models.payments.insert()
    if values["destination_tag"] is None:
        await session.execute(insert.values(**values))
        return
    for attempt in range(3):
        try:
            async with session.begin_nested():
                await session.execute(insert.values(**values))
            return
        except IntegrityError:
            if attempt == 2:
                raise
            values["destination_tag"] = await tags.free_tag(
                session, values["payment_address"], gw.destination_tags
            )


async def _idempotent_replay(
    gw: Gateway, principal: Principal, key: str, request_hash: str
) -> Payment | None:
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
        return await load(session, found.payment_id)
