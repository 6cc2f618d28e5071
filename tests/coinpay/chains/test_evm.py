"""EvmSource against a real anvil: native and ERC-20 transfers with exact amounts, failed
transactions left out, a reorg (snapshot/revert) seen in the hashes, provider failover."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from keel.coinpay.chains import config, sources
from keel.coinpay.chains.base import Mempool, Transfer
from keel.coinpay.chains.evm import NATIVE_POSITION, EvmSource
from keel.coinpay.errors import BlockNotFound
from keel.coinpay.wallets.address_validation import eip55
from tests.chains_nodes import Anvil, closed_port_url
from tests.coinpay.chains.conftest import OPEN, breaker_state, provider_errors

ETHER = 10**18


def fresh_address() -> str:
    """A random EIP-55 address nobody controls: a payment address for one test."""
    return eip55("0x" + secrets.token_hex(20))


@pytest.fixture(scope="module")
def token(anvil: Anvil) -> str:
    """The test ERC-20 (6 decimals), deployed once for this module."""
    return anvil.deploy_token()


def source_for(anvil_urls: list[str], token: str | None = None) -> EvmSource:
    env = {"KEEL_COINPAY_ETH_RPC_URLS": ",".join(anvil_urls)}
    if token is not None:
        env["KEEL_COINPAY_USDC_ETH_CONTRACT"] = token
    source = sources.open_source(config.load(env).chain("ETH"), timeout_seconds=5)
    assert isinstance(source, EvmSource)
    return source


@pytest.fixture
async def source(anvil: Anvil, token: str) -> AsyncIterator[EvmSource]:
    evm = source_for([anvil.url], token)
    try:
        yield evm
    finally:
        await evm.aclose()


async def test_finds_native_and_token_transfers_with_exact_amounts(
    anvil: Anvil, token: str, source: EvmSource
) -> None:
    payee = fresh_address()
    eth_tx = anvil.send_eth(payee, 1_234_567_890_123_456_789)
    token_tx = anvil.send_token(token, payee, 25_000_001)
    eth_height = int(anvil.receipt(eth_tx)["blockNumber"], 16)
    token_height = int(anvil.receipt(token_tx)["blockNumber"], 16)

    native = await source.block(eth_height)
    erc20 = await source.block(token_height)

    assert [t for t in native.transfers if t.address == payee] == [
        Transfer("ETH", eth_tx, NATIVE_POSITION, payee, 1_234_567_890_123_456_789)
    ]
    [found] = [t for t in erc20.transfers if t.address == payee]
    assert (found.coin, found.tx_hash, found.amount) == ("USDC_ETH", token_tx, 25_000_001)
    assert found.position >= 0
    tip = await source.tip()
    assert tip.height >= token_height
    assert native.ref.height == eth_height


async def test_leaves_out_failed_zero_value_and_contract_creation_transactions(
    anvil: Anvil, token: str, source: EvmSource
) -> None:
    # The token has no receive(): ether sent to it reverts, and is mined as failed.
    failed = anvil.send_eth(token, ETHER, gas=100_000)
    assert anvil.receipt(failed)["status"] == "0x0"
    zero = anvil.send_eth(fresh_address(), 0)
    created = anvil.deploy_token()
    heights = {int(anvil.receipt(tx)["blockNumber"], 16) for tx in (failed, zero)}
    heights.add(anvil.height())  # instant mining: the deployment is the latest block
    for height in heights:
        block = await source.block(height)
        assert all(t.tx_hash != failed for t in block.transfers)
        assert all(t.tx_hash != zero for t in block.transfers)
        assert all(t.address != eip55(created) for t in block.transfers)


async def test_only_configured_token_contracts_count(anvil: Anvil, source: EvmSource) -> None:
    lookalike = anvil.deploy_token()  # same code, same event: not the configured contract
    payee = fresh_address()
    tx = anvil.send_token(lookalike, payee, 1_000_000)
    block = await source.block(int(anvil.receipt(tx)["blockNumber"], 16))
    assert all(t.address != payee for t in block.transfers)


async def test_a_block_above_the_tip_is_not_found_yet(source: EvmSource) -> None:
    tip = await source.tip()
    with pytest.raises(BlockNotFound):
        await source.block(tip.height + 1000)
    assert await source.pending() == Mempool(complete=False)


async def test_a_reorg_shows_as_a_new_hash_at_the_same_height(
    anvil: Anvil, source: EvmSource
) -> None:
    start = anvil.height()
    snapshot = anvil.rpc("evm_snapshot")
    payee = fresh_address()
    tx = anvil.send_eth(payee, 3 * ETHER)
    height = int(anvil.receipt(tx)["blockNumber"], 16)
    assert height == start + 1
    before = await source.block(height)
    assert [t.amount for t in before.transfers if t.address == payee] == [3 * ETHER]

    assert anvil.rpc("evm_revert", snapshot) is True
    anvil.mine(2)  # a different block at ``height``, and one on top of it

    after = await source.block(height)
    child = await source.block(height + 1)
    assert after.ref.hash != before.ref.hash
    assert after.ref.parent_hash == before.ref.parent_hash  # forked right above ``start``
    assert child.ref.parent_hash == after.ref.hash != before.ref.hash
    assert all(t.address != payee for t in after.transfers + child.transfers)
    assert (await source.tip()).hash == child.ref.hash


async def test_calls_go_on_through_the_second_provider_when_the_first_refuses(
    anvil: Anvil, token: str
) -> None:
    dead = closed_port_url()
    evm = source_for([dead, anvil.url], token)
    try:
        payee = fresh_address()
        tx = anvil.send_eth(payee, 5)
        height = int(anvil.receipt(tx)["blockNumber"], 16)
        for _ in range(4):  # the breaker opens once half of at least 4 calls failed
            assert (await evm.tip()).height >= height
        block = await evm.block(height)
    finally:
        await evm.aclose()
    assert [t.amount for t in block.transfers if t.address == payee] == [5]
    assert breaker_state("ETH", dead) == OPEN
    assert breaker_state("ETH", anvil.url) == 0.0
    assert provider_errors("ETH", dead, "connect") >= 4
