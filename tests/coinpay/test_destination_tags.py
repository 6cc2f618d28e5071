"""XRP payments share one receiving account per business and mode and differ by destination tag
(ADR 0023): the tag is on the payment, in the API object, the URI and the webhooks, test mode
pays by tag, and tags never repeat at an account."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
from sqlalchemy import select

from keel.coinpay import addresses, models, tags
from keel.coinpay.assets import COINS
from keel.coinpay.chains.base import SignedSweep
from keel.coinpay.errors import SweepRefused
from tests.coinpay.conftest import Harness, WebhookSink

ACCOUNT = "rHsMGQEkVNJmpGWs8XUBoTBiAAbwxZN5v3"  # abandon..about, XRP index 0


async def test_xrp_payments_of_a_business_share_its_account_and_differ_by_tag(
    harness: Harness,
) -> None:
    first = await harness.create_payment(blockchain="XRP")
    second = await harness.create_payment(blockchain="XRP")
    assert first["payment_address"] == second["payment_address"] == ACCOUNT
    assert isinstance(first["destination_tag"], int)
    assert first["destination_tag"] != second["destination_tag"]
    assert 1 <= first["destination_tag"] <= tags.MAX_TAG
    assert first["payment_uri"] == (
        f"xrpl://{ACCOUNT}?amount={first['crypto_amount']}&network=XRPL"
        f"&dt={first['destination_tag']}"
    )
    btc = await harness.create_payment(blockchain="BTC")
    assert btc["destination_tag"] is None
    assert "dt=" not in btc["payment_uri"]


async def test_the_account_is_derived_once_and_other_chains_keep_an_address_each(
    harness: Harness,
) -> None:
    for _ in range(3):
        await harness.create_payment(blockchain="XRP")
    a = await harness.create_payment(blockchain="LTC")
    b = await harness.create_payment(blockchain="LTC")
    assert a["payment_address"] != b["payment_address"]
    async with harness.gw.sessions() as session:
        accounts = (await session.execute(select(models.receiving_accounts))).all()
        families = await addresses.current_indexes(session)
    assert [(r.mode, r.chain, r.address, r.derivation_index) for r in accounts] == [
        ("test", "XRP", ACCOUNT, 0)
    ]
    assert accounts[0].activated_at is not None  # the simulated chain has no reserve
    assert families["system:XRP"] == 1  # one index for three payments


async def test_a_test_payment_is_paid_by_its_tag_and_not_by_another(
    harness: Harness,
) -> None:
    paid = await harness.create_payment(blockchain="XRP")
    other = await harness.create_payment(blockchain="XRP")
    done = await harness.simulate(paid["id"], amount_crypto=paid["crypto_amount"], confirmations=1)
    assert done["status"] == "confirmed"
    untouched = await harness.client.get(f"/api/payments/{other['id']}", headers=harness.auth())
    assert untouched.json()["payment"]["status"] == "pending"
    assert untouched.json()["payment"]["amount_received"] == "0"


async def test_webhooks_carry_the_destination_tag(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await harness.create_payment(blockchain="XRP")
    await harness.run_jobs()
    [created] = webhook_sink.events("payment.created")
    assert created["data"]["destination_tag"] == payment["destination_tag"]


async def test_live_xrp_payments_need_the_xrp_sender_that_activates_accounts(
    harness: Harness,
) -> None:
    body = {"business_id": harness.business_id, "amount": "10.00", "blockchain": "XRP"}
    harness.gw.watchers = {**harness.gw.watchers, "live": {**harness.gw.watchers["live"]}}
    harness.gw.watchers["live"]["XRP"] = harness.gw.watchers["live"]["ETH"]  # type: ignore[index]
    response = await harness.client.post(
        "/api/payments/create", json=body, headers=harness.auth(harness.live_key)
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "chain_not_watched"
    assert "platform wallet" in response.json()["detail"]


async def test_a_tag_drawn_twice_is_drawn_again(harness: Harness) -> None:
    draws = iter([5, 5, 5, 7])
    harness.gw.destination_tags = lambda: next(draws)
    first = await harness.create_payment(blockchain="XRP")
    second = await harness.create_payment(blockchain="XRP")
    assert (first["destination_tag"], second["destination_tag"]) == (5, 7)


async def test_concurrent_creations_never_share_a_tag(harness: Harness) -> None:
    """Sixteen creations at once from a source that repeats itself: every tag once."""
    pool = itertools.cycle(range(1, 40))
    harness.gw.destination_tags = lambda: next(pool)
    created = await asyncio.gather(*(harness.create_payment(blockchain="XRP") for _ in range(16)))
    found = [p["destination_tag"] for p in created]
    assert len(set(found)) == 16
    async with harness.gw.sessions() as session:
        stored = list(
            (
                await session.execute(
                    select(models.payments.c.destination_tag).where(
                        models.payments.c.payment_address == ACCOUNT
                    )
                )
            ).scalars()
        )
    assert sorted(stored) == sorted(found)


async def test_an_account_full_of_tags_refuses_after_a_few_draws(harness: Harness) -> None:
    await harness.create_payment(blockchain="XRP")
    async with harness.gw.sessions() as session:
        taken = await session.scalar(select(models.payments.c.destination_tag))
    assert taken is not None
    async with harness.gw.sessions() as session:
        with pytest.raises(RuntimeError, match="no free destination tag"):
            await tags.free_tag(session, ACCOUNT, lambda: taken)


def test_drawn_tags_are_uint32_and_never_zero() -> None:
    drawn = {tags.draw_tag() for _ in range(2000)}
    assert all(1 <= t <= tags.MAX_TAG for t in drawn)
    assert len(drawn) > 1990  # random, not counted: a customer cannot guess the next one
    assert tags.tagged(COINS["XRP"])
    assert not tags.tagged(COINS["SOL"])


class FakeLedger:
    """The XRP sender as the activation job sees it: an account appears once the activation
    Payment it was sent has been validated."""

    batch_limit = 1
    chain = "XRP"

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.signed = 0

    async def exists(self, address: str) -> bool:
        return len(self.sent) >= 2  # sent once, then seen again while pending

    async def sign_activation(self, address: str) -> SignedSweep:
        self.signed += 1
        return SignedSweep("AB" * 32, f"blob-for-{address}", {})

    async def broadcast(self, raw: str) -> None:
        self.sent.append(raw)

    async def settled(self, tx_hash: str, raw: str) -> str:
        return "pending"

    async def sign(self, inputs: object, platform_address: str) -> SignedSweep:
        raise SweepRefused("not in this test")

    async def confirmations(self, tx_hash: str) -> int | None:
        return None


async def test_a_live_account_is_activated_once_before_its_first_payment(
    harness: Harness,
) -> None:
    ledger = FakeLedger()
    harness.gw.senders = {**harness.gw.senders, "live": {"XRP": ledger}}  # type: ignore[dict-item]
    harness.gw.watchers = {
        **harness.gw.watchers,
        "live": {**harness.gw.watchers["live"], "XRP": harness.gw.watchers["live"]["ETH"]},
    }
    body = {"business_id": harness.business_id, "amount": "10.00", "blockchain": "XRP"}
    live = harness.auth(harness.live_key)
    refused = await harness.client.post("/api/payments/create", json=body, headers=live)
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "account_activating"
    again = await harness.client.post("/api/payments/create", json=body, headers=live)
    assert again.status_code == 409  # still one account, one job
    await harness.run_jobs()  # signs, stores, sends; retries later
    async with harness.gw.sessions() as session:
        [row] = (await session.execute(select(models.receiving_accounts))).all()
    assert (row.activation_tx_hash, row.activation_raw_tx) == ("AB" * 32, f"blob-for-{ACCOUNT}")
    harness.clock.advance(timedelta(seconds=5))
    await harness.run_jobs()  # pending: the same bytes again, never a second signing
    harness.clock.advance(timedelta(seconds=5))
    await harness.run_jobs()  # the account exists now
    assert ledger.signed == 1
    assert ledger.sent == [f"blob-for-{ACCOUNT}"] * 2
    created = await harness.client.post("/api/payments/create", json=body, headers=live)
    assert created.status_code == 201, created.text
    payment = created.json()["payment"]
    assert (payment["mode"], payment["payment_address"]) == ("live", ACCOUNT)
    assert payment["destination_tag"] is not None
