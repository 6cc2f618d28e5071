"""An EVM chain (Ethereum, Polygon, BNB Chain) read block by block over JSON-RPC.

Per block, whatever the number of watched addresses:

1. ``eth_getBlockByNumber(h, true)``: the block with its transactions. Each transaction with a
   recipient and a non-zero value is a native transfer (position ``-1``). Contract creations
   (no ``to``) and zero-value transactions are not transfers.
2. ``eth_getBlockReceipts(block hash)``, only when step 1 found a native transfer: a
   transaction that failed (status ``0x0``) moved no value, so it is dropped. A plain transfer
   to a codeless address cannot fail, but a payment address is not known here (matching is the
   scanner's job) and an EIP-7702 account or a contract can revert, so every value transfer is
   checked: one call per block. Providers without the method (``-32601``) are asked for the
   receipts of those transactions alone, in one batch.
3. ``eth_getLogs({blockHash, address: [every configured token], topics: [Transfer]})``: each
   ERC-20 ``Transfer(address,address,uint256)`` log of a configured contract (position: the
   log index). Logs of other contracts are ignored, so a look-alike token sent to a payment
   address is not a payment; logs with a zero amount (address-poisoning spam) are dropped.

Steps 2 and 3 are keyed by the block hash of step 1, so all three describe the same block even
when the chain reorganises in between (a provider that no longer has that block answers an
error and the call moves on; when none has it the block is retried later).

Not seen: value moved by contract code (internal transactions: a Safe wallet or an exchange's
batch payout paying a payment address) needs a tracing API (``trace_block``) most providers
do not offer; such a payment has to be credited by hand.

``pending()`` is empty: blocks come every few seconds, most providers do not serve the
transaction pool (``txpool_content``), and a pending transaction can be replaced at will, so a
0-conf EVM payment tells the merchant nothing a block does not tell a few seconds later.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.config import Token
from keel.coinpay.chains.rpc import MalformedResponse, RpcClient
from keel.coinpay.errors import BlockNotFound, RpcCallRejected
from keel.coinpay.wallets.address_validation import eip55

__all__ = ["NATIVE_POSITION", "TRANSFER_TOPIC", "EvmSource"]

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC: Final = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
# The position of a transaction's own value among its transfers (log indexes are >= 0).
NATIVE_POSITION: Final = -1

_HASH: Final = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)
_QUANTITY: Final = re.compile(r"0x[0-9a-fA-F]{1,64}", re.ASCII)
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
# A 32-byte topic holding an address: 12 zero bytes, then the 20 address bytes.
_ADDRESS_TOPIC: Final = re.compile(r"0x0{24}(?P<address>[0-9a-fA-F]{40})", re.ASCII)
_METHOD_NOT_FOUND: Final = -32601


@dataclass(frozen=True, slots=True)
class _Tx:
    hash: str
    index: int
    to: str
    value_wei: int


@dataclass(frozen=True, slots=True)
class _FullBlock:
    ref: BlockRef
    value_txs: tuple[_Tx, ...]  # with a recipient and a non-zero value


class EvmSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of one EVM chain.

    ``chain`` is its code in ``keel.coinpay.assets`` and the symbol of its native coin;
    ``tokens`` are the ERC-20 coins to report (``chains.config`` gives them with overrides).
    """

    def __init__(self, chain: str, rpc: RpcClient, tokens: Sequence[Token] = ()) -> None:
        self.chain = chain
        self._rpc = rpc
        self._tokens = {token.contract.lower(): token for token in tokens}
        if len(self._tokens) != len(tokens):
            raise ValueError(f"{chain}: two tokens share a contract")

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    async def tip(self) -> BlockRef:
        """The provider's latest block (one call, so number and hash cannot disagree)."""
        ref: BlockRef = await self._rpc.call(
            "eth_getBlockByNumber", ["latest", False], parse=_latest
        )
        return ref

    async def block(self, height: int) -> Block:
        """Native and token transfers of the block at ``height``; BlockNotFound above the tip,
        ChainUnavailable when no provider answers."""
        if height < 0:
            raise ValueError("height must be >= 0")
        full = await self._rpc.call("eth_getBlockByNumber", [hex(height), True], parse=_full_block)
        if full is None:
            raise BlockNotFound(f"{self.chain} has no block {height} yet", chain=self.chain)
        transfers: list[tuple[int, Transfer]] = []
        succeeded = await self._succeeded(full)
        for tx in full.value_txs:
            if tx.hash in succeeded:
                transfer = Transfer(self.chain, tx.hash, NATIVE_POSITION, tx.to, tx.value_wei)
                transfers.append((tx.index, transfer))
        transfers.extend(await self._token_transfers(full.ref))
        transfers.sort(key=lambda item: (item[0], item[1].position))
        return Block(full.ref, tuple(transfer for _, transfer in transfers))

    async def pending(self) -> Mempool:
        """Nothing, and nothing to conclude from it (see the module docstring)."""
        return Mempool(complete=False)

    async def _succeeded(self, full: _FullBlock) -> frozenset[str]:
        """The hashes of the block's value transactions whose receipt says success."""
        if not full.value_txs:
            return frozenset()
        block_hash = full.ref.hash

        def statuses(result: Any) -> dict[str, bool]:
            return _statuses(result, block_hash)

        try:
            ok = await self._rpc.call("eth_getBlockReceipts", [block_hash], parse=statuses)
        except RpcCallRejected as exc:
            if exc.rpc_code != _METHOD_NOT_FOUND:
                raise
            ok = await self._receipts_one_by_one(full)
        missing = [tx.hash for tx in full.value_txs if tx.hash not in ok]
        if missing:  # a provider that lost the block between the two calls
            raise BlockNotFound(f"{self.chain}: no receipt for {missing[0]}", chain=self.chain)
        return frozenset(h for h, success in ok.items() if success)

    async def _receipts_one_by_one(self, full: _FullBlock) -> dict[str, bool]:
        block_hash = full.ref.hash
        receipts = await self._rpc.batch(
            [("eth_getTransactionReceipt", [tx.hash]) for tx in full.value_txs],
            parse=lambda receipt: _statuses([receipt], block_hash),
        )
        ok: dict[str, bool] = {}
        for receipt in receipts:
            if isinstance(receipt, RpcCallRejected):
                raise receipt
            ok.update(receipt)
        return ok

    async def _token_transfers(self, ref: BlockRef) -> list[tuple[int, Transfer]]:
        if not self._tokens:
            return []
        query = {
            "blockHash": ref.hash,
            "address": [token.contract for token in self._tokens.values()],
            "topics": [TRANSFER_TOPIC],
        }

        def logs(result: Any) -> list[tuple[int, Transfer]]:
            return self._logs(result, ref.hash)

        found: list[tuple[int, Transfer]] = await self._rpc.call("eth_getLogs", [query], parse=logs)
        return found

    def _logs(self, result: Any, block_hash: str) -> list[tuple[int, Transfer]]:
        if not isinstance(result, list):
            raise MalformedResponse("eth_getLogs returned no list")
        out: list[tuple[int, Transfer]] = []
        for log in result:
            if log.get("removed") is True:
                continue
            if hash32(log["blockHash"]) != block_hash:
                raise MalformedResponse("a log of another block")
            token = self._tokens.get(str(log["address"]).lower())
            topics = log["topics"]
            # ERC-721 shares the event signature with a fourth (indexed token id) topic.
            if token is None or len(topics) != 3 or str(topics[0]).lower() != TRANSFER_TOPIC:
                continue
            to = _ADDRESS_TOPIC.fullmatch(str(topics[2]))
            data = str(log["data"])
            if to is None or _QUANTITY.fullmatch(data) is None or len(data) != 66:
                continue  # not a standard ERC-20 Transfer: nothing we can read as a payment
            amount = int(data, 16)
            if amount == 0:
                continue
            transfer = Transfer(
                token.coin,
                hash32(log["transactionHash"]),
                quantity(log["logIndex"]),
                eip55("0x" + to["address"]),
                amount,
            )
            out.append((quantity(log["transactionIndex"]), transfer))
        return out


def hash32(value: object) -> str:
    """A 32-byte hash as the node prints it (``0x`` and 64 hex digits), lower-cased."""
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise MalformedResponse(f"not a 32-byte hash: {value!r:.80}")
    return value.lower()


def quantity(value: object) -> int:
    """A JSON-RPC hex quantity (``0x1f``) as an integer."""
    if not isinstance(value, str) or _QUANTITY.fullmatch(value) is None:
        raise MalformedResponse(f"not a hex quantity: {value!r:.80}")
    return int(value, 16)


def _block_ref(result: Any) -> BlockRef | None:
    if result is None:
        return None
    return BlockRef(
        quantity(result["number"]), hash32(result["hash"]), hash32(result["parentHash"])
    )


def _latest(result: Any) -> BlockRef:
    ref = _block_ref(result)
    if ref is None:
        raise MalformedResponse("no latest block")
    return ref


def _full_block(result: Any) -> _FullBlock | None:
    ref = _block_ref(result)
    if ref is None:
        return None
    txs: list[_Tx] = []
    for tx in result["transactions"]:
        if not isinstance(tx, dict):
            raise MalformedResponse("a block without full transactions")
        to, value = tx.get("to"), quantity(tx["value"])
        if to is None or value == 0:
            continue  # a contract creation, or a call that moves no ether
        if not isinstance(to, str) or _ADDRESS.fullmatch(to) is None:
            raise MalformedResponse(f"not an address: {to!r:.80}")
        txs.append(_Tx(hash32(tx["hash"]), quantity(tx["transactionIndex"]), eip55(to), value))
    return _FullBlock(ref, tuple(txs))


def _statuses(result: Any, block_hash: str) -> dict[str, bool]:
    """Transaction hash -> succeeded, from receipts of the block ``block_hash``."""
    if not isinstance(result, list):
        raise MalformedResponse("receipts are not a list")
    out: dict[str, bool] = {}
    for receipt in result:
        if receipt is None:
            continue  # a receipt the provider does not have (yet)
        if hash32(receipt["blockHash"]) != block_hash:
            raise MalformedResponse("a receipt of another block")
        # Receipts before Byzantium (2017) carry a state root instead: those all succeeded.
        status = receipt.get("status")
        out[hash32(receipt["transactionHash"])] = status is None or quantity(status) == 1
    return out
