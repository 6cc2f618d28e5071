"""A live ADA payment end to end through the public API with a ``cp_live_`` key, Cardano read
and swept through Koios as an operator configures it (``KEEL_COINPAY_ADA_RPC_URLS``,
``_API=koios``, ``_CONFIRMATIONS``): seen in a block, confirmed at the policy's depth, swept in a
transaction decoded and checked here (inputs, outputs, fee, TTL, the witness's signature over
the body's id), submitted, confirmed, forwarded, with signed webhooks. A sweep whose
transaction was lost and then passed its TTL is signed again by the sweeper, and the new bytes
are sent once and forwarded.

Koios is served from 127.0.0.1 by ``tests.replay`` from a chain the test writes as it goes
(``KoiosChain``: Koios's documented answer shapes; see recordings/koios/README.md)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from keel.coinpay import models
from keel.coinpay.chains import cardano_tx, config, sources
from keel.coinpay.chains.base import ChainSource, SweepInput
from keel.coinpay.chains.cardano_sender import (
    DEFAULT_EXPIRY_MARGIN_SLOTS,
    CardanoSender,
    open_cardano_sender,
)
from keel.coinpay.chains.cardano_tx import ProtocolParams
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.chains.utxo_sender import NotSweepable
from keel.coinpay.payments import sweeping
from keel.coinpay.payments.model import Payment
from keel.coinpay.wallets import Family, HDRoot
from tests.coinpay.chains.koios_chain import EPOCH_PARAMS, KoiosChain, Output
from tests.coinpay.chains.test_nodes_ltc_live_flow import announced, signed_by
from tests.coinpay.conftest import ABANDON, PAYOUT_MNEMONIC, Harness, WebhookSink, make_harness
from tests.replay import ReplayServer, serve_recordings

DEPTH = 3
ROOT = HDRoot.from_mnemonic(ABANDON)
PLATFORM = HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(Family.ADA, 8)
MERCHANT = HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(Family.ADA, 7)  # the harness's payout
PARAMS = ProtocolParams(
    EPOCH_PARAMS["min_fee_a"],
    EPOCH_PARAMS["min_fee_b"],
    int(EPOCH_PARAMS["coins_per_utxo_size"]),
    EPOCH_PARAMS["max_tx_size"],
)


@pytest.fixture
async def koios(tmp_path: Path) -> AsyncIterator[tuple[ReplayServer, KoiosChain]]:
    with serve_recordings(tmp_path) as server:
        yield server, KoiosChain(tmp_path)


@pytest.fixture
async def live(
    db_url: str, koios: tuple[ReplayServer, KoiosChain], webhook_sink: WebhookSink
) -> AsyncIterator[tuple[Harness, str, config.ChainConfig]]:
    server, _ = koios
    ada = config.load(
        {
            "KEEL_COINPAY_ADA_RPC_URLS": server.url("koios", "chain"),
            "KEEL_COINPAY_ADA_API": "koios",
            "KEEL_COINPAY_ADA_CONFIRMATIONS": str(DEPTH),
        }
    ).chain("ADA")
    source: ChainSource = sources.open_source(ada, timeout_seconds=5)
    try:
        async for h in make_harness(
            db_url,
            None,
            sources=[source],
            confirmations={"ADA": ada.confirmations},
            platform_wallets={"ADA": PLATFORM},
        ):
            secret = await h.add_live_endpoint(webhook_sink.url)
            yield h, secret, ada
    finally:
        await source.aclose()  # type: ignore[attr-defined]


async def fetch(h: Harness, payment_id: str) -> dict[str, Any]:
    return await h.live_payment(payment_id)


def sweep_input(row: Any) -> SweepInput:
    """What the sweeper hands a sender for this payment row."""
    return sweeping.sweep_input(Payment.from_row(row))


async def payment_row(h: Harness, payment_id: str) -> Any:
    async with h.gw.sessions() as session:
        return (
            await session.execute(select(models.payments).where(models.payments.c.id == payment_id))
        ).one()


async def test_a_live_ada_payment_is_confirmed_swept_and_forwarded(
    live: tuple[Harness, str, config.ChainConfig],
    koios: tuple[ReplayServer, KoiosChain],
    webhook_sink: WebhookSink,
) -> None:
    h, secret, ada = live
    _, chain = koios
    assert h.live_key.startswith("cp_live_")
    scan = h.periodic("scan:ADA")
    await scan.run()  # the scanner starts at Koios's tip
    payment = await h.create_live_payment("ADA", amount="150.00")
    address = payment["payment_address"]
    assert address == ROOT.address(Family.ADA, 0)
    amount = int(payment["crypto_amount_base_units"])
    assert payment["payment_uri"].startswith(f"web+cardano:{address}")

    # The customer's wallet pays it, with change back to itself.
    [txid] = chain.mine([Output(ROOT.address(Family.ADA, 99), 40_000_000), Output(address, amount)])
    await scan.run()
    seen = await fetch(h, payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 1, txid)
    chain.mine()
    chain.mine()
    await scan.run()
    done = await fetch(h, payment["id"])
    assert (done["status"], done["confirmations"]) == ("confirmed", DEPTH)

    await h.run_jobs()  # the split is written down; ADA batches, so the periodic round sweeps
    row = await payment_row(h, payment["id"])
    assert (row.status, row.commission_amount) == ("forwarding", amount // 100)
    sender = open_cardano_sender(ada, h.gw.sessions, h.gw.custody.root, platform_address=PLATFORM)
    try:
        signed = await sender.sign((sweep_input(row),), PLATFORM)
        raw = bytes.fromhex(signed.raw)
        body, witnesses, valid, auxiliary = cbor2.loads(raw)
        assert (valid, auxiliary) == (True, None)
        assert cardano_tx.tx_id(cbor2.dumps(body)) == signed.tx_hash
        fee = body[2]
        assert body[0] == [[bytes.fromhex(txid), 1]]  # the payment's output, nothing else
        assert body[1] == [
            [cardano_tx.address_bytes(MERCHANT), amount - amount // 100 - fee],
            [cardano_tx.address_bytes(PLATFORM), amount // 100],
        ]
        assert fee == cardano_tx.min_fee(len(raw), PARAMS) == signed.fees[row.id]
        assert body[3] == chain.tip.slot + 86_400  # TTL: a day after the tip
        [[vkey, signature]] = witnesses[0]
        Ed25519PublicKey.from_public_bytes(vkey).verify(signature, bytes.fromhex(signed.tx_hash))
        assert (
            hashlib.blake2b(vkey, digest_size=28).digest()
            == cardano_tx.address_bytes(address)[1:29]
        )
        assert await sender.sign((sweep_input(row),), PLATFORM) == signed  # the same bytes

        chain.expect_submit(signed.tx_hash, [(txid, 1)])
        h.gw.senders = {**h.gw.senders, "live": {"ADA": sender}}
        sweep = h.periodic("sweep:ADA")
        await sweep.run()  # signed, claimed, submitted; Koios knows it in no block yet
        async with h.gw.sessions() as session:
            [stored] = (await session.execute(select(models.sweeps))).all()
        assert (stored.status, stored.tx_hash, stored.raw_tx) == (
            "broadcast",
            signed.tx_hash,
            signed.raw,
        )
        assert await sender.confirmations(signed.tx_hash) is None
        await sender.broadcast(signed.raw)  # again: its inputs are spent, so it was sent

        chain.mine()
        assert await sender.confirmations(signed.tx_hash) == 1
        chain.mine()
        await sweep.run()
        assert (await fetch(h, payment["id"]))["status"] == "forwarding"
        chain.mine()
        await sweep.run()
        forwarded = await fetch(h, payment["id"])
        assert (forwarded["status"], forwarded["forward_tx_hash"]) == ("forwarded", signed.tx_hash)
    finally:
        await sender.aclose()

    await h.run_jobs()
    assert await announced(h, webhook_sink, payment["id"]) == [
        "payment.created",
        "payment.confirming",
        "payment.confirmed",
        "payment.forwarded",
        "payment.completed",
    ]
    assert all(signed_by(secret, r) for r in webhook_sink.received)


async def test_a_small_payments_commission_waits_for_a_batch_that_carries_it(
    live: tuple[Harness, str, config.ChainConfig],
    koios: tuple[ReplayServer, KoiosChain],
) -> None:
    h, _, ada = live
    _, chain = koios
    scan = h.periodic("scan:ADA")
    await scan.run()
    payments = [await h.create_live_payment("ADA", amount="30.00") for _ in range(4)]
    chain.mine(
        *[[Output(p["payment_address"], int(p["crypto_amount_base_units"]))] for p in payments]
    )
    chain.mine()
    chain.mine()
    await scan.run()
    await h.run_jobs()
    rows = [await payment_row(h, p["id"]) for p in payments]
    assert [r.status for r in rows] == ["forwarding"] * 4
    sender: CardanoSender = open_cardano_sender(
        ada, h.gw.sessions, h.gw.custody.root, platform_address=PLATFORM
    )
    try:
        # One payment's 1 % (about 0.31 ADA) is below the smallest output: not sent alone.
        with pytest.raises(NotSweepable, match="waits for more payments"):
            await sender.sign((sweep_input(rows[0]),), PLATFORM)
        # Four together carry about 1.22 ADA: one transaction, one platform output.
        signed = await sender.sign(tuple(sweep_input(r) for r in rows), PLATFORM)
        body = cbor2.loads(bytes.fromhex(signed.raw))[0]
        commission = sum(r.commission_amount for r in rows)
        assert commission >= cardano_tx.min_output_lovelace(cardano_tx.address_bytes(PLATFORM))
        assert len(body[0]) == 4
        merchant = sum(int(p["crypto_amount_base_units"]) for p in payments) - commission - body[2]
        assert body[1] == [
            [cardano_tx.address_bytes(MERCHANT), merchant],  # one merchant: one output
            [cardano_tx.address_bytes(PLATFORM), commission],
        ]
        assert sum(signed.fees.values()) == body[2]
    finally:
        await sender.aclose()


class RecordingSender(CardanoSender):
    """The sender the sweeper uses, keeping the bytes of each broadcast it is asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def broadcast(self, raw: str) -> None:
        self.sent.append(raw)
        await super().broadcast(raw)


async def test_a_sweep_lost_past_its_ttl_is_signed_again_and_the_new_bytes_sent_once(
    live: tuple[Harness, str, config.ChainConfig],
    koios: tuple[ReplayServer, KoiosChain],
) -> None:
    h, _, ada = live
    _, chain = koios
    ttl = 600  # slots: 30 of the test chain's blocks
    scan = h.periodic("scan:ADA")
    await scan.run()
    payment = await h.create_live_payment("ADA", amount="150.00")
    [txid] = chain.mine(
        [Output(payment["payment_address"], int(payment["crypto_amount_base_units"]))]
    )
    chain.mine()
    chain.mine()
    await scan.run()
    await h.run_jobs()
    row = await payment_row(h, payment["id"])
    assert row.status == "forwarding"
    client = KoiosClient("ADA", ada.rpc_urls, timeout_seconds=5, round_pause_seconds=0)
    sender = RecordingSender(client, h.gw.sessions, h.gw.custody.root, ttl_slots=ttl)
    try:
        lost = await sender.sign((sweep_input(row),), PLATFORM)
        # The node accepts it, and loses it (a restart empties its mempool): it never lands.
        chain.expect_submit(lost.tx_hash, [(txid, 0)], raw=lost.raw, lands=False)
        h.gw.senders = {**h.gw.senders, "live": {"ADA": sender}}
        sweep = h.periodic("sweep:ADA")
        await sweep.run()  # signed, claimed, submitted
        [stored] = await sweep_rows(h)
        assert (stored.status, stored.tx_hash) == ("broadcast", lost.tx_hash)
        chain.mine()
        await sweep.run()  # in no block: the same bytes again, still valid
        assert set(sender.sent) == {lost.raw}
        assert await sender.expired(lost.tx_hash, lost.raw) is False  # before its TTL

        # Then an outage outlives its TTL: the node refuses those bytes for good.
        chain.mine(gap=ttl + DEFAULT_EXPIRY_MARGIN_SLOTS)
        assert (
            cbor2.loads(bytes.fromhex(lost.raw))[0][3] + DEFAULT_EXPIRY_MARGIN_SLOTS
            <= chain.tip.slot
        )
        # What the sweeper will sign: the same output, a TTL counted from the new tip.
        fresh = await sender.sign((sweep_input(row),), PLATFORM)
        assert fresh.tx_hash != lost.tx_hash
        assert cbor2.loads(bytes.fromhex(fresh.raw))[0][0] == [[bytes.fromhex(txid), 0]]
        chain.expect_submit(fresh.tx_hash, [(txid, 0)], raw=fresh.raw)
        sender.sent.clear()
        await sweep.run()  # refused, expired: signed again, swapped in, sent
        assert sender.sent == [lost.raw, fresh.raw]
        [again] = await sweep_rows(h)
        assert (again.id, again.status, again.tx_hash, again.raw_tx) == (
            stored.id,
            "broadcast",
            fresh.tx_hash,
            fresh.raw,
        )
        for _ in range(DEPTH):
            chain.mine()
        await sweep.run()
        done = await fetch(h, payment["id"])
        assert (done["status"], done["forward_tx_hash"]) == ("forwarded", fresh.tx_hash)
        assert sender.sent == [lost.raw, fresh.raw]  # the new bytes once, nothing signed again
        assert lost.tx_hash not in chain.mined_submitted
        assert (await payment_row(h, payment["id"])).network_fee == fresh.fees[row.id]
    finally:
        await sender.aclose()


async def sweep_rows(h: Harness) -> list[Any]:
    async with h.gw.sessions() as session:
        return list((await session.execute(select(models.sweeps))).all())
