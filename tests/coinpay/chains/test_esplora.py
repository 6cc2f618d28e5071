"""EsploraSource and EsploraNode against recorded Esplora answers replayed by a real local HTTP
server (tests.replay; the recordings, genuine regtest blocks and transactions, and how they were
made: recordings/esplora/README.md): blocks read from one raw request each, failover to the next
provider, the mempool, broadcasts and confirmations, and damaged answers."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.coinpay import models
from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import SweepInput
from keel.coinpay.chains.esplora import EsploraNode, EsploraSource, read_transaction
from keel.coinpay.chains.providers import ProviderFailure, default_breaker
from keel.coinpay.chains.rest import RestClient
from keel.coinpay.chains.utxo_node import OutputRef, Unspent, already_known
from keel.coinpay.chains.utxo_sender import UtxoSender, open_utxo_sender
from keel.coinpay.errors import (
    BlockNotFound,
    ChainUnavailable,
    InvalidChainConfig,
    RestCallRejected,
)
from keel.coinpay.wallets import Family, Network, output_script, script_address
from keel.core.resilience import CircuitBreaker
from tests.chains_nodes import closed_port_url
from tests.coinpay.chains.conftest import OPEN, breaker_state, provider_errors
from tests.coinpay.conftest import make_harness
from tests.replay import ReplayServer, checked, load_recording, serve_recordings

RECORDINGS = Path(__file__).parent / "recordings"
PAYMENT = "bcrt1q6rz28mcfaxtmd6v789l9rrlrusdprr9pz3cppk"  # the harness's first BTC payment
PLATFORM = "bcrt1qfsryn6hh2yhpxpp7m9dh54x89wettyfkhat7dd"


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


def note(name: str) -> str:
    path = RECORDINGS / "esplora" / f"{name}.json"
    return str(json.loads(path.read_text())["note"])


def answer(name: str, path: str) -> Any:
    """The first recorded answer of ``name`` to ``GET path``."""
    for exchange in load_recording(RECORDINGS, "esplora", name):
        if exchange["request"]["path"] == path:
            response = exchange["response"]
            return response.get("body_text", response.get("body"))
    raise KeyError(path)


def source(
    *urls: str,
    chain: str = "BTC",
    breaker: Callable[[str], CircuitBreaker] = default_breaker,
    **kw: Any,
) -> EsploraSource:
    rest = RestClient(chain, urls, round_pause_seconds=0, timeout_seconds=5, breaker=breaker)
    return EsploraSource(chain, rest, network=kw.pop("network", Network.REGTEST), **kw)


@pytest.fixture
async def blocks(replay: ReplayServer) -> AsyncIterator[EsploraSource]:
    subject = source(replay.url("esplora", "blocks"))
    try:
        yield subject
    finally:
        await subject.aclose()


async def test_the_tip_is_the_raw_block_at_its_height(blocks: EsploraSource) -> None:
    tip = await blocks.tip()
    assert (tip.height, tip.hash) == (103, answer("blocks", "/blocks/tip/hash"))
    block = await blocks.block(103)
    assert block.ref == tip
    parent = await blocks.block(102)
    assert tip.parent_hash == parent.ref.hash
    assert parent.transfers == ()  # a coinbase only: a miner's reward is no payment


async def test_every_output_paying_an_address_is_a_transfer_in_its_canonical_form(
    blocks: EsploraSource,
) -> None:
    block = await blocks.block(103)
    txid = note("blocks").rsplit(" ", 1)[1]
    assert {t.tx_hash for t in block.transfers} == {txid}
    assert all(t.coin == "BTC" for t in block.transfers)
    paid = {t.address: (t.position, t.amount) for t in block.transfers}
    assert paid[PAYMENT][1] == 25707  # exact satoshis
    kinds = {
        address: output_script(Family.BTC, address, Network.REGTEST)[:2].hex() for address in paid
    }
    # P2WPKH (ours and the change), P2PKH, P2SH, P2WSH, Taproot; no OP_RETURN (no address).
    assert sorted(kinds.values()) == ["0014", "0014", "0020", "5120", "76a9", "a914"]
    by_amount = {amount for _, amount in paid.values()}
    assert {10_000_000, 20_000_000, 30_000_000, 100_000} <= by_amount
    positions = sorted(position for position, _ in paid.values())
    assert positions == [0, 1, 2, 3, 4, 5]  # output 6, the OP_RETURN, is none
    assert [a for a in paid if a.startswith("bcrt1p")] == [
        "bcrt1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqc8gma6"
    ]


async def test_the_block_above_the_tip_is_not_found(blocks: EsploraSource) -> None:
    with pytest.raises(BlockNotFound, match="no block 104"):
        await blocks.block(104)
    with pytest.raises(ValueError, match="height"):
        await blocks.block(-1)


async def test_a_genesis_block_of_another_network_refuses_the_configuration(
    replay: ReplayServer,
) -> None:
    # The recordings come from Litecoin regtest: an LTC source configured for mainnet refuses.
    ltc = source(replay.url("esplora", "blocks"), chain="LTC", network=Network.MAINNET)
    try:
        with pytest.raises(InvalidChainConfig, match="regtest's genesis block"):
            await ltc.tip()
    finally:
        await ltc.aclose()
    ltc = source(replay.url("esplora", "blocks"), chain="LTC")  # regtest: the same blocks read
    try:
        assert (await ltc.tip()).height == 103
        paid = {t.address: t.amount for t in (await ltc.block(103)).transfers}
        assert paid["rltc1q6rz28mcfaxtmd6v789l9rrlrusdprr9puuzgkg"] == 25707
    finally:
        await ltc.aclose()


@pytest.mark.parametrize("first", ["closed", "down"])
async def test_a_failing_first_provider_hands_over_and_its_breaker_opens(
    replay: ReplayServer, first: str
) -> None:
    bad = closed_port_url() if first == "closed" else replay.url("esplora", "down")
    subject = source(bad, replay.url("esplora", "blocks"))
    try:
        for _ in range(3):
            assert (await subject.tip()).height == 103
        assert breaker_state("BTC", bad) == OPEN
        kind = "connect" if first == "closed" else "http_5xx"
        assert provider_errors("BTC", bad, kind) >= 4
        before = replay.hits[("esplora", "down")]
        assert (await subject.block(103)).ref.height == 103  # the open breaker skips it
        assert replay.hits[("esplora", "down")] == before
    finally:
        await subject.aclose()


async def test_when_no_provider_answers_the_chain_is_unavailable(replay: ReplayServer) -> None:
    subject = source(closed_port_url(), replay.url("esplora", "down"))
    try:
        with pytest.raises(ChainUnavailable, match="no Esplora provider answered"):
            await subject.tip()
    finally:
        await subject.aclose()


def patient(name: str) -> CircuitBreaker:
    """A breaker that stays closed, so every damaged answer is read and counted."""
    return CircuitBreaker(name, minimum_calls=10**6, failure_on=(ProviderFailure,))


async def test_damaged_answers_make_the_chain_unavailable_not_a_crash(
    replay: ReplayServer,
) -> None:
    url = replay.url("esplora", "garbage")
    subject = source(url, breaker=patient)
    try:
        calls: list[Callable[[], Awaitable[object]]] = [
            subject.tip,  # unreadable JSON
            lambda: subject.block(103),  # the block cut in half
            lambda: subject.block(102),  # 81 zero bytes
            lambda: subject.block(105),  # "not a hash"
            lambda: subject.block(106),  # an amount changed: the merkle root no longer matches
        ]
        for call in calls:
            before = provider_errors("BTC", url, "invalid_response")
            with pytest.raises(ChainUnavailable):
                await call()
            assert provider_errors("BTC", url, "invalid_response") == before + 2  # two rounds
    finally:
        await subject.aclose()


async def test_the_mempool_is_read_once_per_transaction_and_bounded(
    replay: ReplayServer,
) -> None:
    subject = source(replay.url("esplora", "mempool"), max_fetch=1)
    first, second, _gone = answer("mempool", "/mempool/txids")
    try:
        pool = await subject.pending()
        assert not pool.complete  # one of three read
        assert {t.tx_hash for t in pool.transfers} == {first}
        assert (PAYMENT, 100_000) in {(t.address, t.amount) for t in pool.transfers}
        pool = await subject.pending()
        assert {t.tx_hash for t in pool.transfers} == {first, second}
        pool = await subject.pending()  # the third left the mempool: 404, asked again each poll
        assert not pool.complete
        assert replay.hits[("esplora", "mempool")] == 3 + 3
    finally:
        await subject.aclose()


# The sweep side -----------------------------------------------------------------------------------


@pytest.fixture
async def node(replay: ReplayServer) -> AsyncIterator[EsploraNode]:
    rest = RestClient("BTC", [replay.url("esplora", "sweeps")], round_pause_seconds=0)
    subject = EsploraNode("BTC", rest, network=Network.REGTEST)
    try:
        yield subject
    finally:
        await subject.aclose()


async def test_a_broadcast_counts_as_sent_when_the_node_already_has_it(node: EsploraNode) -> None:
    raw = "02000000000000000000"  # the body is not matched: the recorded answers decide
    await node.broadcast(raw)  # fresh: the txid
    await node.broadcast(raw)  # again while in the mempool: the txid again
    await node.broadcast(raw)  # once mined: 400 "-27 Transaction already in block chain"


async def test_a_refused_broadcast_raises_with_the_node_s_reason(replay: ReplayServer) -> None:
    rest = RestClient("BTC", [replay.url("esplora", "broadcast_refused")])
    refused = EsploraNode("BTC", rest, network=Network.REGTEST)
    try:
        with pytest.raises(RestCallRejected, match="missingorspent") as caught:
            await refused.broadcast("00")
        assert caught.value.status == 400
    finally:
        await refused.aclose()


@pytest.mark.parametrize(
    "text",
    [
        'sendrawtransaction RPC error: {"code":-26,"message":"txn-already-known"}',
        'sendrawtransaction RPC error: {"code":-26,"message":"txn-already-in-mempool"}',
        "sendrawtransaction RPC error -27: Transaction outputs already in utxo set",
    ],
)
def test_already_known_texts_of_other_node_versions_are_recognised(text: str) -> None:
    assert already_known(text)
    assert not already_known('{"code":-25,"message":"bad-txns-inputs-missingorspent"}')


async def test_confirmations_are_counted_against_the_tip(node: EsploraNode) -> None:
    mined = note("sweeps").split()[1]
    waiting = note("sweeps").split("; ")[1].split()[0]
    tip = int(answer("sweeps", "/blocks/tip/height"))
    height = answer("sweeps", f"/tx/{mined}/status")["block_height"]
    assert await node.confirmations(mined) == tip - height + 1 == 3
    assert await node.confirmations(waiting) == 0  # in the mempool
    assert await node.confirmations("ab" * 32) is None  # nowhere: the sweeper sends it again


async def test_unspent_outputs_come_from_the_address_s_list(node: EsploraNode) -> None:
    [confirmed, pending] = answer("sweeps", f"/address/{PAYMENT}/utxo")
    script = output_script(Family.BTC, PAYMENT, Network.REGTEST)
    tip = int(answer("sweeps", "/blocks/tip/height"))
    found = await node.unspent(
        [
            OutputRef(PAYMENT, confirmed["txid"], confirmed["vout"]),
            OutputRef(PAYMENT, pending["txid"], 0),
            OutputRef(PAYMENT, confirmed["txid"], confirmed["vout"] + 1),  # spent: not listed
        ]
    )
    depth = tip - confirmed["status"]["block_height"] + 1
    assert found == [Unspent(depth, 100_000, script), Unspent(0, 7, script), None]


async def test_the_fee_rate_is_the_estimate_for_the_target_rounded_up(node: EsploraNode) -> None:
    assert await node.fee_rate(6, 10_000) == 68_285  # 68.285 sat/vB
    assert await node.fee_rate(3, 10_000) == 68_285  # the next target estimated
    assert await node.fee_rate(1, 10_000) == 87_882
    assert await node.fee_rate(500, 10_000) == 10_000  # none that far: the fallback
    assert await node.fee_rate(500, 10) == 1_000  # never below the relay minimum


# Wiring -------------------------------------------------------------------------------------------


def esplora_env(url: str, chain: str = "BTC", network: str = "regtest") -> dict[str, str]:
    return {
        f"KEEL_COINPAY_{chain}_RPC_URLS": url,
        f"KEEL_COINPAY_{chain}_API": "esplora",
        f"KEEL_COINPAY_{chain}_NETWORK": network,
    }


async def test_an_esplora_chain_gets_an_esplora_source_and_sender(replay: ReplayServer) -> None:
    chain = config.load(esplora_env(replay.url("esplora", "blocks"))).chain("BTC")
    opened = sources.open_source(chain)
    try:
        assert isinstance(opened, EsploraSource)
        assert (await opened.tip()).height == 103
    finally:
        await opened.aclose()
    sender = open_utxo_sender(chain, None, None, platform_address=PLATFORM)  # type: ignore[arg-type]
    try:
        assert isinstance(sender, UtxoSender)
        assert isinstance(sender._node, EsploraNode)
    finally:
        await sender.aclose()


@pytest.mark.parametrize("network", ["mainnet", "testnet"])
def test_litecoin_over_esplora_is_refused_where_its_blocks_carry_mweb(network: str) -> None:
    chain = config.load(esplora_env("http://127.0.0.1:1", "LTC", network)).chain("LTC")
    with pytest.raises(InvalidChainConfig, match="MWEB"):
        sources.open_source(chain)


async def test_a_sweep_is_signed_from_the_outputs_esplora_lists_unspent(
    db_url: str, node: EsploraNode
) -> None:
    [confirmed, pending] = answer("sweeps", f"/address/{PAYMENT}/utxo")
    async for h in make_harness(db_url, None):
        async with h.gw.sessions() as session, session.begin():
            for utxo in (confirmed, pending):  # as the scanner stored them
                await session.execute(
                    models.chain_transfers.insert().values(
                        chain="BTC",
                        coin="BTC",
                        tx_hash=utxo["txid"],
                        position=utxo["vout"],
                        address=PAYMENT,
                        amount=utxo["value"],
                        block_height=utxo["status"].get("block_height"),
                        block_hash=utxo["status"].get("block_hash"),
                        orphaned=False,
                        first_seen_at=h.clock.now(),
                    )
                )
        sender = UtxoSender("BTC", node, h.gw.sessions, h.gw.custody.root, network=Network.REGTEST)
        merchant = "bcrt1q86w34pkrsudkh7c3a26wu5j988hf4nawy652qr"
        sweep = SweepInput("p1", "BTC", PAYMENT, 0, 100_000, 1_000, merchant)
        signed = await sender.sign((sweep,), PLATFORM)
    tx = read_transaction(bytes.fromhex(signed.raw))
    # The confirmed output only (the one still in the mempool waits for a later sweep).
    assert [(i.txid.hex(), i.vout) for i in tx.vin] == [(confirmed["txid"], confirmed["vout"])]
    fee = signed.fees["p1"]
    # 68.285 sat/vB on the size estimated before signing (at most a byte over per input).
    assert math.ceil(68_285 * vsize(tx) / 1000) <= fee <= math.ceil(68_285 * (vsize(tx) + 1) / 1000)
    paid = {
        script_address(Family.BTC, o.script_pubkey.data, Network.REGTEST): o.value for o in tx.vout
    }
    assert paid == {merchant: 100_000 - 1_000 - fee, PLATFORM: 1_000}


def vsize(tx: Any) -> int:
    """Virtual size of a signed segwit transaction (BIP141)."""
    full = len(tx.serialize())
    stripped = len(tx.serialize()) - sum(len(i.witness.serialize()) for i in tx.vin) - 2
    return math.ceil((stripped * 3 + full) / 4)
