"""A live payment on a scanned chain, through the public API and the worker's own scan task:
seen in a block, confirmed at the policy's depth, reversed by a reorg, with signed webhooks.
(The same flow on real nodes: test_nodes_*; here the node is scripted.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from keel.coinpay.app import create_app
from keel.coinpay.chains.base import BlockRef, Transfer
from keel.coinpay.errors import ChainUnavailable
from keel.coinpay.settings import CoinpaySettings
from keel.core.app import create_root_app
from keel.core.crypto import new_key
from tests.coinpay.chains.scripted import ScriptedChain
from tests.coinpay.conftest import Harness, WebhookSink, make_harness


@pytest.fixture
def chain() -> ScriptedChain:
    return ScriptedChain(chain="ETH")


@pytest.fixture
async def live(
    db_url: str, chain: ScriptedChain, webhook_sink: WebhookSink
) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, None, sources=[chain], confirmations={"ETH": 3}):
        await h.add_live_endpoint(webhook_sink.url)
        yield h


async def test_a_live_payment_is_seen_confirmed_and_announced(
    live: Harness, chain: ScriptedChain, webhook_sink: WebhookSink
) -> None:
    scan = live.periodic("scan:ETH")
    chain.mine()
    await scan.run()
    payment = await live.create_live_payment("ETH")
    paid = Transfer(
        "ETH", "0xpaid", 0, payment["payment_address"], int(payment["crypto_amount_base_units"])
    )
    chain.mine(paid)
    await scan.run()
    seen = await live.live_payment(payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 1, "0xpaid")
    chain.mine()
    chain.mine()
    await scan.run()
    done = await live.live_payment(payment["id"])
    assert (done["status"], done["confirmations"]) == ("confirmed", 3)
    await live.run_jobs()
    kinds = [e["type"] for e in webhook_sink.events()]
    # Delivered concurrently: in any order, each once.
    assert sorted(kinds) == ["payment.confirmed", "payment.confirming", "payment.created"]
    assert all(e["data"]["mode"] == "live" for e in webhook_sink.events() if "mode" in e["data"])


async def test_a_reorg_reverses_a_confirming_live_payment(
    live: Harness, chain: ScriptedChain, webhook_sink: WebhookSink
) -> None:
    scan = live.periodic("scan:ETH")
    chain.mine()
    await scan.run()
    payment = await live.create_live_payment("ETH")
    chain.mine(
        Transfer(
            "ETH", "0xgone", 0, payment["payment_address"], int(payment["crypto_amount_base_units"])
        )
    )
    await scan.run()
    assert (await live.live_payment(payment["id"]))["status"] == "confirming"
    chain.reorg(1)
    chain.mine()
    chain.mine()
    await scan.run()
    back = await live.live_payment(payment["id"])
    assert (back["status"], back["amount_received"]) == ("pending", "0")
    await live.run_jobs()
    [reversed_] = webhook_sink.events("payment.reversed")
    assert reversed_["data"]["status"] == "pending"


async def test_an_underpaid_payment_topped_up_settles_and_a_late_one_is_flagged(
    live: Harness, chain: ScriptedChain
) -> None:
    scan = live.periodic("scan:ETH")
    chain.mine()
    await scan.run()
    payment = await live.create_live_payment("ETH")
    expected = int(payment["crypto_amount_base_units"])
    address = payment["payment_address"]
    chain.mine(Transfer("ETH", "0xhalf", 0, address, expected // 2))
    await scan.run()
    partial = await live.live_payment(payment["id"])
    assert (partial["status"], partial["paid_partial"]) == ("pending", True)
    chain.mine(Transfer("ETH", "0xrest", 0, address, expected - expected // 2))
    for _ in range(3):
        chain.mine()
    await scan.run()
    assert (await live.live_payment(payment["id"]))["status"] == "confirmed"

    late = await live.create_live_payment("ETH")
    live.clock.advance(timedelta(minutes=live.gw.settings.expiry_minutes + 1))
    await live.periodic("expire").run()
    assert (await live.live_payment(late["id"]))["status"] == "expired"
    chain.mine(
        Transfer("ETH", "0xlate", 0, late["payment_address"], int(late["crypto_amount_base_units"]))
    )
    await scan.run()
    flagged = await live.live_payment(late["id"])
    assert (flagged["status"], flagged["paid_late"]) == ("confirming", True)


class Down(ScriptedChain):
    """The chain's nodes, unreachable."""

    down: bool = False

    async def tip(self) -> BlockRef:
        if self.down:
            raise ChainUnavailable("ETH: no provider answered (connection refused)")
        return await super().tip()


async def test_readyz_shows_each_chains_scan_and_a_chain_outage_without_going_unready(
    tmp_path: Path,
) -> None:
    chain = Down(chain="ETH")
    chain.mine()
    product = create_app(
        CoinpaySettings(master_key=new_key(), run_workers=False),
        data_dir=str(tmp_path),
        sources=[chain],
    )
    root = create_root_app([product])
    transport = httpx.ASGITransport(app=root)
    async with product.lifespan(), httpx.AsyncClient(transport=transport, base_url="http://k") as c:
        before = (await c.get("/readyz")).json()
        assert before["detail"]["coinpay"]["chains"]["ETH"]["status"] == "not started"
        gw = product.app.state.gateway
        await gw.scanners["ETH"].step()
        healthy = (await c.get("/readyz")).json()
        assert healthy["detail"]["coinpay"]["chains"]["ETH"] | {"cursor_age_seconds": 0} == {
            "status": "ok",
            "height": 1,
            "lag_blocks": 0,
            "cursor_age_seconds": 0,
            "error": None,
        }
        chain.down = True
        with pytest.raises(ChainUnavailable):
            await gw.scanners["ETH"].step()
        outage = await c.get("/readyz")
        assert outage.status_code == 200  # coinpay still serves: one chain is degraded
        eth = outage.json()["detail"]["coinpay"]["chains"]["ETH"]
        assert eth["status"] == "failing"
        assert "no provider answered" in eth["error"]
