"""A live BTC payment followed over Esplora by the worker's own scan task, on a recorded regtest
chain (recordings/esplora/chain.json): seen in the mempool, mined, then a reorg replaces the
block above it, and the payment reaches its policy's depth on the new branch."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from keel.coinpay.chains.esplora import EsploraSource
from keel.coinpay.chains.rest import RestClient
from keel.coinpay.wallets import Network
from tests.coinpay.conftest import Harness, WebhookSink, make_harness
from tests.replay import ReplayServer, checked, load_recording, serve_recordings

RECORDINGS = Path(__file__).parent / "recordings"
PAYMENT = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


@pytest.fixture
async def live(
    db_url: str, replay: ReplayServer, webhook_sink: WebhookSink
) -> AsyncIterator[Harness]:
    rest = RestClient("BTC", [replay.url("esplora", "chain")], round_pause_seconds=0)
    source = EsploraSource("BTC", rest, network=Network.REGTEST)
    try:
        async for h in make_harness(
            db_url,
            None,
            sources=[source],
            networks={"BTC": Network.REGTEST},
            confirmations={"BTC": 3},
        ):
            await h.add_live_endpoint(webhook_sink.url)
            yield h
    finally:
        await source.aclose()


def heights() -> dict[str, int]:
    """Each recorded block's height, by hash."""
    return {
        e["response"]["body"]["id"]: e["response"]["body"]["height"]
        for e in load_recording(RECORDINGS, "esplora", "chain")
        if isinstance(e["response"].get("body"), dict)
    }


async def test_a_payment_seen_mined_and_kept_through_a_reorg_is_confirmed(
    live: Harness, webhook_sink: WebhookSink
) -> None:
    note = json.loads((RECORDINGS / "esplora" / "chain.json").read_text())["note"]
    txid, in_block = note.split()[1], note.split()[3].rstrip(";")
    replaced = note.split("; ")[1].split()[0]
    scan = live.periodic("scan:BTC")
    scanner = live.gw.scanners["BTC"]
    await scan.run()  # starts at the tip, A
    payment = await live.create_live_payment("BTC")
    assert payment["payment_address"] == PAYMENT
    assert payment["crypto_amount_base_units"] == "25707"

    await scan.run()  # in the mempool
    seen = await live.live_payment(payment["id"])
    assert (seen["status"], seen["confirmations"], seen["tx_hash"]) == ("confirming", 0, txid)

    await scan.run()  # B (the payment) and C1 mined
    assert scanner.last_report is not None
    assert scanner.last_report.scanned == (heights()[in_block], heights()[replaced])
    mined = await live.live_payment(payment["id"])
    assert (mined["status"], mined["confirmations"]) == ("confirming", 2)

    await scan.run()  # C1 replaced by C2, D2 on top: the payment's block B stays
    report = scanner.last_report
    assert report.dropped == (heights()[replaced],)
    assert report.scanned == (heights()[replaced], heights()[replaced] + 1)
    done = await live.live_payment(payment["id"])
    assert (done["status"], done["confirmations"], done["amount_received"]) == (
        "confirmed",
        3,
        payment["crypto_amount"],
    )
    await live.run_jobs()
    kinds = sorted(e["type"] for e in webhook_sink.events())
    assert kinds == ["payment.confirmed", "payment.confirming", "payment.created"]
