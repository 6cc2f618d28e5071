"""Test mode's customer: "pays" a test payment into the simulated chain (or confirms it, or
reverses it), which the same watcher path then reads back."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from keel.coinpay import models
from keel.coinpay.apikeys import Principal
from keel.coinpay.assets import get_coin
from keel.coinpay.errors import InvalidAmount, NotTestPayment, PaymentClosed
from keel.coinpay.gateway import Gateway
from keel.coinpay.lifecycle import Status
from keel.coinpay.money import parse_units
from keel.coinpay.payments.model import Payment
from keel.coinpay.payments.reading import get
from keel.coinpay.payments.watching import refresh
from keel.core.errors import BadRequest


async def simulate(
    gw: Gateway,
    principal: Principal,
    payment_id: str,
    *,
    amount_crypto: str | None,
    confirmations: int | None,
    tx_hash: str | None = None,
    reverted: bool = False,
) -> Payment:
    """Play the customer paying a test payment (or a block confirming it, or a reorg)."""
    principal.require("payments:create")
    payment = await get(gw, principal, payment_id)
    if payment.mode != "test":
        raise NotTestPayment()
    if payment.status in (Status.FORWARDED.value, Status.FAILED.value):
        raise PaymentClosed(f"Payment is {payment.status}")
    coin = get_coin(payment.blockchain)
    if confirmations is not None and not 0 <= confirmations <= 1_000_000:
        raise BadRequest("confirmations must be between 0 and 1000000")
    depth = payment.required_confirmations if confirmations is None else confirmations
    async with gw.sessions() as session, session.begin():
        if tx_hash is None:
            if amount_crypto is None:
                raise BadRequest("amount_crypto is required for a new transfer")
            amount = parse_units(amount_crypto, coin.decimals)
            if amount <= 0:
                raise InvalidAmount("amount_crypto must be positive")
            tx_hash = "sim_" + uuid.uuid4().hex
        else:
            amount = _existing_amount(await _sim_transfer(session, tx_hash, payment), tx_hash)
        await gw.simulated_chain.record(
            session,
            chain=payment.blockchain,
            address=payment.payment_address,
            tx_hash=tx_hash,
            amount=amount,
            confirmations=depth,
            reverted=reverted,
            memo=None if payment.destination_tag is None else str(payment.destination_tag),
        )
    return await refresh(gw, payment_id, cause="simulate")


async def _sim_transfer(session: AsyncSession, tx_hash: str, payment: Payment) -> Row[Any] | None:
    t = models.simulated_transfers
    return (
        await session.execute(
            select(t).where(
                t.c.tx_hash == tx_hash,
                t.c.address == payment.payment_address,
                t.c.memo.is_(None)
                if payment.destination_tag is None
                else t.c.memo == str(payment.destination_tag),
            )
        )
    ).one_or_none()


def _existing_amount(transfer: Row[Any] | None, tx_hash: str) -> int:
    if transfer is None:
        raise BadRequest(f"No simulated transfer {tx_hash} to this payment")
    return int(transfer.amount)
