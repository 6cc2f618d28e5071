"""Simulated customers drive the same state machine and webhooks a real chain will."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from keel.core import webhooks
from tests.coinpay.conftest import Harness, WebhookSink


def verify_all(sink: WebhookSink, secret: str) -> list[str]:
    """Verify every delivery as CoinPay's SDK does; returns the event types in order."""
    types = []
    for received in sink.received:
        header = received.headers["X-CoinPay-Signature"]
        webhooks.verify(header, received.body, [secret], now=int(time.time()))
        types.append(received.json()["type"])
    return types


async def test_full_payment_delivers_signed_webhooks_in_order(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await harness.create_payment()
    paid = await harness.simulate(
        payment["id"], amount_crypto=payment["crypto_amount"], confirmations=0
    )
    assert paid["status"] == "confirming"
    confirmed = await harness.simulate(payment["id"], tx_hash=paid["tx_hash"], confirmations=1)
    assert confirmed["status"] == "confirmed"
    await harness.run_jobs()  # delivers webhooks and runs the (simulated) sweep
    await harness.run_jobs()
    assert harness.webhook_secret
    types = verify_all(webhook_sink, harness.webhook_secret)
    # Deliveries run concurrently, so arrival order is not promised (as with Stripe/BTCPay).
    assert sorted(types) == sorted(
        [
            "payment.created",
            "payment.confirming",
            "payment.confirmed",
            "payment.forwarded",
            "payment.completed",
        ]
    )
    bodies = webhook_sink.events()
    assert len({b["id"] for b in bodies}) == len(bodies)  # globally unique event ids
    data = webhook_sink.events("payment.confirmed")[0]["data"]
    assert data["payment_id"] == payment["id"]
    assert data["amount_crypto"] == payment["crypto_amount"]
    assert data["payment_address"] == payment["payment_address"]
    assert data["metadata"] == {"order": "42"}
    forwarded = await harness.client.get(f"/api/payments/{payment['id']}", headers=harness.auth())
    assert forwarded.json()["payment"]["status"] == "forwarded"
    assert forwarded.json()["payment"]["forward_tx_hash"].startswith("sim_")


async def test_a_tampered_webhook_does_not_verify(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    await harness.create_payment()
    await harness.run_jobs()
    [received] = webhook_sink.received
    assert harness.webhook_secret
    tampered = received.body.replace(b"pending", b"confirmed")
    try:
        webhooks.verify(
            received.headers["X-CoinPay-Signature"],
            tampered,
            [harness.webhook_secret],
            now=int(time.time()),
        )
    except webhooks.SignatureError:
        return
    raise AssertionError("tampered body verified")


async def test_partial_payment_expires_partially_paid(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await harness.create_payment()
    half = str(Decimal(payment["crypto_amount"]) / 2)
    partial = await harness.simulate(payment["id"], amount_crypto=half, confirmations=3)
    assert partial["status"] == "pending"
    assert partial["paid_partial"]
    harness.clock.advance(timedelta(minutes=16))
    from keel.coinpay import payments

    assert await payments.expire_due(harness.gw) == 1
    await harness.run_jobs()
    got = await harness.client.get(f"/api/payments/{payment['id']}", headers=harness.auth())
    final = got.json()["payment"]
    assert final["status"] == "expired"
    assert final["paid_partial"]
    assert sorted(b["type"] for b in webhook_sink.events()) == [
        "payment.created",
        "payment.expired",
        "payment.pending",
    ]
    expired = webhook_sink.events("payment.expired")[0]["data"]
    assert expired["paid_partial"] is True
    assert expired["amount_received"] == half


async def test_overpayment_confirms_with_paid_over(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await harness.create_payment(blockchain="ETH")
    double = str(Decimal(payment["crypto_amount"]) * 2)
    paid = await harness.simulate(payment["id"], amount_crypto=double, confirmations=12)
    assert paid["status"] == "confirmed"
    assert paid["paid_over"]
    await harness.run_jobs()
    assert "payment.confirmed" in [b["type"] for b in webhook_sink.events()]
    assert webhook_sink.events("payment.confirmed")[0]["data"]["paid_over"] is True


async def test_late_payment_within_the_window_confirms_with_paid_late(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    from keel.coinpay import payments

    payment = await harness.create_payment(blockchain="LTC")
    harness.clock.advance(timedelta(minutes=20))
    await payments.expire_due(harness.gw)
    late = await harness.simulate(
        payment["id"], amount_crypto=payment["crypto_amount"], confirmations=2
    )
    assert late["status"] == "confirmed"
    assert late["paid_late"]
    await harness.run_jobs()
    assert {"payment.created", "payment.expired", "payment.confirming", "payment.confirmed"} <= {
        b["type"] for b in webhook_sink.events()
    }


async def test_every_transition_is_logged_with_its_cause(harness: Harness) -> None:
    payment = await harness.create_payment()
    await harness.simulate(payment["id"], amount_crypto=payment["crypto_amount"], confirmations=1)
    response = await harness.client.get(
        f"/api/payments/{payment['id']}/events", headers=harness.auth()
    )
    log = response.json()["events"]
    assert [(e["to_status"], e["cause"]) for e in log] == [
        ("pending", "api"),
        ("confirming", "simulate"),
        ("confirmed", "simulate"),
    ]


async def test_a_reorg_sends_a_confirming_payment_back_and_says_so(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    payment = await harness.create_payment(blockchain="DOGE")
    paid = await harness.simulate(
        payment["id"], amount_crypto=payment["crypto_amount"], confirmations=1
    )
    assert paid["status"] == "confirming"
    dropped = await harness.simulate(
        payment["id"], tx_hash=paid["tx_hash"], confirmations=0, reverted=True
    )
    assert dropped["status"] == "pending"
    assert dropped["amount_received"] == "0"
    await harness.run_jobs()
    [reversed_] = webhook_sink.events("payment.reversed")
    assert reversed_["data"]["status"] == "pending"


async def test_failed_deliveries_are_retried_on_schedule_and_logged(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    webhook_sink.status = 500
    payment = await harness.create_payment()
    await harness.run_jobs()
    assert len(webhook_sink.received) == 1
    await harness.run_jobs()  # not due yet: the first retry waits a minute
    assert len(webhook_sink.received) == 1
    webhook_sink.status = 200
    harness.clock.advance(timedelta(seconds=61))
    await harness.run_jobs()
    assert len(webhook_sink.received) == 2
    log = await harness.client.get(
        f"/api/webhooks?payment_id={payment['id']}", headers=harness.auth()
    )
    [event] = log.json()["events"]
    assert [(d["attempt"], d["outcome"]) for d in event["deliveries"]] == [
        (1, "retry"),
        (2, "success"),
    ]
    again = await harness.client.post(
        f"/api/webhooks/events/{event['id']}/redeliver", headers=harness.auth()
    )
    assert again.json()["queued"] == 1
    await harness.run_jobs()
    assert len(webhook_sink.received) == 3


async def test_rotated_secret_signs_with_both_newest_last(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    listed = await harness.client.get(
        f"/api/businesses/{harness.business_id}/webhooks", headers=harness.auth()
    )
    endpoint_id = listed.json()["webhooks"][0]["id"]
    rotated = await harness.client.post(
        f"/api/businesses/{harness.business_id}/webhooks/{endpoint_id}/rotate-secret",
        headers=harness.auth(),
    )
    new_secret = rotated.json()["webhook"]["secret"]
    await harness.create_payment()
    await harness.run_jobs()
    [received] = webhook_sink.received
    header = received.headers["X-CoinPay-Signature"]
    assert header.count("v1=") == 2
    assert harness.webhook_secret
    now = int(time.time())
    webhooks.verify(header, received.body, [harness.webhook_secret], now=now)
    webhooks.verify(header, received.body, [new_secret], now=now)
    # The SDK reads the last v1: it must be the new secret's.
    last = header.rsplit("v1=", 1)[1]
    only_new = webhooks.sign(received.body, [new_secret], int(header.split(",")[0][2:]))
    assert only_new.endswith(last)


async def test_each_endpoint_gets_only_the_events_it_filters_for(
    harness: Harness, webhook_sink: WebhookSink
) -> None:
    created = await harness.client.post(
        f"/api/businesses/{harness.business_id}/webhooks",
        json={"url": webhook_sink.url + "/confirmed-only", "events": ["payment.confirmed"]},
        headers=harness.auth(),
    )
    second_secret = created.json()["webhook"]["secret"]
    payment = await harness.create_payment()
    await harness.simulate(payment["id"], amount_crypto=payment["crypto_amount"], confirmations=1)
    await harness.run_jobs()
    filtered = [r for r in webhook_sink.received if r.path.endswith("/confirmed-only")]
    everything = [r for r in webhook_sink.received if r.path == "/hook"]
    assert [r.json()["type"] for r in filtered] == ["payment.confirmed"]
    assert len(everything) > 1
    # Each endpoint signs with its own secret.
    now = int(time.time())
    webhooks.verify(
        filtered[0].headers["X-CoinPay-Signature"], filtered[0].body, [second_secret], now=now
    )
    assert harness.webhook_secret
    try:
        webhooks.verify(
            filtered[0].headers["X-CoinPay-Signature"],
            filtered[0].body,
            [harness.webhook_secret],
            now=now,
        )
    except webhooks.SignatureMismatch:
        pass
    else:
        raise AssertionError("one endpoint's secret verified another's delivery")
