"""Cardano read through Koios (REST API v1 over cardano-db-sync), block by block.

* ``tip()``: ``GET /blocks?limit=1`` (the view lists the newest block first) with the hash, the
  height and the parent's hash in one answer; ``/tip`` lacks the parent.
* ``block(h)``: ``GET /blocks?block_height=eq.h``, then, for a block with transactions,
  ``POST /block_txs`` (their hashes) and ``POST /tx_info`` with ``_assets`` (their outputs),
  ``tx_batch`` hashes a request: three requests for most blocks (an empty block needs one).
  Every answer is checked against the block asked for: a transaction count that does not match,
  or a transaction now in another block (a rollback between two requests), makes the block
  ``BlockNotFound`` for this step; the scanner asks again at its next step.
* ``pending()``: Koios lists no mempool for arbitrary addresses (only its ``/ogmios`` pass-through
  for a mempool it would have to acquire, per connection), so the answer is
  ``Mempool(complete=False)``: payments are seen when their block is, never at 0-conf.

Each output of a transaction is a transfer of its lovelace to its address (``payment_addr.bech32``
as Koios writes it: ``addr1…`` lower case, or a Byron address in base58), position its index.
Native tokens riding along (``asset_list``) are ignored: only lovelace counts towards a
payment, and the sender leaves such an output unspent (ADR 0025). A transaction whose Plutus
scripts failed (``valid_contract: false``) created none of its outputs (only its collateral
return, which pays the submitter back), so it transfers nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.chains.rpc import MalformedResponse
from keel.coinpay.errors import BlockNotFound

__all__ = ["BLOCK_FIELDS", "TX_BATCH", "KoiosSource", "block_ref", "lovelace"]

#: Transaction hashes per ``/tx_info`` request: a mainnet block holds at most a few hundred.
TX_BATCH: Final = 100
#: The ``/blocks`` columns read (PostgREST vertical filtering keeps answers small).
BLOCK_FIELDS: Final = "hash,block_height,parent_hash,abs_slot,epoch_no,tx_count"
_HASH: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_DIGITS: Final = re.compile(r"[0-9]{1,20}", re.ASCII)
_TX_INFO_FLAGS: Final = {
    "_inputs": False,
    "_metadata": False,
    "_assets": True,
    "_withdrawals": False,
    "_certs": False,
    "_scripts": False,
    "_bytecode": False,
    "_governance": False,
}


class KoiosSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of Cardano (module docstring)."""

    def __init__(
        self, client: KoiosClient, *, chain: str = "ADA", tx_batch: int = TX_BATCH
    ) -> None:
        if tx_batch < 1:
            raise ValueError("tx_batch must be at least 1")
        self.chain = chain
        self._client = client
        self._batch = tx_batch

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

    async def tip(self) -> BlockRef:
        """The newest block Koios has; ChainUnavailable when no provider answers."""
        rows = await self._client.get(
            "/blocks", {"select": BLOCK_FIELDS, "limit": "1"}, parse=_block_rows
        )
        if len(rows) != 1:
            raise BlockNotFound(f"{self.chain}: the provider lists no block", chain=self.chain)
        return block_ref(rows[0])

    async def block(self, height: int) -> Block:
        """Every output of the block at ``height`` (module docstring); BlockNotFound above the
        tip, ChainUnavailable when no provider answers."""
        if height < 0:
            raise ValueError("height must be >= 0")

        def one_block(result: Any) -> tuple[BlockRef, int]:
            rows = _block_rows(result)
            if len(rows) > 1 or (rows and block_ref(rows[0]).height != height):
                raise MalformedResponse(f"/blocks answered other blocks than {height}")
            if not rows:
                raise _NoBlock()
            return block_ref(rows[0]), _count(rows[0].get("tx_count"))

        try:
            ref, count = await self._client.get(
                "/blocks",
                {"block_height": f"eq.{height}", "select": BLOCK_FIELDS},
                parse=one_block,
            )
        except _NoBlock:
            raise BlockNotFound(
                f"{self.chain} has no block {height} yet", chain=self.chain
            ) from None
        if count == 0:
            return Block(ref, ())
        hashes = await self._client.post(
            "/block_txs", {"_block_hashes": [ref.hash]}, parse=_tx_hashes
        )
        if len(hashes) != count:
            raise BlockNotFound(
                f"{self.chain}: block {height} lists {len(hashes)} of its {count} transactions",
                chain=self.chain,
            )
        txs: dict[str, _Tx] = {}
        for start in range(0, len(hashes), self._batch):
            chunk = hashes[start : start + self._batch]
            for tx in await self._client.post(
                "/tx_info", {"_tx_hashes": chunk, **_TX_INFO_FLAGS}, parse=_txs
            ):
                txs[tx.tx_hash] = tx
        transfers: list[Transfer] = []
        for tx_hash in hashes:
            found = txs.get(tx_hash)
            if found is None or found.block_hash != ref.hash:
                raise BlockNotFound(
                    f"{self.chain}: block {height} changed while it was read", chain=self.chain
                )
            if found.valid:
                transfers.extend(
                    Transfer(self.chain, tx_hash, index, address, amount)
                    for index, address, amount in found.outputs
                    if amount
                )
        return Block(ref, tuple(transfers))

    async def pending(self) -> Mempool:
        """Koios shows no mempool of arbitrary addresses: nothing is concluded from it."""
        return Mempool(complete=False)


class _NoBlock(Exception):
    """``/blocks`` has no block at the height asked for (not a provider failure)."""


@dataclass(frozen=True, slots=True)
class _Tx:
    tx_hash: str
    block_hash: str | None
    valid: bool
    outputs: tuple[tuple[int, str, int], ...]  # (index, address, lovelace)


def block_ref(row: Any) -> BlockRef:
    """The BlockRef of a ``/blocks`` row."""
    height = _count(row.get("block_height"))
    parent = row.get("parent_hash")
    return BlockRef(height, _hash(row.get("hash")), _hash(parent))


def lovelace(value: Any) -> int:
    """An amount as Koios writes it (a decimal string of lovelace) as an int."""
    if not isinstance(value, str) or _DIGITS.fullmatch(value) is None:
        raise MalformedResponse(f"not a lovelace amount: {value!r:.40}")
    return int(value)


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"not a count: {value!r:.40}")
    return value


def _hash(value: Any) -> str:
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise MalformedResponse(f"not a block or transaction hash: {value!r:.80}")
    return value


def _rows(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise MalformedResponse("expected a list of objects")
    return result


def _block_rows(result: Any) -> list[dict[str, Any]]:
    rows = _rows(result)
    for row in rows:
        block_ref(row)
    return rows


def _tx_hashes(result: Any) -> list[str]:
    return [_hash(row.get("tx_hash")) for row in _rows(result)]


def _txs(result: Any) -> list[_Tx]:
    return [_tx(row) for row in _rows(result)]


def _tx(row: dict[str, Any]) -> _Tx:
    outputs = row.get("outputs")
    if not isinstance(outputs, list):
        raise MalformedResponse("a transaction without outputs")
    block_hash = row.get("block_hash")
    read: list[tuple[int, str, int]] = []
    for output in outputs:
        address = output["payment_addr"]["bech32"]
        if not isinstance(address, str) or not address:
            raise MalformedResponse(f"output address {address!r:.80}")
        read.append((_count(output["tx_index"]), address, lovelace(output["value"])))
    return _Tx(
        _hash(row.get("tx_hash")),
        None if block_hash is None else _hash(block_hash),
        row.get("valid_contract") is not False,
        tuple(read),
    )
