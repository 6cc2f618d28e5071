"""Real payments on a real EVM node (anvil, chain id 31337), read back through EvmRpc and
checked: ETH and an ERC-20 (tests/coinpay's TestToken), refusals, confirmations."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from keel.coach.payments.adapters.evm_rpc import EvmRpc
from keel.coach.payments.errors import (
    SourceMisconfigured,
    SourceUnavailable,
    TransactionNotFound,
)
from keel.coach.payments.observed import NATIVE, Asset, Chain, Token, Transfer, TxStatus
from keel.coach.payments.verify import (
    BLOCK_TIME_SLACK,
    Accepted,
    Expected,
    Refusal,
    Refused,
    Wait,
    WaitReason,
    check,
)
from tests.chains_nodes import Anvil, closed_port_url
from tests.coach.payments.conftest import zero_address

ANVIL_CHAIN_ID = 31337
DEPTH = 3
ETHER = 10**18


@pytest.fixture(scope="module")
def token(anvil: Anvil) -> str:
    return anvil.deploy_token()


@pytest.fixture
def source(anvil: Anvil, client: httpx.AsyncClient) -> EvmRpc:
    return EvmRpc(client, anvil.url, chain_id=ANVIL_CHAIN_ID)


async def mined(anvil: Anvil, tx: str) -> datetime:
    """Until the node serves ``tx``'s block (anvil answers the send a moment before); the
    block's time."""
    for _ in range(200):
        receipt = anvil.receipt(tx)
        if receipt and anvil.height() >= int(receipt["blockNumber"], 16):
            block = anvil.rpc("eth_getBlockByNumber", receipt["blockNumber"], False)
            return datetime.fromtimestamp(int(block["timestamp"], 16), UTC)
        await asyncio.sleep(0.01)
    raise AssertionError(f"{tx} not mined")


def invoice(recipient: str, amount: int, asset: Asset = NATIVE, **changes: object) -> Expected:
    fields: dict[str, object] = {
        "chain": Chain.ETH,
        "asset": asset,
        "amount": amount,
        "recipient": recipient,
        "created_at": datetime.now(UTC) - timedelta(minutes=1),
        "confirmations": DEPTH,
    }
    fields.update(changes)
    return Expected(**fields)  # type: ignore[arg-type]


async def test_an_ether_payment_is_verified_from_its_hash(anvil: Anvil, source: EvmRpc) -> None:
    recipient = zero_address()
    asked = invoice(recipient, ETHER // 100)
    tx = anvil.send_eth(recipient, ETHER // 100)
    await mined(anvil, tx)

    seen = await source.observe(tx)
    assert seen.status is TxStatus.SUCCEEDED
    assert seen.transfers == (Transfer(NATIVE, anvil.accounts[0].lower(), recipient, ETHER // 100),)
    assert seen.confirmations == 1
    assert check(asked, seen) == Wait(WaitReason.NOT_FINAL, 1, DEPTH)

    anvil.mine(DEPTH - 1)
    assert check(asked, await source.observe(tx)) == Accepted(ETHER // 100)


async def test_paying_another_address_is_refused(anvil: Anvil, source: EvmRpc) -> None:
    tx = anvil.send_eth(zero_address(), ETHER // 100)
    await mined(anvil, tx)
    verdict = check(invoice(zero_address(), ETHER // 100), await source.observe(tx))
    assert verdict == Refused(Refusal.WRONG_RECIPIENT)


async def test_paying_too_little_is_refused(anvil: Anvil, source: EvmRpc) -> None:
    recipient = zero_address()
    tx = anvil.send_eth(recipient, ETHER // 100 - 1)
    await mined(anvil, tx)
    verdict = check(invoice(recipient, ETHER // 100), await source.observe(tx))
    assert verdict == Refused(Refusal.TOO_LITTLE, received=ETHER // 100 - 1)


async def test_a_payment_older_than_the_invoice_is_refused(anvil: Anvil, source: EvmRpc) -> None:
    recipient = zero_address()
    tx = anvil.send_eth(recipient, ETHER // 100)
    block_time = await mined(anvil, tx)
    anvil.mine(DEPTH)
    later = block_time + BLOCK_TIME_SLACK + timedelta(seconds=1)
    verdict = check(invoice(recipient, ETHER // 100, created_at=later), await source.observe(tx))
    assert verdict == Refused(Refusal.BEFORE_INVOICE)


async def test_an_erc20_payment_is_read_from_its_transfer_log(
    anvil: Anvil, source: EvmRpc, token: str
) -> None:
    recipient = zero_address()
    tx = anvil.send_token(token, recipient, 25_000_000)
    await mined(anvil, tx)
    anvil.mine(DEPTH)
    seen = await source.observe(tx)
    assert seen.transfers == (
        Transfer(Token(token.lower()), anvil.accounts[0].lower(), recipient, 25_000_000),
    )
    assert check(invoice(recipient, 25_000_000, Token(token)), seen) == Accepted(25_000_000)


async def test_the_same_token_from_another_contract_is_wrong_token(
    anvil: Anvil, source: EvmRpc, token: str
) -> None:
    lookalike = anvil.deploy_token()  # same code, same symbol: only the address differs
    recipient = zero_address()
    tx = anvil.send_token(lookalike, recipient, 25_000_000)
    await mined(anvil, tx)
    verdict = check(invoice(recipient, 25_000_000, Token(token)), await source.observe(tx))
    assert verdict == Refused(Refusal.WRONG_TOKEN)


async def test_a_reverted_transaction_is_refused(anvil: Anvil, source: EvmRpc, token: str) -> None:
    # TestToken has no receive(): ether sent to it reverts, and is mined with status 0.
    tx = anvil.send_eth(token, ETHER // 100, gas=100_000)
    await mined(anvil, tx)
    seen = await source.observe(tx)
    assert seen.status is TxStatus.FAILED
    assert seen.transfers == ()
    assert check(invoice(token, ETHER // 100), seen) == Refused(Refusal.FAILED)


async def test_an_unknown_hash_is_not_found(source: EvmRpc) -> None:
    with pytest.raises(TransactionNotFound):
        await source.observe("0x" + secrets.token_hex(32))


async def test_a_node_of_another_chain_is_refused(anvil: Anvil, client: httpx.AsyncClient) -> None:
    mainnet = EvmRpc(client, anvil.url)  # expects chain id 1
    with pytest.raises(SourceMisconfigured, match="31337"):
        await mainnet.observe("0x" + secrets.token_hex(32))


async def test_a_node_that_does_not_answer_is_unavailable_and_its_url_is_not_told(
    client: httpx.AsyncClient,
) -> None:
    url = closed_port_url() + "/v2/provider-key-in-path"
    with pytest.raises(SourceUnavailable) as raised:
        await EvmRpc(client, url).observe("0x" + secrets.token_hex(32))
    assert "provider-key-in-path" not in str(raised.value)
