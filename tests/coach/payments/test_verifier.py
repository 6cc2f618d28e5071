"""PaymentVerifier's choices without a chain: asking which chain, which invoice a payment
buys, failing over between sources, and the outcomes a user can cause."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keel.coach import models
from keel.coach.payments import claims
from keel.coach.payments.adapters.etherscan import Etherscan
from keel.coach.payments.adapters.evm_rpc import EvmRpc
from keel.coach.payments.adapters.tronscan import Tronscan
from keel.coach.payments.errors import SourceRateLimited
from keel.coach.payments.observed import NATIVE, Chain, ObservedPayment, Transfer, TxStatus
from keel.coach.payments.verifier import (
    AskChain,
    BadHash,
    Declined,
    InvoiceClosed,
    NoOpenInvoice,
    NotFound,
    PaymentVerifier,
    SourceDown,
    Unlocked,
    Waiting,
)
from keel.coach.payments.verify import Refusal
from keel.core import db
from tests.chains_nodes import closed_port_url
from tests.coach.payments.conftest import RECORDED, add_invoice, zero_address
from tests.coach.payments.fake_source import FakeSource
from tests.replay import ReplayServer

TRON = RECORDED["tronscan"]
ETHERSCAN = RECORDED["etherscan"]
RECORDED_AT = datetime.fromtimestamp(TRON["timestamp_ms"] // 1000, UTC)
SENDER = "0x" + "22" * 20
Sessions = async_sessionmaker[AsyncSession]


def payment(tx_hash: str, recipient: str, wei: int, at: datetime) -> ObservedPayment:
    return ObservedPayment(
        chain=Chain.ETH,
        tx_hash=tx_hash,
        status=TxStatus.SUCCEEDED,
        sender=SENDER,
        transfers=(Transfer(NATIVE, SENDER, recipient, wei),),
        block_time=at,
        confirmations=50,
        finalized=False,
    )


async def eth_invoice(engine: AsyncEngine, recipient: str, created_at: datetime) -> str:
    return await add_invoice(
        engine, chain="ETH", asset="ETH", amount=10**16, recipient=recipient, created_at=created_at
    )


async def tron_invoice(engine: AsyncEngine) -> str:
    return await add_invoice(
        engine,
        chain="TRON",
        asset="USDT",
        amount=10_000_000,
        recipient=TRON["recipient"],
        created_at=RECORDED_AT - timedelta(minutes=10),
    )


async def test_a_bare_hash_with_eth_and_tron_invoices_open_asks_which_chain(
    engine: AsyncEngine, sessions: Sessions, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    await eth_invoice(engine, zero_address(), RECORDED_AT)
    tron_id = await tron_invoice(engine)
    verifier = PaymentVerifier(
        sessions, {Chain.TRON: [Tronscan(client, url=replay.url("tronscan", "usdt"))]}
    )
    bare = TRON["hashes"]["usdt"].upper()
    asked = await verifier.verify(user_id=1001, text=bare)
    assert asked == AskChain((Chain.ETH, Chain.TRON))
    assert asked.line == "Which network did you pay on: ETH or TRON?"
    answered = await verifier.verify(user_id=1001, text=bare, chain=Chain.TRON)
    assert isinstance(answered, Unlocked)
    assert (answered.invoice_id, answered.tx_hash, answered.amount) == (
        tron_id,
        TRON["hashes"]["usdt"],
        10_000_000,
    )


async def test_a_bare_hash_with_only_a_tron_invoice_open_needs_no_question(
    engine: AsyncEngine, sessions: Sessions, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    tron_id = await tron_invoice(engine)
    verifier = PaymentVerifier(
        sessions, {Chain.TRON: [Tronscan(client, url=replay.url("tronscan", "fake_usdt"))]}
    )
    outcome = await verifier.verify(user_id=1001, text=TRON["hashes"]["fake_usdt"])
    assert isinstance(outcome, Declined)
    assert outcome.invoice_id == tron_id
    assert outcome.refusal.reason is Refusal.WRONG_TOKEN  # symbol "USDT", other contract


async def test_an_unconfirmed_tron_payment_waits(
    engine: AsyncEngine, sessions: Sessions, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    await tron_invoice(engine)
    verifier = PaymentVerifier(
        sessions, {Chain.TRON: [Tronscan(client, url=replay.url("tronscan", "unconfirmed"))]}
    )
    assert isinstance(
        await verifier.verify(user_id=1001, text=TRON["hashes"]["unconfirmed"]), Waiting
    )


async def test_the_payment_buys_the_newest_invoice_it_satisfies(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    recipient, now = zero_address(), datetime.now(UTC)
    older = await eth_invoice(engine, recipient, now - timedelta(hours=1))
    await eth_invoice(engine, recipient, now + timedelta(hours=1))  # created after the payment
    tx = "0x" + secrets.token_hex(32)
    source = FakeSource(Chain.ETH, payment(tx, recipient, 10**16, now))
    outcome = await PaymentVerifier(sessions, {Chain.ETH: [source]}).verify(user_id=1001, text=tx)
    assert isinstance(outcome, Unlocked)
    assert outcome.invoice_id == older


async def test_a_source_that_is_down_hands_over_to_the_next(
    engine: AsyncEngine, sessions: Sessions, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    await eth_invoice(
        engine, ETHERSCAN["recipient"], datetime.fromtimestamp(ETHERSCAN["block_time"] - 60, UTC)
    )
    down = EvmRpc(client, closed_port_url())
    etherscan = Etherscan(
        client, SecretStr(ETHERSCAN["key"]), url=replay.url("etherscan", "native") + "/v2/api"
    )
    verifier = PaymentVerifier(sessions, {Chain.ETH: [down, etherscan]})
    outcome = await verifier.verify(user_id=1001, text=ETHERSCAN["hashes"]["native"])
    assert isinstance(outcome, Unlocked)


async def test_when_every_source_is_down_the_user_is_told_to_retry(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    await eth_invoice(engine, zero_address(), datetime.now(UTC))
    source = FakeSource(Chain.ETH)
    source.down = SourceRateLimited("fake: HTTP 429")
    verifier = PaymentVerifier(sessions, {Chain.ETH: [source]})
    outcome = await verifier.verify(user_id=1001, text="0x" + secrets.token_hex(32))
    assert outcome == SourceDown(Chain.ETH)


async def test_an_unknown_hash_is_not_found_and_not_asked_again_elsewhere(
    engine: AsyncEngine,
    sessions: Sessions,
) -> None:
    await eth_invoice(engine, zero_address(), datetime.now(UTC))
    first, second = FakeSource(Chain.ETH), FakeSource(Chain.ETH)
    tx = "0x" + secrets.token_hex(32)
    outcome = await PaymentVerifier(sessions, {Chain.ETH: [first, second]}).verify(
        user_id=1001, text=tx
    )
    assert outcome == NotFound(Chain.ETH, tx)
    assert second.asked == []


@pytest.mark.parametrize("text", ["", "hello", "0x1234"])
async def test_bad_input_is_a_bad_hash_with_a_line(
    engine: AsyncEngine, sessions: Sessions, text: str
) -> None:
    outcome = await PaymentVerifier(sessions, {}).verify(user_id=1001, text=text)
    assert isinstance(outcome, BadHash)
    assert outcome.line


async def test_a_hash_for_a_chain_it_cannot_be_on_is_a_bad_hash(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    outcome = await PaymentVerifier(sessions, {}).verify(
        user_id=1001, text="0x" + "ab" * 32, chain=Chain.TRON
    )
    assert outcome == BadHash("That is not a TRON transaction hash.")


async def test_without_an_open_invoice_on_the_chain_there_is_nothing_to_pay(
    engine: AsyncEngine,
    sessions: Sessions,
) -> None:
    await tron_invoice(engine)
    outcome = await PaymentVerifier(sessions, {}).verify(user_id=1001, text="0x" + "ab" * 32)
    assert outcome == NoOpenInvoice((Chain.ETH,))


async def test_a_paid_invoice_named_again_is_closed(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    invoice_id = await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=1,
        recipient=zero_address(),
        created_at=datetime.now(UTC),
        status="paid",
    )
    outcome = await PaymentVerifier(sessions, {}).verify(
        user_id=1001, text="0x" + "ab" * 32, invoice_id=invoice_id
    )
    assert outcome == InvoiceClosed(invoice_id)


async def test_an_invoice_paid_another_way_while_the_chain_is_read_keeps_the_hash(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    recipient, now = zero_address(), datetime.now(UTC)
    invoice_id = await eth_invoice(engine, recipient, now - timedelta(minutes=5))
    tx = "0x" + secrets.token_hex(32)

    class RacedSource(FakeSource):
        async def observe(self, tx_hash: str) -> ObservedPayment:
            async with db.writing(engine) as conn:  # coinpay's webhook pays it meanwhile
                await conn.execute(
                    update(models.invoices)
                    .where(models.invoices.c.id == invoice_id)
                    .values(status="paid", paid_by="evt_coinpay")
                )
            return await super().observe(tx_hash)

    source = RacedSource(Chain.ETH, payment(tx, recipient, 10**16, now))
    outcome = await PaymentVerifier(sessions, {Chain.ETH: [source]}).verify(user_id=1001, text=tx)
    assert outcome == InvoiceClosed(invoice_id)
    assert await claims.find_claim(sessions, chain="ETH", tx_hash=tx) is None  # still usable


async def test_an_expired_invoice_paid_late_still_unlocks(
    engine: AsyncEngine, sessions: Sessions
) -> None:
    recipient, now = zero_address(), datetime.now(UTC)
    invoice_id = await add_invoice(
        engine,
        chain="ETH",
        asset="ETH",
        amount=10**16,
        recipient=recipient,
        created_at=now - timedelta(hours=2),
        status="expired",
    )
    tx = "0x" + secrets.token_hex(32)
    source = FakeSource(Chain.ETH, payment(tx, recipient, 10**16, now))
    outcome = await PaymentVerifier(sessions, {Chain.ETH: [source]}).verify(user_id=1001, text=tx)
    assert isinstance(outcome, Unlocked)
    assert outcome.invoice_id == invoice_id
