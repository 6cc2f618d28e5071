"""Live Litecoin payments on a real litecoind in regtest, end to end through the public API with
a ``cp_live_`` key: the chain configured from the environment as an operator would
(``KEEL_COINPAY_LTC_RPC_URLS``, ``_NETWORK=regtest``, ``_CONFIRMATIONS``), payment addresses in
regtest form, a real ``sendtoaddress`` from the node's wallet seen in the mempool (0-conf) and
then mined to the policy's depth, with signed webhooks; a reorg that drops the payment's
transaction reverses it; an underpaid payment topped up settles; a late one is flagged; two
confirmed payments are swept in one signed transaction (each merchant paid what arrived less the
commission and its share of the fee, the platform the summed commission)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from bip_utils import Base58Encoder
from sqlalchemy import select

from keel.coinpay import apikeys, bootstrap, lifecycle, models, money, notify
from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import ChainSource, SweepInput
from keel.coinpay.chains.rpc import RpcClient
from keel.coinpay.chains.utxo_sender import UtxoSender, open_utxo_sender, split_fee
from keel.coinpay.payments import sweeping
from keel.coinpay.payments.model import Payment
from keel.coinpay.wallets import Family, HDRoot, Network, output_script
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
    db_url: str, node: Litecoind, sink: WebhookSink, **settings: Any
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
            **settings,
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


async def test_two_confirmed_payments_are_swept_in_one_transaction(
    litecoind: Litecoind, db_url: str, webhook_sink: WebhookSink
) -> None:
    node = litecoind
    platform = node.new_address()
    payouts = [node.new_address(), node.new_address()]
    async for h, _ in live_harness(db_url, node, webhook_sink, platform_wallets={"LTC": platform}):
        async with h.gw.sessions() as session, session.begin():
            _, manager = await apikeys.create_key(
                session,
                h.gw.box,
                h.operator,
                business_id=h.business_id,
                mode="live",
                scopes=["wallets:manage"],
            )
        scan = task(h, "scan:LTC")
        await scan.run()
        payments = []
        for payout, amount in zip(payouts, ("12.34", "56.78"), strict=True):
            body = {"cryptocurrency": "LTC", "wallet_address": payout}
            response = await h.client.post(
                f"/api/businesses/{h.business_id}/wallets", json=body, headers=h.auth(manager)
            )
            assert response.status_code == 200, response.text
            payments.append(await create_live(h, amount=amount))
        for payment in payments:
            node.send(payment["payment_address"], Decimal(payment["crypto_amount"]))
        node.mine(DEPTH)
        await scan.run()
        assert [(await fetch(h, p["id"]))["status"] for p in payments] == ["confirmed"] * 2

        # Both start forwarding (the split written down) while the chain has no sender yet;
        # then one sweep round finds both waiting and batches them.
        await h.run_jobs()
        rows = await payment_rows(h, [p["id"] for p in payments])
        assert [r.status for r in rows] == ["forwarding"] * 2
        sender = open_utxo_sender(
            config.load(chain_env(node)).chain("LTC"),
            h.gw.sessions,
            h.gw.custody.root,
            platform_address=platform,
        )
        try:
            inputs = tuple(sweep_input(r) for r in rows)
            first = await sender.sign(inputs, platform)
            assert await sender.sign(inputs, platform) == first  # the same bytes every time

            h.gw.senders = {**h.gw.senders, "live": {"LTC": sender}}
            sweep = task(h, "sweep:LTC")
            await sweep.run()
            rows = await payment_rows(h, [p["id"] for p in payments])
            assert rows[0].sweep_id is not None
            assert rows[0].sweep_id == rows[1].sweep_id  # one sweep for both
            async with h.gw.sessions() as session:
                [stored] = (await session.execute(select(models.sweeps))).all()
            assert (stored.status, stored.payments, stored.raw_tx) == ("broadcast", 2, first.raw)
            tx = node.rpc("getrawtransaction", stored.tx_hash, True)  # in the mempool
            addresses = {p["payment_address"] for p in payments}
            spent = [wallet_tx(node, i["txid"])["vout"][i["vout"]] for i in tx["vin"]]
            assert {o["scriptPubKey"]["addresses"][0] for o in spent} == addresses
            paid = {o["scriptPubKey"]["addresses"][0]: units(o["value"]) for o in tx["vout"]}
            received = [units(p["crypto_amount"]) for p in payments]
            fee = sum(units(o["value"]) for o in spent) - sum(paid.values())
            assert fee == sum(r.network_fee for r in rows) > 0
            assert paid == {
                payouts[0]: received[0] - rows[0].commission_amount - rows[0].network_fee,
                payouts[1]: received[1] - rows[1].commission_amount - rows[1].network_fee,
                platform: rows[0].commission_amount + rows[1].commission_amount,
            }
            assert [r.commission_amount for r in rows] == [amount // 100 for amount in received]
            # Fee shares follow what each merchant is owed, exactly.
            owed = {
                r.id: amount - r.commission_amount for r, amount in zip(rows, received, strict=True)
            }
            assert {r.id: r.network_fee for r in rows} == split_fee(fee, owed)

            await sender.broadcast(stored.raw_tx)  # already in the mempool: sent
            node.mine(DEPTH - 1)
            await sweep.run()
            assert [r.status for r in await payment_rows(h, [p["id"] for p in payments])] == [
                "forwarding"
            ] * 2
            node.mine(1)
            await sender.broadcast(stored.raw_tx)  # already in a block: sent
            await sweep.run()
            for payment, payout in zip(payments, payouts, strict=True):
                done = await fetch(h, payment["id"])
                assert (done["status"], done["forward_tx_hash"]) == ("forwarded", stored.tx_hash)
                got = units(node.rpc("getreceivedbyaddress", payout, DEPTH))
                assert got == paid[payout]
            assert units(node.rpc("getreceivedbyaddress", platform, DEPTH)) == paid[platform]
            await h.run_jobs()
            forwarded = webhook_sink.events("payment.forwarded")
            assert sorted(e["data"]["payment_id"] for e in forwarded) == sorted(
                p["id"] for p in payments
            )
        finally:
            await sender.aclose()


def wallet_tx(node: Litecoind, txid: str) -> Any:
    """A confirmed transaction of the node's wallet, decoded (no -txindex on the test nodes)."""
    return node.rpc("decoderawtransaction", node.rpc("gettransaction", txid)["hex"])


def units(value: Any) -> int:
    return money.units_of(Decimal(str(value)), 8)


async def payment_rows(h: Harness, ids: list[str]) -> list[Any]:
    t = models.payments
    async with h.gw.sessions() as session:
        rows = (await session.execute(select(t).where(t.c.id.in_(ids)))).all()
    return sorted(rows, key=lambda r: ids.index(r.id))


def sweep_input(row: Any) -> SweepInput:
    """What the sweeper hands a sender for this payment row."""
    return sweeping.sweep_input(Payment.from_row(row))


async def test_a_legacy_p2pkh_sweep_as_signed_for_dogecoin_is_valid_on_a_real_node(
    litecoind: Litecoind, db_url: str, webhook_sink: WebhookSink
) -> None:
    """No Dogecoin node installs here, but its payment addresses are P2PKH with Bitcoin's
    legacy signatures, which litecoind verifies the same way: funds sent to the script of a
    DOGE regtest address, swept by a DOGE sender through litecoind, are accepted and mined."""
    node = litecoind
    address = ROOT.address(Family.DOGE, 3, Network.REGTEST)
    doge_script = output_script(Family.DOGE, address, Network.REGTEST)
    assert doge_script[:3] == b"\x76\xa9\x14"  # P2PKH: the same script on any network
    ltc_address = base58check(b"\x6f" + doge_script[3:23])  # Litecoin regtest P2PKH
    txid = node.send(ltc_address, Decimal("1.5"))
    node.mine(1)
    vout = next(
        o["n"]
        for o in wallet_tx(node, txid)["vout"]
        if o["scriptPubKey"]["hex"] == doge_script.hex()
    )
    payout = ROOT.address(Family.DOGE, 4, Network.REGTEST)
    platform = ROOT.address(Family.DOGE, 5, Network.REGTEST)
    async for h, _ in live_harness(db_url, node, webhook_sink):
        async with h.gw.sessions() as session, session.begin():
            await session.execute(
                models.chain_transfers.insert().values(
                    chain="DOGE", coin="DOGE", tx_hash=txid, position=vout,
                    address=address, amount=150_000_000, block_height=node.height(),
                    block_hash=node.rpc("getbestblockhash"), orphaned=False,
                    first_seen_at=h.gw.clock.now(),
                )
            )  # fmt: skip

        async def keys() -> HDRoot:
            return ROOT

        rpc = RpcClient("DOGE", [node.url], timeout_seconds=10)
        sender = UtxoSender("DOGE", rpc, h.gw.sessions, keys, network=Network.REGTEST)
        try:
            sweep = SweepInput("p", "DOGE", address, 3, 150_000_000, 1_500_000, payout)
            signed = await sender.sign((sweep,), platform)
            await sender.broadcast(signed.raw)
            assert await sender.confirmations(signed.tx_hash) == 0
            node.mine(1)
            assert await sender.confirmations(signed.tx_hash) == 1
        finally:
            await sender.aclose()
    tx = node.rpc("decoderawtransaction", signed.raw)
    paid = {o["scriptPubKey"]["hex"]: units(o["value"]) for o in tx["vout"]}
    payout_script = output_script(Family.DOGE, payout, Network.REGTEST).hex()
    platform_script = output_script(Family.DOGE, platform, Network.REGTEST).hex()
    assert paid == {
        payout_script: 150_000_000 - 1_500_000 - signed.fees["p"],
        platform_script: 1_500_000,
    }
    assert (tx["version"], tx["vin"][0]["sequence"]) == (1, 0xFFFFFFFF)


def base58check(payload: bytes) -> str:
    return str(Base58Encoder.CheckEncode(payload))
