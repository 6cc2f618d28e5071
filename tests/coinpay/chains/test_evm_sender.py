"""EvmSender against a real anvil: a sweep pays the commission and the merchant exactly and
empties the payment address; the same bytes sent again are one sweep, and a second signing can
never be mined beside the first; dust, contract payees, a wrong chain or key are refused before
anything is sent; depth, the pool, a forgotten and a failed transaction; keys leave no trace."""

from __future__ import annotations

import secrets
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.evm_sender import TRANSFER_GAS, EvmSender
from keel.coinpay.chains.rpc import RpcClient
from keel.coinpay.errors import (
    InvalidChainConfig,
    RpcCallRejected,
    SweepRefused,
    SweepReverted,
    SweepWaiting,
)
from keel.coinpay.wallets.address_validation import eip55
from tests.chains_nodes import Anvil, ChainNodes
from tests.coinpay.chains.test_nodes_live_flow import mined

ANVIL_CHAIN_ID = 31337
RECEIVED = 5 * 10**15  # 0.005 ETH
COMMISSION = RECEIVED // 100


def fresh_address() -> str:
    return eip55("0x" + secrets.token_hex(20))


@dataclass
class Keys:
    """A key source of fresh keys, one per derivation index, that records what it was asked."""

    keys: dict[int, bytes] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)

    def address(self, index: int) -> str:
        key = self.keys.setdefault(index, secrets.token_bytes(32))
        return str(Account.from_key(key).address)

    def __call__(self, index: int) -> bytes:
        self.asked.append(index)
        return self.keys[index]


@pytest.fixture
async def rpc(anvil: Anvil) -> AsyncIterator[RpcClient]:
    client = RpcClient("ETH", [anvil.url], timeout_seconds=5)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def sender(rpc: RpcClient, keys: Keys) -> EvmSender:
    return EvmSender("ETH", rpc, keys, ANVIL_CHAIN_ID)


def balance(anvil: Anvil, address: str) -> int:
    return int(anvil.rpc("eth_getBalance", address, "latest"), 16)


def nonce(anvil: Anvil, address: str) -> int:
    return int(anvil.rpc("eth_getTransactionCount", address, "latest"), 16)


async def funded(anvil: Anvil, keys: Keys, index: int, wei: int = RECEIVED) -> str:
    address = keys.address(index)
    await mined(anvil, anvil.send_eth(address, wei))
    return address


def sweep_of(
    address: str,
    index: int,
    merchant: str,
    *,
    commission: int = COMMISSION,
    received: int = RECEIVED,
) -> tuple[SweepInput]:
    return (SweepInput("pay_1", "ETH", address, index, received, commission, merchant),)


def hashes(raw: str) -> list[str]:
    return ["0x" + keccak(bytes.fromhex(tx[2:])).hex() for tx in raw.split("\n")]


async def broadcast(anvil: Anvil, sender: EvmSender, raw: str) -> None:
    """Sent, and the last transaction's block served as the node's latest."""
    await sender.broadcast(raw)
    await mined(anvil, hashes(raw)[-1])


def transactions(anvil: Anvil, signed: SignedSweep) -> list[dict[str, Any]]:
    """The sweep's transactions as the node has them, in nonce order."""
    return [anvil.rpc("eth_getTransactionByHash", tx_hash) for tx_hash in hashes(signed.raw)]


@pytest.fixture
def manual_mining(anvil: Anvil) -> Any:
    """Blocks only when the test mines them (the shared anvil mines each send at once)."""
    anvil.rpc("evm_setAutomine", False)
    try:
        yield
    finally:
        anvil.rpc("evm_setAutomine", True)


async def test_a_sweep_pays_commission_and_merchant_exactly_and_empties_the_address(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source, merchant, platform = await funded(anvil, keys, 3), fresh_address(), fresh_address()
    signed = await sender.sign(sweep_of(source, 3, merchant), platform)
    assert keys.asked == [3]
    await broadcast(anvil, sender, signed.raw)
    commission_tx, merchant_tx = transactions(anvil, signed)
    assert merchant_tx["hash"] == signed.tx_hash
    assert (commission_tx["to"], merchant_tx["to"]) == (platform.lower(), merchant.lower())
    assert (int(commission_tx["nonce"], 16), int(merchant_tx["nonce"], 16)) == (0, 1)
    assert commission_tx["type"] == merchant_tx["type"] == "0x0"  # legacy
    assert int(merchant_tx["chainId"], 16) == ANVIL_CHAIN_ID  # EIP-155
    fee = 2 * TRANSFER_GAS * int(merchant_tx["gasPrice"], 16)
    assert signed.fees == {"pay_1": fee}
    charged = 0
    for tx in (commission_tx, merchant_tx):
        receipt = anvil.receipt(tx["hash"])
        assert receipt["status"] == "0x1"
        charged += int(receipt["gasUsed"], 16) * int(receipt["effectiveGasPrice"], 16)
    assert charged == fee  # what the chain took is what was planned, to the wei
    assert balance(anvil, merchant) == RECEIVED - COMMISSION - fee
    assert balance(anvil, platform) == COMMISSION
    assert (balance(anvil, source), nonce(anvil, source)) == (0, 2)
    assert await sender.confirmations(signed.tx_hash) == 1
    anvil.mine(2)
    assert await sender.confirmations(signed.tx_hash) == 3


async def test_without_a_commission_only_the_merchant_is_paid(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source, merchant = await funded(anvil, keys, 4), fresh_address()
    signed = await sender.sign(sweep_of(source, 4, merchant, commission=0), "")
    assert "\n" not in signed.raw
    await broadcast(anvil, sender, signed.raw)
    [tx] = transactions(anvil, signed)
    fee = TRANSFER_GAS * int(tx["gasPrice"], 16)
    assert signed.fees == {"pay_1": fee}
    assert balance(anvil, merchant) == RECEIVED - fee
    assert (balance(anvil, source), nonce(anvil, source)) == (0, 1)


async def test_the_same_bytes_sent_again_are_one_sweep_even_cut_between_its_transactions(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source, merchant, platform = await funded(anvil, keys, 5), fresh_address(), fresh_address()
    signed = await sender.sign(sweep_of(source, 5, merchant), platform)
    first, _ = signed.raw.split("\n")
    await broadcast(anvil, sender, first)  # a worker killed between the two sends
    assert nonce(anvil, source) == 1
    await broadcast(anvil, sender, signed.raw)  # the restart: the first is mined, "nonce too low"
    await broadcast(anvil, sender, signed.raw)  # and again, both mined
    assert (balance(anvil, source), nonce(anvil, source)) == (0, 2)
    assert balance(anvil, platform) == COMMISSION


async def test_two_signings_of_one_payment_can_never_both_be_mined(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source, merchant, platform = await funded(anvil, keys, 6), fresh_address(), fresh_address()
    kept = await sender.sign(sweep_of(source, 6, merchant), platform)
    discarded = await sender.sign(sweep_of(source, 6, merchant, commission=0), platform)
    assert kept.raw != discarded.raw
    await broadcast(anvil, sender, kept.raw)
    with pytest.raises(RpcCallRejected):  # same nonce, another transaction: refused
        await sender.broadcast(discarded.raw)
    assert await sender.confirmations(discarded.tx_hash) is None
    assert (balance(anvil, source), nonce(anvil, source)) == (0, 2)
    assert balance(anvil, platform) == COMMISSION


async def test_dust_is_refused_and_nothing_is_sent(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source = await funded(anvil, keys, 7, wei=30_000)
    with pytest.raises(SweepRefused, match="dust"):
        await sender.sign(
            sweep_of(source, 7, fresh_address(), commission=300, received=30_000), fresh_address()
        )
    assert keys.asked == []  # refused before any key was derived
    assert nonce(anvil, source) == 0


async def test_an_address_holding_less_than_was_received_is_refused(
    anvil: Anvil, sender: EvmSender, keys: Keys
) -> None:
    source = await funded(anvil, keys, 8, wei=RECEIVED - 1)
    with pytest.raises(SweepRefused, match="less than"):
        await sender.sign(sweep_of(source, 8, fresh_address()), fresh_address())


async def test_a_payee_with_code_is_refused(anvil: Anvil, sender: EvmSender, keys: Keys) -> None:
    source, contract = await funded(anvil, keys, 9), eip55(anvil.deploy_token())
    with pytest.raises(SweepRefused, match="has code"):
        await sender.sign(sweep_of(source, 9, fresh_address()), contract)
    with pytest.raises(SweepRefused, match="has code"):
        await sender.sign(sweep_of(source, 9, contract), fresh_address())
    assert keys.asked == []


async def test_a_node_of_another_chain_is_refused_before_any_key_is_derived(
    anvil: Anvil, rpc: RpcClient, keys: Keys
) -> None:
    source = await funded(anvil, keys, 10)
    mainnet = EvmSender("ETH", rpc, keys, 1)
    with pytest.raises(InvalidChainConfig, match="chain id 31337, not 1"):
        await mainnet.sign(sweep_of(source, 10, fresh_address()), fresh_address())
    assert keys.asked == []


WRONG_KEYS = {
    "another": (secrets.token_bytes(32), "does not control"),
    "invalid": (b"\xff" * 32, "signing failed"),  # above the curve's order
    "misshapen": (secrets.token_bytes(64), "no 32-byte key"),  # e.g. an ed25519 extended key
}


@pytest.mark.parametrize("key", list(WRONG_KEYS))
async def test_a_wrong_key_is_refused_and_leaves_no_trace(
    anvil: Anvil, rpc: RpcClient, keys: Keys, key: str
) -> None:
    source = await funded(anvil, keys, 11)
    secret, reason = WRONG_KEYS[key]
    sender = EvmSender("ETH", rpc, lambda _index: secret, ANVIL_CHAIN_ID)
    with pytest.raises(SweepRefused) as caught:
        await sender.sign(sweep_of(source, 11, fresh_address()), fresh_address())
    error = caught.value
    assert error.__traceback__ is not None
    below_the_test = error.__traceback__.tb_next  # the test's own frame holds the key, of course
    report = "".join(
        traceback.TracebackException(
            type(error), error, below_the_test, capture_locals=True
        ).format()
    )
    for shown in (report, repr(sender), str(caught.value)):
        assert secret.hex() not in shown
        assert repr(secret)[2:-1] not in shown
    assert reason in str(error)
    assert nonce(anvil, source) == 0


async def test_depth_in_the_pool_once_forgotten_and_sent_again(
    anvil: Anvil, sender: EvmSender, keys: Keys, manual_mining: None
) -> None:
    source = keys.address(12)
    anvil.send_eth(source, RECEIVED)
    anvil.mine(1)
    signed = await sender.sign(sweep_of(source, 12, fresh_address(), commission=0), "")
    assert await sender.confirmations(signed.tx_hash) is None  # not sent yet
    await sender.broadcast(signed.raw)
    assert await sender.confirmations(signed.tx_hash) == 0  # in the pool
    anvil.rpc("anvil_dropTransaction", signed.tx_hash)  # evicted
    assert await sender.confirmations(signed.tx_hash) is None
    await sender.broadcast(signed.raw)  # the same bytes again
    anvil.mine(1)
    assert await sender.confirmations(signed.tx_hash) == 1
    assert balance(anvil, source) == 0


async def test_a_failed_transaction_is_reported_not_counted(
    anvil: Anvil, sender: EvmSender
) -> None:
    contract = anvil.deploy_token()  # no payable function: sending it ether reverts
    failed = anvil.send_eth(contract, 1, gas=100_000)
    await mined(anvil, failed)
    assert anvil.receipt(failed)["status"] == "0x0"
    with pytest.raises(SweepReverted, match="moved no value"):
        await sender.confirmations(failed)


# Token sweeps -------------------------------------------------------------------------------------


def token_input(index: int, address: str, received: int = 1_000_000) -> SweepInput:
    return SweepInput(
        payment_id=f"p{index}",
        coin="USDC_ETH",
        address=address,
        derivation_index=index,
        received=received,
        commission=received // 100,
        merchant_address=fresh_address(),
    )


@dataclass
class FeeWallet:
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)

    async def __call__(self) -> tuple[str, bytes]:
        return self.address, self.key


async def test_a_token_sweep_waits_for_one_top_up_even_while_it_sits_in_the_pool(
    chain_nodes: ChainNodes, keys: Keys
) -> None:
    anvil = chain_nodes.anvil()  # automine is switched off here: a node of its own
    token = anvil.deploy_token()
    wallet = FeeWallet()
    await mined(anvil, anvil.send_eth(wallet.address, 10**18))
    address = keys.address(1)
    await mined(anvil, anvil.send_token(token, address, 1_000_000))
    rpc = RpcClient("ETH", [anvil.url], timeout_seconds=5)
    sender = EvmSender(
        "ETH", rpc, keys, ANVIL_CHAIN_ID, tokens={"USDC_ETH": token}, fee_wallet=wallet
    )
    try:
        anvil.rpc("evm_setAutomine", False)
        with pytest.raises(SweepWaiting, match="wei for its token sweep's gas"):
            await sender.sign((token_input(1, address),), fresh_address())
        # the pending balance counts it, or (a provider without a pool view) the sender asks
        with pytest.raises(SweepWaiting, match=r"in the pool|on its way"):
            await sender.sign((token_input(1, address),), fresh_address())
        pool = anvil.rpc("txpool_content")["pending"]
        assert list(pool) == [wallet.address.lower()] or list(pool) == [wallet.address]
        assert len(next(iter(pool.values()))) == 1  # one top-up, not two
        anvil.mine(1)
        signed = await sender.sign((token_input(1, address),), fresh_address())
        assert signed.fees == {"p1": 0}  # the merchant's token amount pays no network fee
        assert keys.asked == [1]  # the payment's key only once the gas was there
    finally:
        await sender.aclose()


async def test_a_token_sweep_with_no_fee_wallet_or_short_funds_is_refused(
    anvil: Anvil, rpc: RpcClient, keys: Keys
) -> None:
    token = anvil.deploy_token()
    address = keys.address(2)
    await mined(anvil, anvil.send_token(token, address, 1_000_000))
    alone = EvmSender("ETH", rpc, keys, ANVIL_CHAIN_ID, tokens={"USDC_ETH": token})
    with pytest.raises(SweepRefused, match="needs a fee wallet"):
        await alone.sign((token_input(2, address),), fresh_address())
    wallet = FeeWallet()  # never funded
    dry = EvmSender("ETH", rpc, keys, ANVIL_CHAIN_ID, tokens={"USDC_ETH": token}, fee_wallet=wallet)
    with pytest.raises(SweepRefused, match=f"fee wallet {wallet.address} holds 0 wei"):
        await dry.sign((token_input(2, address),), fresh_address())
    with pytest.raises(SweepRefused, match="less than the 2000000 received"):
        await dry.sign((token_input(2, address, received=2_000_000),), fresh_address())
    assert keys.asked == []
    assert nonce(anvil, address) == 0
