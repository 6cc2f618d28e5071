"""Live ETH sweeps on a real anvil, end to end: a payment made through the public API with a
``cp_live_`` key and paid with a real transfer is confirmed by the scanner and forwarded by the
worker's jobs and sweep rounds: the merchant's payout address gets exactly amount - commission -
network fee, the platform exactly the commission, the payment address ends at 0.

And the crash test: a real worker process killed with SIGKILL during a sweep (before the
broadcast, between its two transactions, after the broadcast before the state is saved), then
a fresh worker process, leave exactly one sweep on chain."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import keel
from keel.coinpay import models, payments
from keel.coinpay.chains import config, senders, sources
from keel.coinpay.chains.base import ChainSource
from keel.coinpay.chains.evm_sender import TRANSFER_GAS
from keel.coinpay.money import format_units
from keel.coinpay.wallets import Family
from keel.coinpay.wallets.address_validation import eip55
from keel.core.crypto import new_key
from tests.chains_nodes import Anvil, ChainNodes
from tests.coinpay.chains.test_nodes_live_flow import mined, signed_by
from tests.coinpay.conftest import Harness, WebhookSink, make_harness, payout_address

DEPTH = 2
SRC = str(Path(keel.__file__).resolve().parents[1])  # the tree under test, for the subprocess
WORKER = Path(__file__).with_name("sweep_worker.py")
FROZEN_WITHIN_SECONDS = 60.0
FORWARDED_WITHIN_SECONDS = 60.0


def fresh_address() -> str:
    return eip55("0x" + secrets.token_hex(20))


def balance(anvil: Anvil, address: str) -> int:
    return int(anvil.rpc("eth_getBalance", address, "latest"), 16)


def sent_from(anvil: Anvil, address: str) -> int:
    """Transactions ``address`` has had mined (its nonce)."""
    return int(anvil.rpc("eth_getTransactionCount", address, "latest"), 16)


@pytest.fixture
def anvil(chain_nodes: ChainNodes) -> Anvil:
    """An anvil of this test's own: the harness derives the same payment addresses in every
    test (one seed, a fresh database), and their balances and nonces must start at 0."""
    return chain_nodes.anvil()


@pytest.fixture
async def source(anvil: Anvil) -> AsyncIterator[ChainSource]:
    evm = sources.open_source(
        config.load({"KEEL_COINPAY_ETH_RPC_URLS": anvil.url}).chain("ETH"), timeout_seconds=5
    )
    try:
        yield evm
    finally:
        await evm.aclose()


async def confirmed_live_payment(h: Harness, anvil: Anvil, depth: int) -> dict[str, Any]:
    """A live ETH payment created through the API, paid in full on anvil and confirmed by the
    worker's scan task at the policy's depth; its forward job is queued, not run."""
    scan = h.periodic("scan:ETH")
    await scan.run()  # the scanner starts at the node's tip
    payment = await h.create_live_payment("ETH")
    amount = int(payment["crypto_amount_base_units"])
    await mined(anvil, anvil.send_eth(payment["payment_address"], amount))
    await scan.run()
    if depth > 1:
        anvil.mine(depth - 1)
        await scan.run()
    seen = await h.live_payment(payment["id"])
    assert (seen["status"], seen["amount_received"]) == ("confirmed", payment["crypto_amount"])
    assert balance(anvil, payment["payment_address"]) == amount
    return payment


async def stored(h: Harness, payment_id: str) -> payments.Payment:
    async with h.gw.sessions() as session:
        return await payments.store.load(session, payment_id)


async def sweep_rows(h: Harness) -> list[Any]:
    async with h.gw.sessions() as session:
        return list((await session.execute(select(models.sweeps))).all())


async def sent(anvil: Anvil, address: str, count: int) -> None:
    """Until ``count`` transactions from ``address`` are in the node's latest block (anvil
    answers a send a moment before it serves the block that holds it)."""
    for _ in range(500):
        if sent_from(anvil, address) >= count:
            break
        await asyncio.sleep(0.01)
    assert sent_from(anvil, address) == count


async def assert_swept_once(
    anvil: Anvil, payment: payments.Payment, platform: str, merchant_before: int
) -> None:
    """The chain saw one sweep of ``payment``: two transactions from its address, the exact
    amounts at both payees, nothing left behind."""
    assert payment.status == "forwarded"
    assert payment.forward_tx_hash is not None
    await mined(anvil, payment.forward_tx_hash)
    assert payment.network_fee is not None
    commission = payment.commission_amount
    assert commission == payment.received_amount // 100  # 1 %, the free plan
    merchant_tx = anvil.rpc("eth_getTransactionByHash", payment.forward_tx_hash)
    assert merchant_tx["from"].lower() == payment.payment_address.lower()
    assert payment.network_fee == 2 * TRANSFER_GAS * int(merchant_tx["gasPrice"], 16)
    assert sent_from(anvil, payment.payment_address) == 2  # commission, merchant: no more
    assert balance(anvil, payment.payment_address) == 0
    assert balance(anvil, platform) == commission
    assert (
        balance(anvil, payout_address("ETH")) - merchant_before
        == payment.received_amount - commission - payment.network_fee
    )


async def test_a_confirmed_live_payment_is_swept_exactly_and_announced(
    anvil: Anvil, db_url: str, source: ChainSource, webhook_sink: WebhookSink
) -> None:
    platform = fresh_address()
    env = {"KEEL_COINPAY_ETH_RPC_URLS": anvil.url, "KEEL_COINPAY_ETH_CHAIN_ID": "31337"}
    async for h in make_harness(
        db_url,
        None,
        sources=[source],
        confirmations={"ETH": DEPTH},
        platform_wallets={"ETH": platform},
    ):
        secret = await h.add_live_endpoint(webhook_sink.url)
        live = senders.open_senders(config.load(env), h.gw.custody.root)
        h.gw.senders = {**h.gw.senders, "live": live}
        try:
            payment = await confirmed_live_payment(h, anvil, DEPTH)
            merchant_before = balance(anvil, payout_address("ETH"))
            await h.run_jobs()  # forward: the split written, the sweep signed, stored, sent
            sweeping = await stored(h, payment["id"])
            assert sweeping.status == "forwarding"
            assert sweeping.sweep_id is not None
            await sent(anvil, payment["payment_address"], 2)  # anvil mines each at once
            assert (await h.live_payment(payment["id"]))["forward_tx_hash"] is None  # 1 deep of 2
            anvil.mine(DEPTH - 1)
            await h.periodic("sweep:ETH").run()
            done = await stored(h, payment["id"])
            await assert_swept_once(anvil, done, platform, merchant_before)
            shown = await h.live_payment(payment["id"])
            assert (shown["status"], shown["forward_tx_hash"]) == (
                "forwarded",
                done.forward_tx_hash,
            )
            await h.run_jobs()
        finally:
            for sender in live.values():
                await sender.aclose()
    [forwarded] = webhook_sink.events("payment.forwarded")
    assert forwarded["data"]["payment_id"] == payment["id"]
    assert forwarded["data"]["merchant_tx_hash"] == done.forward_tx_hash
    # The split as the merchant sees it, in the API and the webhook: exact decimal strings.
    assert done.commission_amount is not None
    assert done.network_fee is not None
    split = {
        "fee_amount": format_units(done.commission_amount, 18),
        "network_fee": format_units(done.network_fee, 18),
        "merchant_amount": format_units(
            done.received_amount - done.commission_amount - done.network_fee, 18
        ),
    }
    assert {k: shown[k] for k in split} == split
    assert {k: forwarded["data"][k] for k in split} == split
    assert all(signed_by(secret, r) for r in webhook_sink.received)


def token_balance(anvil: Anvil, token: str, address: str) -> int:
    data = "0x70a08231" + address[2:].lower().rjust(64, "0")
    return int(anvil.rpc("eth_call", {"to": token, "data": data}, "latest"), 16)


async def test_a_token_payment_is_swept_with_gas_from_the_fee_wallet(
    anvil: Anvil, db_url: str, webhook_sink: WebhookSink
) -> None:
    """An ERC-20 payment's address holds no ether: the fee wallet sends it the gas first, then
    the merchant gets exactly amount - commission of the token and the platform the commission,
    and the fee wallet alone paid the network."""
    token = anvil.deploy_token()
    platform = fresh_address()
    env = {
        "KEEL_COINPAY_ETH_RPC_URLS": anvil.url,
        "KEEL_COINPAY_ETH_CHAIN_ID": "31337",
        "KEEL_COINPAY_USDC_ETH_CONTRACT": token,
    }
    evm = sources.open_source(config.load(env).chain("ETH"), timeout_seconds=5)
    async for h in make_harness(
        db_url,
        None,
        sources=[evm],
        confirmations={"ETH": DEPTH},
        platform_wallets={"ETH": platform},
    ):
        await h.add_live_endpoint(webhook_sink.url)
        live = senders.open_senders(config.load(env), h.gw.custody.root)
        h.gw.senders = {**h.gw.senders, "live": live}
        fee_wallet, _ = (await h.gw.custody.root()).fee_wallet(Family.EVM)
        try:
            scan, sweep = h.periodic("scan:ETH"), h.periodic("sweep:ETH")
            await scan.run()
            payment = await h.create_live_payment("USDC_ETH")
            address, amount = payment["payment_address"], int(payment["crypto_amount_base_units"])
            await mined(anvil, anvil.send_token(token, address, amount))
            anvil.mine(DEPTH - 1)
            await scan.run()
            assert (await h.live_payment(payment["id"]))["status"] == "confirmed"

            # No fee wallet money: the sweep waits, refused, and nothing moves.
            await h.run_jobs()
            await sweep.run()
            assert (await stored(h, payment["id"])).sweep_id is None
            assert balance(anvil, address) == 0

            await mined(anvil, anvil.send_eth(fee_wallet, 10**18))
            fee_before = balance(anvil, fee_wallet)
            await sweep.run()  # the gas is sent: the sweep waits for it
            assert (await stored(h, payment["id"])).sweep_id is None
            gas_sent = balance(anvil, address)
            assert gas_sent > 0
            await sweep.run()  # the gas is there: signed, stored, sent (anvil mines at once)
            signing = await stored(h, payment["id"])
            assert signing.sweep_id is not None
            await sent(anvil, address, 2)
            anvil.mine(DEPTH - 1)
            await sweep.run()
            done = await stored(h, payment["id"])
            assert done.status == "forwarded"
            await mined(anvil, str(done.forward_tx_hash))
            await h.run_jobs()
        finally:
            for sender in live.values():
                await sender.aclose()
            await evm.aclose()
    commission = amount // 100
    assert (done.commission_amount, done.network_fee) == (commission, 0)
    assert token_balance(anvil, token, payout_address("ETH")) == amount - commission
    assert token_balance(anvil, token, platform) == commission
    assert token_balance(anvil, token, address) == 0
    # The fee wallet paid the top-up and its own transfer fee; what the two calls did not
    # burn of the top-up is all that is left at the payment address.
    receipts = [anvil.receipt(tx) for tx in anvil_txs_from(anvil, address)]
    burnt = sum(int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16) for r in receipts)
    assert balance(anvil, address) == gas_sent - burnt
    assert fee_before - balance(anvil, fee_wallet) > gas_sent
    [forwarded] = webhook_sink.events("payment.forwarded")
    assert forwarded["data"]["merchant_tx_hash"] == done.forward_tx_hash
    assert (forwarded["data"]["merchant_amount"], forwarded["data"]["network_fee"]) == (
        format_units(amount - commission, 6),
        "0",
    )


def anvil_txs_from(anvil: Anvil, address: str) -> list[str]:
    """The hashes of the transactions ``address`` sent, scanning the node's blocks."""
    found = []
    for number in range(anvil.height() + 1):
        block = anvil.rpc("eth_getBlockByNumber", hex(number), True)
        found += [tx["hash"] for tx in block["transactions"] if tx["from"] == address.lower()]
    return found


# The kill test ----------------------------------------------------------------------------------


def start_worker(point: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, str(WORKER), point], env=env, stdout=subprocess.PIPE, stderr=err
        )


async def frozen_at(worker: subprocess.Popen[bytes], point: str, log: Path) -> str:
    """Waits for the worker's ``frozen <point> <tx hash>`` line; returns the hash."""
    assert worker.stdout is not None
    try:
        async with asyncio.timeout(FROZEN_WITHIN_SECONDS):
            line = await asyncio.to_thread(worker.stdout.readline)
    except TimeoutError:
        worker.kill()  # ends the blocked readline too
        pytest.fail(
            f"the worker did not reach {point!r} in {FROZEN_WITHIN_SECONDS:g} s:\n{tail(log)}"
        )
    words = line.decode().split()
    assert words[:2] == ["frozen", point], f"{line!r}\n{tail(log)}"
    return words[2]


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def sigkill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(10) == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize(("point", "sent_at_kill"), [("before", 0), ("between", 1), ("after", 2)])
async def test_a_worker_killed_during_a_sweep_leaves_exactly_one_sweep_on_chain(
    anvil: Anvil, db_url: str, source: ChainSource, tmp_path: Path, point: str, sent_at_kill: int
) -> None:
    platform, master_key = fresh_address(), new_key()
    async for h in make_harness(
        db_url,
        None,
        sources=[source],
        confirmations={"ETH": 1},
        platform_wallets={"ETH": platform},
        master_key=master_key,
    ):
        payment = await confirmed_live_payment(h, anvil, 1)
        address = payment["payment_address"]
        merchant_before = balance(anvil, payout_address("ETH"))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
            "KEEL_DATA_DIR": str(tmp_path),
            "KEEL_COINPAY_DATABASE_URL": db_url,
            "KEEL_COINPAY_MASTER_KEY": master_key,
            "KEEL_COINPAY_PLATFORM_WALLETS": f'{{"ETH": "{platform}"}}',
            "KEEL_COINPAY_ETH_RPC_URLS": anvil.url,
            "KEEL_COINPAY_ETH_CHAIN_ID": "31337",
            "KEEL_COINPAY_ETH_CONFIRMATIONS": "1",
            "KEEL_COINPAY_WORKER_POLL_SECONDS": "0.2",
            "KEEL_COINPAY_WATCH_INTERVAL_SECONDS": "0.2",
        }
        log = tmp_path / "worker.log"
        first = start_worker(point, env, log)
        try:
            frozen_hash = await frozen_at(first, point, log)
            await sent(anvil, address, sent_at_kill)
            sigkill(first)
        finally:
            if first.poll() is None:
                first.kill()
        [sweep] = await sweep_rows(h)
        assert (sweep.status, sweep.tx_hash) == ("signed", frozen_hash)  # stored, not marked sent
        assert (await stored(h, payment["id"])).sweep_id == sweep.id

        second = start_worker("never", env, log)
        try:
            deadline = time.monotonic() + FORWARDED_WITHIN_SECONDS
            while (await stored(h, payment["id"])).status != "forwarded":
                assert second.poll() is None, tail(log)
                assert time.monotonic() < deadline, tail(log)
                await asyncio.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(15)
            except subprocess.TimeoutExpired:
                second.kill()
        done = await stored(h, payment["id"])
        assert done.forward_tx_hash == frozen_hash  # the very bytes the first worker signed
        await assert_swept_once(anvil, done, platform, merchant_before)
        [sweep] = await sweep_rows(h)
        assert (sweep.status, sweep.id) == ("confirmed", done.sweep_id)
