"""A UTXO chain (Bitcoin, Litecoin, Dogecoin, Bitcoin Cash) read over Bitcoin Core's JSON-RPC.

Works with any node speaking Bitcoin Core's RPC (tested against Litecoin Core 0.21 in regtest):

* ``tip()``: ``getbestblockhash`` then ``getblockheader``, two calls that cannot disagree on
  which block they describe (``getblockcount`` then ``getblockhash`` can, across a new block).
* ``block(h)``: ``getblockhash`` then ``getblock(hash, 2)``, every transaction decoded.
* ``pending()``: ``getrawmempool`` then, in one JSON-RPC batch, ``getrawtransaction(txid,
  true)`` of transactions not seen before (see :class:`UtxoSource` for the bounds).
* Once per source, ``getblockchaininfo``: the node must be on the network the chain is
  configured for (``KEEL_COINPAY_<CHAIN>_NETWORK``), or payment addresses would be written for
  one network while another is watched.

Each output paying exactly one address is a transfer (position: the output index). Outputs
without an address (``OP_RETURN``, bare multisig, Litecoin MWEB outputs, whose amounts are
hidden) are not, nor are coinbase outputs: a miner's reward is no customer payment, and it
cannot be spent for 100 blocks anyway. The address is as the node writes it, from
``scriptPubKey.address`` (Core 22 and later) or the one entry of ``scriptPubKey.addresses``
(Core 0.21, Litecoin Core, Dogecoin Core). Amounts are written in whole coins: they are read as
``Decimal`` and turned into exact base units (satoshis, litoshis), never through a float.
"""

from __future__ import annotations

import re
from typing import Any, Final

import structlog

from keel.coinpay import money
from keel.coinpay.assets import COINS
from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.mempool import MempoolCache
from keel.coinpay.chains.rpc import MalformedResponse, RpcClient
from keel.coinpay.errors import (
    BlockNotFound,
    ChainUnavailable,
    InvalidChainConfig,
    RpcCallRejected,
)
from keel.coinpay.wallets import Network
from keel.coinpay.wallets.networks import NODE_CHAINS

__all__ = ["MAX_PENDING_FETCH", "MAX_PENDING_TXS", "TRANSIENT_CODES", "UtxoSource"]

# Bitcoin Core's RPC_IN_WARMUP: the node is starting (loading blocks, verifying): ask another.
TRANSIENT_CODES: Final = (-28,)
MAX_PENDING_FETCH: Final = 500
MAX_PENDING_TXS: Final = 50_000

# RPC_INVALID_PARAMETER: "Block height out of range"; RPC_INVALID_ADDRESS_OR_KEY: "Block not
# found", "No such mempool or blockchain transaction".
_OUT_OF_RANGE: Final = -8
_NOT_FOUND: Final = -5
_HASH: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_NULL_HASH: Final = "0" * 64

log = structlog.get_logger(__name__)


class UtxoSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of one Bitcoin-Core-compatible chain.

    ``chain`` is its code in ``keel.coinpay.assets`` and the symbol of its coin; ``rpc``
    should be made with ``transient_codes=TRANSIENT_CODES``. ``network`` is the network it is
    configured for: the first ``tip()`` checks that the node answering is on it and raises
    InvalidChainConfig otherwise (None: not checked).

    ``pending()`` keeps the outputs of the mempool transactions it has decoded (dropping each
    once it leaves the mempool), so a poll costs one ``getrawmempool`` and one batch of at most
    ``max_fetch`` ``getrawtransaction`` calls, however large the mempool. It holds at most
    ``max_txs`` transactions: beyond that, new ones are seen only in their block. A mempool that
    grows faster than ``max_fetch`` per poll is caught up over several polls; Bitcoin's, at
    about 7 transactions a second, needs 100 a 15-second poll.
    """

    def __init__(
        self,
        chain: str,
        rpc: RpcClient,
        *,
        max_fetch: int = MAX_PENDING_FETCH,
        max_txs: int = MAX_PENDING_TXS,
        network: Network | None = None,
    ) -> None:
        self.chain = chain
        self.network = network
        self._network_checked = network is None
        self._rpc = rpc
        self._decimals = COINS[chain].decimals
        self._mempool = MempoolCache(chain, max_fetch=max_fetch, max_txs=max_txs)

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    async def tip(self) -> BlockRef:
        """The node's best block; InvalidChainConfig if the node is on another network than
        the one configured (checked on the first call)."""
        if not self._network_checked:
            await self._check_network()
        best: str = await self._rpc.call("getbestblockhash", [], parse=_hash)
        try:
            ref: BlockRef = await self._rpc.call("getblockheader", [best, True], parse=_block_ref)
        except RpcCallRejected as exc:
            if exc.rpc_code != _NOT_FOUND:
                raise
            # Failed over between the two calls to a node that lacks the first one's tip.
            raise ChainUnavailable(
                f"{self.chain}: nodes disagree on the tip", chain=self.chain
            ) from exc
        return ref

    async def _check_network(self) -> None:
        node_chain: str = await self._rpc.call("getblockchaininfo", [], parse=_chain_name)
        found = NODE_CHAINS.get(node_chain)
        if found is not self.network:
            raise InvalidChainConfig(
                f"{self.chain} is configured for {self.network} but its node is on "
                f"{node_chain!r}: set KEEL_COINPAY_{self.chain}_NETWORK to match the node, or "
                "point the RPC URLs at a node of that network"
            )
        self._network_checked = True

    async def block(self, height: int) -> Block:
        """Every output of the block at ``height`` paying an address; BlockNotFound above the
        tip, ChainUnavailable when no provider answers."""
        if height < 0:
            raise ValueError("height must be >= 0")
        try:
            block_hash: str = await self._rpc.call("getblockhash", [height], parse=_hash)
        except RpcCallRejected as exc:
            if exc.rpc_code != _OUT_OF_RANGE:
                raise
            raise BlockNotFound(
                f"{self.chain} has no block {height} yet", chain=self.chain
            ) from exc

        def parse(result: Any) -> Block:
            ref = _block_ref(result)
            if ref.hash != block_hash or ref.height != height:
                raise MalformedResponse(f"getblock answered another block than {height}")
            transfers: list[Transfer] = []
            for tx in result["tx"]:
                transfers.extend(self._outputs(tx))
            return Block(ref, tuple(transfers))

        # A block reorganised away between the two calls is still served by hash (nodes keep
        # stale blocks), so this is the block at ``height`` as the chain was a moment ago: the
        # scanner sees the replacement at its next look at the tip.
        try:
            block: Block = await self._rpc.call("getblock", [block_hash, 2], parse=parse)
        except RpcCallRejected as exc:
            if exc.rpc_code != _NOT_FOUND:
                raise
            # Failed over between the two calls to a node that lacks that block.
            raise BlockNotFound(f"{self.chain}: block {height} vanished", chain=self.chain) from exc
        return block

    async def pending(self) -> Mempool:
        """Outputs paying an address in mempool transactions (bounded: see the class); complete
        when every transaction in the node's mempool was read."""
        txids: list[str] = await self._rpc.call("getrawmempool", [False], parse=_txids)
        fetch = self._mempool.to_fetch(txids)
        decoded = await self._rpc.batch(
            [("getrawtransaction", [txid, True]) for txid in fetch], parse=self._mempool_tx
        )
        for txid, outputs in zip(fetch, decoded, strict=True):
            if not isinstance(outputs, RpcCallRejected):  # rejected: it left the mempool
                self._mempool.add(txid, outputs)
        return self._mempool.view(txids)

    def _mempool_tx(self, result: Any) -> tuple[Transfer, ...]:
        return tuple(self._outputs(result))

    def _outputs(self, tx: Any) -> list[Transfer]:
        txid = _hash(tx["txid"])
        if any("coinbase" in vin for vin in tx["vin"]):
            return []
        transfers: list[Transfer] = []
        for vout in tx["vout"]:
            address = _address(vout.get("scriptPubKey"))
            if address is None:
                continue
            amount = money.units_of(vout["value"], self._decimals)
            if amount == 0:
                continue
            n = vout["n"]
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise MalformedResponse(f"output index {n!r:.40}")
            transfers.append(Transfer(self.chain, txid, n, address, amount))
        return transfers


def _address(script: Any) -> str | None:
    """The one address an output pays, in either field layout; None for none or several."""
    if not isinstance(script, dict):
        return None
    address = script.get("address")
    if address is None:
        addresses = script.get("addresses")
        if not isinstance(addresses, list) or len(addresses) != 1:
            return None
        address = addresses[0]
    if not isinstance(address, str) or not address:
        raise MalformedResponse(f"output address {address!r:.80}")
    return address


def _hash(value: Any) -> str:
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise MalformedResponse(f"not a block or transaction hash: {value!r:.80}")
    return value


def _chain_name(result: Any) -> str:
    chain = result["chain"] if isinstance(result, dict) else None
    if not isinstance(chain, str) or not chain:
        raise MalformedResponse("getblockchaininfo has no chain name")
    return chain


def _txids(result: Any) -> list[str]:
    if not isinstance(result, list):
        raise MalformedResponse("getrawmempool returned no list")
    return [_hash(txid) for txid in result]


def _block_ref(result: Any) -> BlockRef:
    height = result["height"]
    if not isinstance(height, int) or isinstance(height, bool) or height < 0:
        raise MalformedResponse(f"block height {height!r:.40}")
    parent = result.get("previousblockhash", _NULL_HASH if height == 0 else None)
    return BlockRef(height, _hash(result["hash"]), _hash(parent))
