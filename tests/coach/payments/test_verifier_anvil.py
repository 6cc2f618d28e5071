"""The done-when, end to end: an ETH payment made on anvil is verified from its pasted hash
and unlocks its invoice; the same hash used twice (or by two users at once) unlocks once; a
payment to the wrong address, for too little, or before the invoice is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.payments import claims
from keel.coach.payments.adapters.evm_rpc import EvmRpc
from keel.coach.payments.observed import Chain
from keel.coach.payments.verifier import (
    AlreadyUsed,
    Declined,
    PaymentVerifier,
    Unlocked,
    Waiting,
)
from keel.coach.payments.verify import BLOCK_TIME_SLACK, Refusal, WaitReason
from keel.core import db
from tests.chains_nodes import Anvil
from tests.coach.payments.conftest import add_invoice, zero_address
from tests.coach.payments.test_evm_anvil import ANVIL_CHAIN_ID, mined

DEPTH = 2
PRICE_WEI = 10**16
Pay = Callable[..., Awaitable[tuple[str, str, datetime]]]
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def verifier(
    anvil: Anvil, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> PaymentVerifier:
    return PaymentVerifier(
        sessions,
        {Chain.ETH: [EvmRpc(client, anvil.url, chain_id=ANVIL_CHAIN_ID)]},
        confirmations={Chain.ETH: DEPTH},
    )


@pytest.fixture
def pay(anvil: Anvil, engine: AsyncEngine) -> Pay:
    async def pay(
        *, wei: int = PRICE_WEI, user_id: int = 1001, to_invoice: bool = True, final: bool = True
    ) -> tuple[str, str, datetime]:
        """An open ETH invoice and a real payment of ``wei`` (to its address, or to another);
        (invoice id, tx hash, block time)."""
        recipient = zero_address()
        invoice_id = await add_invoice(
            engine,
            chain="ETH",
            asset="ETH",
            amount=PRICE_WEI,
            recipient=recipient,
            created_at=datetime.now(UTC) - timedelta(minutes=1),
            user_id=user_id,
        )
        tx = anvil.send_eth(recipient if to_invoice else zero_address(), wei)
        block_time = await mined(anvil, tx)
        if final:
            anvil.mine(DEPTH)
        return invoice_id, tx, block_time

    return pay


async def paid_until(engine: AsyncEngine, user_id: int) -> datetime | None:
    async with db.reading(engine) as conn:
        return await conn.scalar(
            select(models.users.c.paid_until).where(models.users.c.id == user_id)
        )


async def test_an_ether_payment_unlocks_its_invoice_from_the_pasted_hash(
    pay: Pay, verifier: PaymentVerifier, engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice_id, tx, _ = await pay()
    outcome = await verifier.verify(user_id=1001, text=f" {tx.upper().replace('0X', '0x')} ")
    assert isinstance(outcome, Unlocked)
    assert (outcome.invoice_id, outcome.chain, outcome.tx_hash, outcome.amount) == (
        invoice_id,
        Chain.ETH,
        tx.lower(),
        PRICE_WEI,
    )
    assert outcome.chat_id == 1001
    assert await paid_until(engine, 1001) == outcome.paid_until  # granted in the claim's tx
    invoice = await claims.load_invoice(sessions, invoice_id=invoice_id, user_id=1001)
    assert invoice is not None
    assert invoice.status == "paid"
    assert invoice.paid_by == tx.lower()


async def test_the_same_hash_pasted_twice_unlocks_once(
    pay: Pay, verifier: PaymentVerifier, engine: AsyncEngine
) -> None:
    _, tx, _ = await pay()
    await add_invoice(  # a second open invoice the same payment must not buy
        engine,
        chain="ETH",
        asset="ETH",
        amount=PRICE_WEI,
        recipient=zero_address(),
        created_at=datetime.now(UTC) - timedelta(minutes=2),
    )
    assert isinstance(await verifier.verify(user_id=1001, text=tx), Unlocked)
    again = await verifier.verify(user_id=1001, text=tx)
    assert again == AlreadyUsed(Chain.ETH, tx.lower(), mine=True)
    assert "already used" in again.line


async def test_two_users_pasting_one_hash_at_once_unlock_one_invoice(
    pay: Pay, verifier: PaymentVerifier, engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice_id, tx, _ = await pay(user_id=3001)
    # A second user with an invoice to the same address (they copied someone's hash).
    invoice = await claims.load_invoice(sessions, invoice_id=invoice_id, user_id=3001)
    assert invoice is not None
    await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=PRICE_WEI,
        recipient=invoice.recipient,
        created_at=invoice.created_at,
        user_id=3002,
    )
    outcomes = await asyncio.gather(
        verifier.verify(user_id=3001, text=tx), verifier.verify(user_id=3002, text=tx)
    )
    assert [type(o) for o in outcomes].count(Unlocked) == 1
    assert [type(o) for o in outcomes].count(AlreadyUsed) == 1


async def test_paying_another_address_is_refused(pay: Pay, verifier: PaymentVerifier) -> None:
    invoice_id, tx, _ = await pay(to_invoice=False)
    outcome = await verifier.verify(user_id=1001, text=tx, invoice_id=invoice_id)
    assert isinstance(outcome, Declined)
    assert outcome.refusal.reason is Refusal.WRONG_RECIPIENT
    assert outcome.code == "wrong_recipient"


async def test_paying_too_little_is_refused(pay: Pay, verifier: PaymentVerifier) -> None:
    invoice_id, tx, _ = await pay(wei=PRICE_WEI - 1)
    outcome = await verifier.verify(user_id=1001, text=tx, invoice_id=invoice_id)
    assert isinstance(outcome, Declined)
    assert outcome.refusal.reason is Refusal.TOO_LITTLE
    assert outcome.refusal.received == PRICE_WEI - 1


async def test_a_payment_made_before_the_invoice_is_refused(
    pay: Pay, verifier: PaymentVerifier, engine: AsyncEngine
) -> None:
    first_invoice, tx, block_time = await pay()
    invoices = models.invoices
    async with db.writing(engine) as conn:  # the invoice was created after the payment
        await conn.execute(
            update(invoices)
            .where(invoices.c.id == first_invoice)
            .values(created_at=block_time + BLOCK_TIME_SLACK + timedelta(seconds=1))
        )
    outcome = await verifier.verify(user_id=1001, text=tx, invoice_id=first_invoice)
    assert isinstance(outcome, Declined)
    assert outcome.refusal.reason is Refusal.BEFORE_INVOICE


async def test_a_payment_without_enough_confirmations_waits_then_unlocks(
    anvil: Anvil, pay: Pay, verifier: PaymentVerifier
) -> None:
    _, tx, _ = await pay(final=False)
    waiting = await verifier.verify(user_id=1001, text=tx)
    assert isinstance(waiting, Waiting)
    assert waiting.wait.reason is WaitReason.NOT_FINAL
    assert waiting.wait.confirmations == 1
    assert waiting.wait.needed == DEPTH
    anvil.mine(DEPTH)
    assert isinstance(await verifier.verify(user_id=1001, text=tx), Unlocked)
