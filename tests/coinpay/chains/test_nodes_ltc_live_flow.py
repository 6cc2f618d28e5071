"""Live Litecoin payments on a real litecoind in regtest, end to end through the public API with
a ``cp_live_`` key: the chain configured from the environment as an operator would
(``KEEL_COINPAY_LTC_RPC_URLS``, ``_NETWORK=regtest``, ``_CONFIRMATIONS``), payment addresses in
regtest form, a real ``sendtoaddress`` from the node's wallet seen in the mempool (0-conf) and
then mined to the policy's depth, with signed webhooks; a reorg that drops the payment's
transaction reverses it; an underpaid payment topped up settles; a late one is flagged."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from keel.coinpay import bootstrap, lifecycle, notify
from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import ChainSource
from keel.coinpay.wallets import Family, HDRoot, Network
from keel.core.jobs import Periodic
from tests.chains_nodes import ChainNodes, Litecoind
from tests.coinpay.conftest import ABANDON, Harness, WebhookSink, make_harness

DEPTH = 3
ROOT = HDRoot.from_mnemonic(ABANDON)
PAYMENT_EVENTS = ("payment.created", "payment.confirming", "payment.confirmed")


def chain_env(node: Litecoind) -> dict[str, str]:
    return {
        "KEEL_COINPAY_LTC_RPC_URLS": node.url,
        "KEEL_COINPAY_LTC_NETWORK": "regtest",
        "KEEL_COINPAY_LTC_CONFIRMATIONS": str(DEPTH),
    }


async def live_harness(
    db_url: str, node: Litecoind, sink: WebhookSink
) -> AsyncIterator[tuple[Harness, str]]:
    """A coinpay watching ``node`` as its live LTC chain, and a live webhook endpoint."""
    ltc = config.load(chain_env(node)).chain("LTC")
    source: ChainSource = sources.open_source(ltc, timeout_seconds=10)
    try:
        async for h in make_harness(
            db_url,
            None,
            sources=[source],
            networks={"LTC": ltc.network},
            confirmations={"LTC": ltc.confirmations},
        ):
            async with h.gw.sessions() as session, session.begin():
                _, secret = await notify.create_endpoint(
                    session,
                    h.gw.box,
                    h.operator,
                    business_id=h.business_id,
                    mode="live",
                    url=sink.url,
                    events=list(lifecycle.EVENT_TYPES),
                    allow_private=True,
                )
            yield h, secret
    finally:
        await source.aclose()


@pytest.fixture
async def live(
    db_url: str, litecoind: Litecoind, webhook_sink: WebhookSink
) -> AsyncIterator[tuple[Harness, str]]:
    async for pair in live_harness(db_url, litecoind, webhook_sink):
        yield pair


def task(h: Harness, name: str) -> Periodic:
    [found] = [p for p in bootstrap.build_worker(h.gw).periodic if p.name == name]
    return found


async def create_live(h: Harness, **extra: Any) -> dict[str, Any]:
    body = {"business_id": h.business_id, "amount": "12.34", "blockchain": "LTC", **extra}
    response = await h.client.post("/api/payments/create", json=body, headers=h.auth(h.live_key))
    assert response.status_code == 201, response.text
    payment: dict[str, Any] = response.json()["payment"]
    assert (payment["mode"], payment["required_confirmations"]) == ("live", DEPTH)
    return payment


async def fetch(h: Harness, payment_id: str) -> dict[str, Any]:
    response = await h.client.get(f"/api/payments/{payment_id}", headers=h.auth(h.live_key))
    assert response.status_code == 200, response.text
    payment: dict[str, Any] = response.json()["payment"]
    return payment


def signed_by(secret: str, received: Any) -> bool:
    """X-CoinPay-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")."""
    header = received.headers["X-CoinPay-Signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + received.body, "sha256")
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


async def announced(h: Harness, sink: WebhookSink, payment_id: str) -> list[str]:
    """The payment's webhook events in the order they happened (its log, through the API; the
    internal ``status.*`` entries left out), checked against the webhooks delivered for it
    (deliveries may arrive in any order)."""
    response = await h.client.get(f"/api/payments/{payment_id}/events", headers=h.auth(h.live_key))
    logged = [e["type"] for e in response.json()["events"] if e["type"].startswith("payment.")]
    delivered = [e["type"] for e in sink.events() if e["data"].get("payment_id") == payment_id]
    assert sorted(delivered) == sorted(logged)
    return logged


async def test_a_sendtoaddress_is_seen_at_0_conf_then_confirms_at_the_policy_depth(
    litecoind: Litecoind, live: tuple[Harness, str], webhook_sink: WebhookSink
) -> None:
    h, secret = live
    scan = task(h, "scan:LTC")
    await scan.run()  # the scanner starts at the node's tip
    payment = await create_live(h)
    address = payment["payment_address"]
    assert address == ROOT.address(Family.LTC, 0, Network.REGTEST)
    assert address.startswith("rltc1q")
    assert payment["payment_uri"].startswith(f"litecoin:{address}")

    txid = litecoind.send(address, Decimal(payment["crypto_amount"]))
    await scan.run()
    # A full deposit in the mempool moves the payment on at once, to confirming at depth 0.
    seen = await fetch(h, payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 0, txid)
    assert seen["amount_received"] == payment["crypto_amount"]

    for depth in range(1, DEPTH):
        litecoind.mine(1)
        await scan.run()
        now = await fetch(h, payment["id"])
        assert (now["status"], now["confirmations"]) == ("confirming", depth)
    litecoind.mine(1)
    await scan.run()
    done = await fetch(h, payment["id"])
    assert (done["status"], done["confirmations"], done["amount_received"]) == (
        "confirmed",
        DEPTH,
        payment["crypto_amount"],
    )
    assert [done[flag] for flag in ("paid_partial", "paid_over", "paid_late")] == [False] * 3

    await h.run_jobs()
    assert await announced(h, webhook_sink, payment["id"]) == list(PAYMENT_EVENTS)
    [confirmed] = webhook_sink.events("payment.confirmed")
    assert (confirmed["data"]["tx_hash"], confirmed["data"]["confirmations"]) == (txid, DEPTH)
    assert all(signed_by(secret, r) for r in webhook_sink.received)


async def test_a_reorg_that_drops_the_payment_reverses_it(
    chain_nodes: ChainNodes, db_url: str, webhook_sink: WebhookSink
) -> None:
    node = chain_nodes.litecoind()  # its own node: this test rewrites its chain
    async for h, _ in live_harness(db_url, node, webhook_sink):
        scan = task(h, "scan:LTC")
        await scan.run()
        payment = await create_live(h)
        txid = node.send(payment["payment_address"], Decimal(payment["crypto_amount"]))
        [block] = node.mine(1)
        assert txid in node.rpc("getblock", block)["tx"]
        await scan.run()
        assert (await fetch(h, payment["id"]))["confirmations"] == 1

        # The block is taken away: the node puts its transactions back in the mempool, where
        # the payment is still paid, at depth 0. That is not a reversal.
        node.rpc("invalidateblock", block)
        assert txid in node.rpc("getrawmempool")
        await scan.run()
        back = await fetch(h, payment["id"])
        assert (back["status"], back["confirmations"]) == ("confirming", 0)

        # The replacement chain spends the payment's input elsewhere (a double spend mined
        # with generateblock): the node drops the payment from its mempool for good.
        node.mine_block_with(conflicting_spend(node, txid))
        node.mine(1)
        assert txid not in node.rpc("getrawmempool")
        await scan.run()
        reversed_ = await fetch(h, payment["id"])
        assert (reversed_["status"], reversed_["amount_received"]) == ("pending", "0")
        assert reversed_["confirmations"] == 0

        await h.run_jobs()
        assert await announced(h, webhook_sink, payment["id"]) == [
            "payment.created",
            "payment.confirming",
            "payment.reversed",
        ]
        [event] = webhook_sink.events("payment.reversed")
        assert event["data"]["status"] == "pending"


def conflicting_spend(node: Litecoind, txid: str) -> str:
    """A signed transaction spending ``txid``'s first input back to the node's wallet."""
    spent = node.rpc("getrawtransaction", txid, True)["vin"][0]
    coin = node.rpc("gettxout", spent["txid"], spent["vout"], False)  # unspent, ignoring mempool
    value = coin["value"] - Decimal("0.001")
    raw = node.rpc(
        "createrawtransaction",
        [{"txid": spent["txid"], "vout": spent["vout"]}],
        {node.new_address(): str(value)},
    )
    signed = node.rpc("signrawtransactionwithwallet", raw)
    assert signed["complete"], signed
    return str(signed["hex"])


async def test_an_underpaid_payment_topped_up_settles(
    litecoind: Litecoind, live: tuple[Harness, str], webhook_sink: WebhookSink
) -> None:
    h, _ = live
    scan = task(h, "scan:LTC")
    await scan.run()
    payment = await create_live(h)
    total = Decimal(payment["crypto_amount"])
    first = (total / 3).quantize(Decimal("0.00000001"))
    litecoind.send(payment["payment_address"], first)
    litecoind.mine(1)
    await scan.run()
    partial = await fetch(h, payment["id"])
    assert (partial["status"], partial["paid_partial"]) == ("pending", True)
    assert Decimal(partial["amount_received"]) == first

    top_up = litecoind.send(payment["payment_address"], total - first)
    await scan.run()
    paid = await fetch(h, payment["id"])
    assert (paid["status"], paid["paid_partial"], paid["tx_hash"]) == ("confirming", False, top_up)
    assert paid["confirmations"] == 0  # the depth at which the deposits cover the amount
    litecoind.mine(DEPTH)
    await scan.run()
    done = await fetch(h, payment["id"])
    assert (done["status"], done["amount_received"]) == ("confirmed", payment["crypto_amount"])

    await h.run_jobs()
    assert await announced(h, webhook_sink, payment["id"]) == [
        "payment.created",
        "payment.pending",
        "payment.confirming",
        "payment.confirmed",
    ]


async def test_a_payment_after_expiry_is_seen_and_flagged_late(
    litecoind: Litecoind, live: tuple[Harness, str], webhook_sink: WebhookSink
) -> None:
    h, _ = live
    scan = task(h, "scan:LTC")
    await scan.run()
    payment = await create_live(h, expires_in_minutes=1)
    h.clock.advance(timedelta(minutes=2))
    await task(h, "expire").run()
    assert (await fetch(h, payment["id"]))["status"] == "expired"

    txid = litecoind.send(payment["payment_address"], Decimal(payment["crypto_amount"]))
    litecoind.mine(DEPTH)
    await scan.run()
    late = await fetch(h, payment["id"])
    assert (late["status"], late["paid_late"], late["tx_hash"]) == ("confirmed", True, txid)

    await h.run_jobs()
    assert await announced(h, webhook_sink, payment["id"]) == [
        "payment.created",
        "payment.expired",
        "payment.confirming",
        "payment.confirmed",
    ]
