"""One EVM transaction read through four JSON-RPC calls, whoever answers them (a node, or
Etherscan's proxy module, which returns a node's JSON).

1. ``eth_getTransactionByHash``: null means no such transaction; a null ``blockNumber`` means
   it waits in the pool (pending).
2. ``eth_getTransactionReceipt``: ``status`` ``0x1`` succeeded, ``0x0`` reverted; its logs hold
   the ERC-20 ``Transfer(address,address,uint256)`` events: the token is the log's emitting
   contract (``address``), never a symbol. ERC-721 emits the same topic with the token id as
   a fourth topic and no data: only three-topic logs with a 32-byte amount are read.
3. ``eth_getBlockByNumber(receipt.blockNumber, false)``: the block's time. When its hash is not
   the receipt's, the chain reorganised between the calls: reported as pending, asked again.
4. ``eth_blockNumber``: the tip, for confirmations (the transaction's block counts as one).

Not seen: value moved by contract code (an exchange's batch payout paying us through an
internal call) leaves no log and no ``value``; it needs a tracing API few providers offer.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from keel.coach.payments.adapters import wire
from keel.coach.payments.errors import MalformedResponse, TransactionNotFound
from keel.coach.payments.observed import (
    NATIVE,
    Chain,
    ObservedPayment,
    Token,
    Transfer,
    TxStatus,
)

__all__ = ["TRANSFER_TOPIC", "EvmCall", "read_transaction"]

EvmCall = Callable[[str, list[object]], Awaitable[Any]]

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC: Final = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
# A 32-byte topic holding an address: 12 zero bytes, then the 20 address bytes.
_ADDRESS_TOPIC: Final = re.compile(r"0x0{24}(?P<address>[0-9a-fA-F]{40})", re.ASCII)
_WORD: Final = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)


async def read_transaction(call: EvmCall, tx_hash: str, *, source: str) -> ObservedPayment:
    """Transaction ``tx_hash`` through ``call`` (module docstring); TransactionNotFound when
    the source has none, MalformedResponse when an answer does not read."""
    tx = await call("eth_getTransactionByHash", [tx_hash])
    if tx is None:
        raise TransactionNotFound(f"{source}: no transaction {tx_hash}")
    sender = _address(wire.field(tx, "from", source), "from", source)
    recipient = tx.get("to") if isinstance(tx, dict) else None
    value = wire.hex_int(wire.field(tx, "value", source), "value", source)
    native: tuple[Transfer, ...] = ()
    if recipient is not None and value > 0:
        native = (Transfer(NATIVE, sender, _address(recipient, "to", source), value),)

    def pending() -> ObservedPayment:
        return ObservedPayment(
            chain=Chain.ETH,
            tx_hash=tx_hash,
            status=TxStatus.PENDING,
            sender=sender,
            transfers=native,
            block_time=None,
            confirmations=0,
            finalized=False,
        )

    if tx.get("blockNumber") is None:
        return pending()
    receipt = await call("eth_getTransactionReceipt", [tx_hash])
    if receipt is not None and not isinstance(receipt, dict):
        raise MalformedResponse(f"{source}: the receipt is not an object")
    if receipt is None or receipt.get("blockNumber") is None:
        return pending()  # a load-balanced provider whose receipt index lags its tx index
    height = wire.hex_int(receipt["blockNumber"], "receipt blockNumber", source)
    block = await call("eth_getBlockByNumber", [hex(height), False])
    if block is None or wire.field(block, "hash", source) != receipt.get("blockHash"):
        return pending()  # reorganised between the calls
    seconds = wire.hex_int(wire.field(block, "timestamp", source), "timestamp", source)
    tip = wire.hex_int(await call("eth_blockNumber", []), "eth_blockNumber", source)
    status = wire.hex_int(wire.field(receipt, "status", source), "status", source)
    succeeded = status == 1
    return ObservedPayment(
        chain=Chain.ETH,
        tx_hash=tx_hash,
        status=TxStatus.SUCCEEDED if succeeded else TxStatus.FAILED,
        sender=sender,
        transfers=(native + _token_transfers(receipt, source)) if succeeded else (),
        block_time=datetime.fromtimestamp(seconds, UTC),
        confirmations=max(tip - height + 1, 0),
        finalized=False,
    )


def _token_transfers(receipt: Any, source: str) -> tuple[Transfer, ...]:
    logs = wire.field(receipt, "logs", source)
    if not isinstance(logs, list):
        raise MalformedResponse(f"{source}: receipt logs are not a list")
    transfers = []
    for log in logs:
        topics = wire.field(log, "topics", source)
        if not isinstance(topics, list) or len(topics) != 3 or log.get("removed") is True:
            continue
        if str(topics[0]).lower() != TRANSFER_TOPIC:
            continue
        data = wire.field(log, "data", source)
        sender, recipient = _topic_address(topics[1]), _topic_address(topics[2])
        if not isinstance(data, str) or not _WORD.fullmatch(data) or not sender or not recipient:
            continue  # not an ERC-20 Transfer (a non-standard contract's look-alike event)
        token = Token(_address(wire.field(log, "address", source), "log address", source))
        transfers.append(Transfer(token, sender, recipient, int(data, 16)))
    return tuple(transfers)


def _address(value: Any, what: str, source: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise MalformedResponse(f"{source}: {what} is not an address: {value!r:.80}")
    return value.lower()


def _topic_address(topic: Any) -> str | None:
    match = _ADDRESS_TOPIC.fullmatch(topic) if isinstance(topic, str) else None
    return "0x" + match["address"].lower() if match else None
