"""UtxoSource against a real litecoind in regtest: an output seen in the mempool then in its
block with its exact amount, a reorg (invalidateblock) seen in the hashes, provider failover
(a closed port, and a node stopped mid-test); both address layouts of Bitcoin Core."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import simplejson

from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import Transfer
from keel.coinpay.chains.rpc import RpcClient
from keel.coinpay.chains.utxo import TRANSIENT_CODES, UtxoSource
from keel.coinpay.errors import BlockNotFound, InvalidChainConfig
from keel.coinpay.wallets import Network
from tests.chains_nodes import ChainNodes, Litecoind, closed_port_url
from tests.coinpay.chains.conftest import OPEN, breaker_state, provider_errors

FAILURE_KINDS = ("connect", "transport", "timeout", "http_5xx", "rpc_server")


def utxo_source(*urls: str, **kw: Any) -> UtxoSource:
    rpc = RpcClient("LTC", urls, timeout_seconds=5, transient_codes=TRANSIENT_CODES)
    return UtxoSource("LTC", rpc, **kw)


@pytest.fixture
async def source(litecoind: Litecoind) -> AsyncIterator[UtxoSource]:
    utxo = utxo_source(litecoind.url)
    try:
        yield utxo
    finally:
        await utxo.aclose()


def paid_to(transfers: tuple[Transfer, ...], address: str) -> list[tuple[str, int]]:
    return [(t.tx_hash, t.amount) for t in transfers if t.address == address]


async def test_an_output_shows_in_pending_then_in_its_block(
    litecoind: Litecoind, source: UtxoSource
) -> None:
    payee = litecoind.new_address()
    txid = litecoind.send(payee, Decimal("1.23456789"))

    assert paid_to((await source.pending()).transfers, payee) == [(txid, 123_456_789)]
    [block_hash] = litecoind.mine(1)
    assert paid_to((await source.pending()).transfers, payee) == []  # mined: gone from the mempool

    tip = await source.tip()
    block = await source.block(tip.height)
    assert tip.hash == block.ref.hash == block_hash
    [transfer] = [t for t in block.transfers if t.address == payee]
    assert transfer == Transfer("LTC", txid, transfer.position, payee, 123_456_789)
    raw = litecoind.rpc("getrawtransaction", txid, True, block_hash)
    assert raw["vout"][transfer.position]["value"] == Decimal("1.23456789")
    assert (await source.block(tip.height - 1)).ref.hash == block.ref.parent_hash


async def test_coinbase_outputs_are_not_transfers(litecoind: Litecoind, source: UtxoSource) -> None:
    miner = litecoind.new_address()
    litecoind.mine_empty(miner)
    block = await source.block((await source.tip()).height)
    assert block.transfers == ()


async def test_a_block_above_the_tip_is_not_found_yet(source: UtxoSource) -> None:
    tip = await source.tip()
    with pytest.raises(BlockNotFound):
        await source.block(tip.height + 1)


async def test_a_reorg_shows_as_a_new_hash_and_returns_the_payment_to_the_mempool(
    litecoind: Litecoind, source: UtxoSource
) -> None:
    payee = litecoind.new_address()
    txid = litecoind.send(payee, Decimal("0.5"))
    litecoind.mine(1)
    height = (await source.tip()).height
    before = await source.block(height)
    assert paid_to(before.transfers, payee) == [(txid, 50_000_000)]

    litecoind.rpc("invalidateblock", before.ref.hash)
    assert (await source.tip()).height == height - 1
    assert paid_to((await source.pending()).transfers, payee) == [(txid, 50_000_000)]
    litecoind.mine_empty()  # the replacement leaves the payment out
    litecoind.mine_empty()

    after = await source.block(height)
    child = await source.block(height + 1)
    assert after.ref.hash != before.ref.hash
    assert after.ref.parent_hash == before.ref.parent_hash
    assert child.ref.parent_hash == after.ref.hash
    assert paid_to(after.transfers + child.transfers, payee) == []
    assert (await source.tip()).hash == child.ref.hash


async def test_pending_fetches_a_bounded_number_of_new_transactions_per_poll(
    litecoind: Litecoind,
) -> None:
    payees = [litecoind.new_address() for _ in range(3)]
    txids = {litecoind.send(payee, Decimal("0.01")) for payee in payees}
    utxo = utxo_source(litecoind.url, max_fetch=1)
    try:
        counts = []
        for _ in range(len(litecoind.rpc("getrawmempool"))):
            counts.append(len({t.tx_hash for t in (await utxo.pending()).transfers}))
        seen = {t.tx_hash for t in (await utxo.pending()).transfers if t.address in payees}
    finally:
        await utxo.aclose()
        litecoind.mine(1)
    assert counts[0] <= 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(counts))
    assert seen == txids


async def test_calls_go_on_through_the_second_provider_when_the_first_refuses(
    litecoind: Litecoind,
) -> None:
    dead = closed_port_url()
    utxo = utxo_source(dead, litecoind.url)
    try:
        for _ in range(2):  # two calls each: the breaker opens after 4 failures
            assert (await utxo.tip()).hash == litecoind.rpc("getbestblockhash")
    finally:
        await utxo.aclose()
    assert breaker_state("LTC", dead) == OPEN


async def test_detection_goes_on_through_the_second_node_when_the_first_stops(
    chain_nodes: ChainNodes,
) -> None:
    leader = chain_nodes.litecoind(listen=True)
    follower = chain_nodes.litecoind_following(leader)
    utxo = utxo_source(follower.url, leader.url)
    try:
        assert (await utxo.tip()).hash == leader.rpc("getbestblockhash")
        assert provider_errors("LTC", follower.url, "connect") == 0

        follower.stop()
        payee = leader.new_address()
        txid = leader.send(payee, Decimal("2.5"))
        assert paid_to((await utxo.pending()).transfers, payee) == [(txid, 250_000_000)]
        [block_hash] = leader.mine(1)
        tip = await utxo.tip()
        block = await utxo.block(tip.height)
    finally:
        await utxo.aclose()
    assert tip.hash == block_hash
    assert paid_to(block.transfers, payee) == [(txid, 250_000_000)]
    assert breaker_state("LTC", follower.url) == OPEN
    assert breaker_state("LTC", leader.url) == 0.0
    # Two successes and two failures in the window: half failed, so the breaker opened, and
    # the calls after that did not try the stopped node at all.
    assert sum(provider_errors("LTC", follower.url, kind) for kind in FAILURE_KINDS) == 2


# Bitcoin Core 22+ writes ``scriptPubKey.address``; 0.21 (and Litecoin Core) ``addresses``.
CORE_22_BLOCK = {
    "hash": "11" * 32,
    "height": 7,
    "previousblockhash": "22" * 32,
    "tx": [
        {
            "txid": "33" * 32,
            "vin": [{"txid": "44" * 32, "vout": 0}],
            "vout": [
                {"value": Decimal("0.00012345"), "n": 0, "scriptPubKey": {"address": "bc1qnew"}},
                {"value": Decimal("1E-8"), "n": 1, "scriptPubKey": {"addresses": ["1Old"]}},
                {"value": Decimal("3"), "n": 2, "scriptPubKey": {"addresses": ["1A", "1B"]}},
                {"value": Decimal("0"), "n": 3, "scriptPubKey": {"type": "nulldata"}},
                {"value": 21, "n": 4, "scriptPubKey": {"address": "bc1qint"}},
            ],
        }
    ],
}


async def test_reads_both_address_layouts_and_exact_amounts() -> None:
    def node(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        result = {"getblockhash": "11" * 32, "getblock": CORE_22_BLOCK}[call["method"]]
        body = {"jsonrpc": "2.0", "id": call["id"], "result": result}
        return httpx.Response(200, content=simplejson.dumps(body, use_decimal=True).encode())

    rpc = RpcClient(
        "BTC",
        ["http://127.0.0.1:1"],
        client=httpx.AsyncClient(transport=httpx.MockTransport(node)),
    )
    async with rpc:
        block = await UtxoSource("BTC", rpc).block(7)
    tx = "33" * 32
    assert block.transfers == (
        Transfer("BTC", tx, 0, "bc1qnew", 12_345),
        Transfer("BTC", tx, 1, "1Old", 1),
        Transfer("BTC", tx, 4, "bc1qint", 21 * 10**8),
    )


@pytest.mark.parametrize("network", list(Network))
async def test_the_node_must_be_on_the_network_the_chain_is_configured_for(
    litecoind: Litecoind, network: Network
) -> None:
    env = {"KEEL_COINPAY_LTC_RPC_URLS": litecoind.url, "KEEL_COINPAY_LTC_NETWORK": network.value}
    source = sources.open_source(config.load(env).chain("LTC"), timeout_seconds=5)
    try:
        if network is Network.REGTEST:
            assert (await source.tip()).height == litecoind.height()
        else:
            with pytest.raises(InvalidChainConfig, match=f"configured for {network}.*'regtest'"):
                await source.tip()
    finally:
        await source.aclose()
