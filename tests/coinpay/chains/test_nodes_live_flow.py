"""Live payments on a real EVM node (anvil), end to end through the public API with a
``cp_live_`` key: a real ETH transfer and a real ERC-20 transfer (a token this test deploys) to
the payment's address, seen by the worker's scan task, confirming then confirmed at the
policy's depth, with signed webhooks; a reorg (snapshot and revert) reverses a payment."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator
from typing import Any

import pytest

from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import ChainSource
from tests.chains_nodes import Anvil
from tests.coinpay.chains.conftest import OPEN, breaker_state, provider_errors
from tests.coinpay.conftest import Harness, WebhookSink, make_harness

DEPTH = 3


@pytest.fixture(scope="module")
def token(anvil: Anvil) -> str:
    return anvil.deploy_token()


@pytest.fixture
async def source(anvil: Anvil, token: str) -> AsyncIterator[ChainSource]:
    env = {"KEEL_COINPAY_ETH_RPC_URLS": anvil.url, "KEEL_COINPAY_USDC_ETH_CONTRACT": token}
    evm = sources.open_source(config.load(env).chain("ETH"), timeout_seconds=5)
    try:
        yield evm
    finally:
        await evm.aclose()


@pytest.fixture
async def live(
    db_url: str, source: ChainSource, webhook_sink: WebhookSink
) -> AsyncIterator[tuple[Harness, str]]:
    async for h in make_harness(db_url, None, sources=[source], confirmations={"ETH": DEPTH}):
        yield h, await h.add_live_endpoint(webhook_sink.url)


async def mined(anvil: Anvil, tx: str) -> None:
    """Until the node serves ``tx``'s block as its latest (anvil answers the send a moment
    before; a scan then would simply find it at the next one)."""
    for _ in range(200):
        receipt = anvil.receipt(tx)
        if receipt and anvil.height() >= int(receipt["blockNumber"], 16):
            latest = anvil.rpc("eth_getBlockByNumber", "latest", False)
            if int(latest["number"], 16) >= int(receipt["blockNumber"], 16):
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{tx} not mined")


def signed_by(secret: str, received: Any) -> bool:
    """The X-CoinPay-Signature header (t=…,v1=HMAC-SHA256(secret, "t.body")) holds."""
    header = received.headers["X-CoinPay-Signature"]
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + received.body, "sha256")
    return hmac.compare_digest(expected.hexdigest(), fields["v1"])


@pytest.mark.parametrize("coin", ["ETH", "USDC_ETH"])
async def test_a_real_transfer_confirms_a_live_payment_and_is_announced(
    anvil: Anvil,
    token: str,
    live: tuple[Harness, str],
    webhook_sink: WebhookSink,
    coin: str,
) -> None:
    h, secret = live
    scan = h.periodic("scan:ETH")
    await scan.run()  # the scanner starts at the node's tip
    payment = await h.create_live_payment(coin)
    amount = int(payment["crypto_amount_base_units"])
    if coin == "ETH":
        tx = anvil.send_eth(payment["payment_address"], amount)
    else:
        tx = anvil.send_token(token, payment["payment_address"], amount)
    await mined(anvil, tx)
    await scan.run()
    seen = await h.live_payment(payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 1, tx)
    anvil.mine(DEPTH - 2)
    await scan.run()
    assert (await h.live_payment(payment["id"]))["status"] == "confirming"
    anvil.mine(1)
    await scan.run()
    done = await h.live_payment(payment["id"])
    assert (done["status"], done["confirmations"], done["amount_received"]) == (
        "confirmed",
        DEPTH,
        payment["crypto_amount"],
    )
    await h.run_jobs()
    kinds = sorted(e["type"] for e in webhook_sink.events())
    assert kinds == ["payment.confirmed", "payment.confirming", "payment.created"]
    assert all(signed_by(secret, r) for r in webhook_sink.received)


async def test_a_reorg_on_the_node_reverses_a_confirming_payment(
    anvil: Anvil, live: tuple[Harness, str], webhook_sink: WebhookSink
) -> None:
    h, _ = live
    scan = h.periodic("scan:ETH")
    await scan.run()
    payment = await h.create_live_payment("ETH")
    snapshot = anvil.rpc("evm_snapshot")
    tx = anvil.send_eth(payment["payment_address"], int(payment["crypto_amount_base_units"]))
    await mined(anvil, tx)
    await scan.run()
    assert (await h.live_payment(payment["id"]))["status"] == "confirming"
    assert anvil.rpc("evm_revert", snapshot) is True
    anvil.mine(2)  # the other branch is longer: the node switches to it
    await scan.run()
    back = await h.live_payment(payment["id"])
    assert (back["status"], back["amount_received"]) == ("pending", "0")
    await h.run_jobs()
    [reversed_] = webhook_sink.events("payment.reversed")
    assert reversed_["data"]["payment_id"] == payment["id"]


class Proxy:
    """A TCP relay on 127.0.0.1 in front of a node: a provider that can be stopped mid-test."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.links:
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_detection_goes_on_through_the_second_provider_when_the_first_stops(
    anvil: Anvil, db_url: str
) -> None:
    proxy = Proxy(anvil.port)
    first = await proxy.start()
    env = {"KEEL_COINPAY_ETH_RPC_URLS": f"{first},{anvil.url}"}
    source = sources.open_source(config.load(env).chain("ETH"), timeout_seconds=2)
    try:
        async for h in make_harness(db_url, None, sources=[source], confirmations={"ETH": 2}):
            scan = h.periodic("scan:ETH")
            await scan.run()
            before = await h.create_live_payment("ETH")
            await mined(
                anvil,
                anvil.send_eth(before["payment_address"], int(before["crypto_amount_base_units"])),
            )
            await scan.run()
            assert (await h.live_payment(before["id"]))["status"] == "confirming"
            assert provider_errors("ETH", first, "transport") == 0  # all through the first

            await proxy.stop()
            anvil.mine(1)
            await scan.run()  # the first provider refuses: the second answers
            assert (await h.live_payment(before["id"]))["status"] == "confirmed"
            for _ in range(5):
                anvil.mine(1)
                await scan.run()
            assert provider_errors("ETH", first, "transport") > 0
            assert breaker_state("ETH", first) == OPEN
    finally:
        await source.aclose()
