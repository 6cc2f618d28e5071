"""Live XRP payments through the public API and the worker's scan task, on a scripted chain:
a transfer credits the payment whose destination tag it carries, and one with no tag or an
unknown tag credits none and is kept and counted for an operator to refund."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from keel.coinpay import models
from keel.coinpay.chains.base import Transfer
from tests.coinpay.chains.scripted import ScriptedChain
from tests.coinpay.conftest import Harness, WebhookSink, make_harness
from tests.coinpay.test_destination_tags import FakeLedger


@pytest.fixture
def chain() -> ScriptedChain:
    return ScriptedChain(chain="XRP")


@pytest.fixture
async def live(
    db_url: str, chain: ScriptedChain, webhook_sink: WebhookSink
) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, None, sources=[chain], confirmations={"XRP": 1}):
        await h.add_live_endpoint(webhook_sink.url)
        h.gw.senders = {**h.gw.senders, "live": {"XRP": FakeLedger()}}  # type: ignore[dict-item]
        yield h


async def _activated_payments(live: Harness, count: int) -> list[dict[str, object]]:
    body = {"business_id": live.business_id, "amount": "25.00", "blockchain": "XRP"}
    first = await live.client.post(
        "/api/payments/create", json=body, headers=live.auth(live.live_key)
    )
    assert first.status_code == 409  # the account is being activated
    async with live.gw.sessions() as session, session.begin():
        await session.execute(
            update(models.receiving_accounts).values(activated_at=live.clock.now())
        )
    return [await live.create_live_payment("XRP") for _ in range(count)]


def untagged_count() -> float:
    return (
        REGISTRY.get_sample_value("coinpay_chain_untagged_transfers_total", {"chain": "XRP"}) or 0
    )


async def test_a_transfer_credits_only_the_payment_of_its_tag(
    live: Harness, chain: ScriptedChain, webhook_sink: WebhookSink
) -> None:
    scan = live.periodic("scan:XRP")
    chain.mine()
    await scan.run()
    paid, other = await _activated_payments(live, 2)
    assert paid["payment_address"] == other["payment_address"]
    account = str(paid["payment_address"])
    amount = int(str(paid["crypto_amount_base_units"]))
    before = untagged_count()
    chain.mine(
        Transfer("XRP", "A" * 64, 0, account, amount, str(paid["destination_tag"])),
        Transfer("XRP", "B" * 64, 0, account, 7_000_000, None),  # no tag
        Transfer("XRP", "C" * 64, 0, account, 3_000_000, "999"),  # nobody's tag
    )
    await scan.run()
    done = await live.live_payment(str(paid["id"]))
    assert (done["status"], done["tx_hash"], done["amount_received"]) == (
        "confirmed",
        "A" * 64,
        paid["crypto_amount"],
    )
    untouched = await live.live_payment(str(other["id"]))
    assert (untouched["status"], untouched["amount_received"]) == ("pending", "0")
    assert untagged_count() == before + 2
    async with live.gw.sessions() as session:
        kept = (
            await session.execute(
                select(models.chain_transfers.c.tx_hash, models.chain_transfers.c.memo)
                .where(models.chain_transfers.c.address == account)
                .order_by(models.chain_transfers.c.tx_hash)
            )
        ).all()
    assert [tuple(r) for r in kept] == [
        ("A" * 64, str(paid["destination_tag"])),
        ("B" * 64, None),
        ("C" * 64, "999"),
    ]
    await live.run_jobs()
    confirmed = webhook_sink.events("payment.confirmed")
    assert [e["data"]["destination_tag"] for e in confirmed] == [paid["destination_tag"]]


async def test_an_untagged_transfer_to_an_address_that_is_not_ours_is_not_counted(
    live: Harness, chain: ScriptedChain
) -> None:
    scan = live.periodic("scan:XRP")
    chain.mine()
    await scan.run()
    await _activated_payments(live, 1)
    before = untagged_count()
    chain.mine(Transfer("XRP", "D" * 64, 0, "rPEPPER7kfTD9w2To4CQk6UCfuHM9c6GDY", 5, None))
    await scan.run()
    assert untagged_count() == before
