from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bip_utils import Bip39SeedGenerator, Bip84, Bip84Coins

from keel.coinpay import businesses
from tests.coinpay.conftest import ABANDON, Harness, WebhookSink, make_harness


def zpub() -> str:
    seed = Bip39SeedGenerator(ABANDON).Generate()
    account = Bip84.FromSeed(seed, Bip84Coins.BITCOIN).Purpose().Coin().Account(0)
    key: str = account.PublicKey().ToExtended()
    return key


async def test_watch_only_business_receives_into_its_own_wallet(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    async with harness.gw.sessions() as session, session.begin():
        await businesses.set_watch_only(
            session,
            harness.operator,
            business_id=harness.business_id,
            mode="test",
            family="BTC",
            extended_key=zpub(),
        )
    first = await harness.create_payment(blockchain="BTC")
    second = await harness.create_payment(blockchain="BTC")
    # The merchant's own BIP84 wallet (same seed here) shows exactly these receive addresses.
    assert first["payment_address"] == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert second["payment_address"] == "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    paid = await harness.simulate(first["id"], amount_crypto=first["crypto_amount"])
    assert paid["status"] == "confirmed"
    await harness.run_jobs()
    await harness.run_jobs()
    again = await harness.client.get(f"/api/payments/{first['id']}", headers=harness.auth())
    assert again.json()["payment"]["status"] == "confirmed"  # nothing to forward
    assert {"payment.confirmed", "payment.completed"} <= {b["type"] for b in webhook_sink.events()}
    assert "payment.forwarded" not in {b["type"] for b in webhook_sink.events()}


async def test_private_xpub_is_refused_over_the_cli_path(harness: Harness) -> None:
    from keel.coinpay.errors import InvalidExtendedKey

    with pytest.raises(InvalidExtendedKey):
        async with harness.gw.sessions() as session, session.begin():
            await businesses.set_watch_only(
                session,
                harness.operator,
                business_id=harness.business_id,
                mode="test",
                family="BTC",
                extended_key="zprvAWgYBBk7JR8Gjrh4UJQ2uJdG1r3WNRRfURiABBE3RvMXYSrRJL62XuezvGdPvG6GFBZduosCc1YP5wixPox7zhZLfiUm8aunE96BBa4Kei5",
            )


@pytest.fixture
async def guarded(db_url: str, webhook_sink: WebhookSink) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, webhook_sink.url, webhook_allow_private=False):
        yield h


async def test_webhooks_to_loopback_are_refused_after_resolution(
    guarded: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await guarded.create_payment()
    await guarded.run_jobs()
    assert webhook_sink.received == []
    log = await guarded.client.get(
        f"/api/webhooks?payment_id={payment['id']}", headers=guarded.auth()
    )
    [event] = log.json()["events"]
    [attempt] = event["deliveries"]
    assert attempt["outcome"] == "retry"
    assert "127.0.0.1" in attempt["error"] or "loopback" in attempt["error"].lower()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://[::1]/x",
        "http://169.254.169.254/",
        "ftp://example.com/x",
        "not a url",
    ],
)
async def test_private_or_bad_webhook_urls_are_refused_at_registration(
    guarded: Harness, url: str
) -> None:
    response = await guarded.client.post(
        f"/api/businesses/{guarded.business_id}/webhooks",
        json={"url": url},
        headers=guarded.auth(),
    )
    assert response.status_code == 400
    assert response.json()["success"] is False
