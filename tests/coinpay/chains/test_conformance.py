"""What every ChainSource promises, checked on each real one (anvil, litecoind regtest, the
LiteSVM Solana peer)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from keel.coinpay.chains.base import ChainSource
from keel.coinpay.chains.evm import EvmSource
from keel.coinpay.chains.rpc import RpcClient
from keel.coinpay.chains.solana import SolanaSource
from keel.coinpay.chains.utxo import TRANSIENT_CODES, UtxoSource
from keel.coinpay.errors import BlockNotFound
from tests.chains_nodes import Anvil, Litecoind
from tests.solana_node import SolanaPeer, solana_peer

__all__ = ["solana_peer"]


@dataclass
class Subject:
    source: ChainSource
    mine: Callable[[int], object]
    rpc: RpcClient
    null_hash: str | None = None  # the genesis block's parent, when not hex zeros


@pytest.fixture(params=["evm", "utxo", "solana"])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "evm":
        anvil: Anvil = request.getfixturevalue("anvil")
        rpc = RpcClient("ETH", [anvil.url])
        subject = Subject(EvmSource("ETH", rpc), anvil.mine, rpc)
    elif request.param == "solana":
        peer: SolanaPeer = request.getfixturevalue("solana_peer")
        rpc = RpcClient("SOL", [peer.url])
        subject = Subject(SolanaSource("SOL", rpc), peer.mine, rpc, null_hash="1" * 32)
    else:
        litecoind: Litecoind = request.getfixturevalue("litecoind")
        rpc = RpcClient("LTC", [litecoind.url], transient_codes=TRANSIENT_CODES)
        subject = Subject(UtxoSource("LTC", rpc), litecoind.mine, rpc)
    try:
        yield subject
    finally:
        await rpc.aclose()


async def test_the_tip_is_the_block_at_its_height(subject: Subject) -> None:
    tip = await subject.source.tip()
    assert (await subject.source.block(tip.height)).ref == tip


async def test_blocks_link_to_their_parents(subject: Subject) -> None:
    subject.mine(3)
    tip = await subject.source.tip()
    refs = [(await subject.source.block(h)).ref for h in range(tip.height - 3, tip.height + 1)]
    assert [ref.height for ref in refs] == list(range(tip.height - 3, tip.height + 1))
    for parent, child in itertools.pairwise(refs):
        assert child.parent_hash == parent.hash


async def test_a_new_block_moves_the_tip(subject: Subject) -> None:
    before = await subject.source.tip()
    subject.mine(1)
    after = await subject.source.tip()
    assert after.height == before.height + 1
    assert after.parent_hash == before.hash


async def test_the_block_above_the_tip_is_not_found(subject: Subject) -> None:
    tip = await subject.source.tip()
    with pytest.raises(BlockNotFound):
        await subject.source.block(tip.height + 1)
    with pytest.raises(ValueError, match="height"):
        await subject.source.block(-1)


async def test_the_genesis_block_has_a_null_parent(subject: Subject) -> None:
    genesis = await subject.source.block(0)
    if subject.null_hash is not None:
        assert genesis.ref.parent_hash == subject.null_hash  # base58 of 32 zero bytes
    else:
        assert int(genesis.ref.parent_hash, 16) == 0
    assert isinstance((await subject.source.pending()).transfers, tuple)
