"""A UTXO chain (Bitcoin) read and swept over the Esplora REST API (Blockstream's electrs,
mempool.space), through a :class:`~keel.coinpay.chains.rest.RestClient` of its providers.

:class:`EsploraSource` (the :class:`~keel.coinpay.chains.base.ChainSource`):

* ``tip()``: ``GET /blocks/tip/hash`` then ``GET /block/:hash`` (its ``height`` and
  ``previousblockhash``): two requests that cannot disagree on which block they describe.
* ``block(h)``: ``GET /block-height/:h`` (the hash, as text; 404 "Block not found" above the
  tip: BlockNotFound) then ``GET /block/:hash/raw``, the whole block in one request, parsed here
  with embit. Its header must hash to the hash asked for and its transactions to the header's
  merkle root, so a provider may serve a stale block but never a wrong, cut or damaged one.
* ``pending()``: ``GET /mempool/txids``, then ``GET /tx/:txid/hex`` of transactions not seen
  before, at most ``max_fetch`` per poll and ``parallel`` at a time (see :class:`EsploraSource`).
* Once per source, ``GET /block-height/0``: a genesis block known to be another network's
  refuses the configuration (InvalidChainConfig), as UtxoSource's ``getblockchaininfo`` does.

Outputs become transfers as :class:`~keel.coinpay.chains.utxo.UtxoSource`'s do: each output
paying an address (``wallets.script_address`` on the chain's network: the canonical form the
payment was created with) with a non-zero amount, coinbase outputs left out, position the
output index. Amounts are the serialised 64-bit integers: exact by construction.

:class:`EsploraNode` (the sweep side, a :class:`~keel.coinpay.chains.utxo_node.UtxoNode`):
``GET /address/:address/utxo`` per payment address (the address's unspent outputs, mempool
spends already taken out), ``GET /fee-estimates``, ``POST /tx`` (hex body; a 400 saying the
node has it already is success), ``GET /tx/:txid/status`` against ``GET /blocks/tip/height``.

Litecoin's MWEB blocks (mainnet and testnet since 2022) carry extension data embit does not
read: ``sources.open_source`` refuses LTC over Esplora except on regtest.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, Final, TypeVar

import structlog
from embit import compact
from embit.transaction import Transaction

from keel.coinpay.assets import COINS
from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.mempool import MempoolCache
from keel.coinpay.chains.rest import RestClient, json_body, text_body
from keel.coinpay.chains.rpc import MalformedResponse
from keel.coinpay.chains.utxo_node import OutputRef, Unspent, already_known
from keel.coinpay.errors import (
    BlockNotFound,
    ChainUnavailable,
    InvalidChainConfig,
    RestCallRejected,
)
from keel.coinpay.wallets import Network, output_script, script_address

__all__ = [
    "GENESIS",
    "MAX_PENDING_FETCH",
    "MAX_PENDING_TXS",
    "EsploraNode",
    "EsploraSource",
    "RawBlock",
    "read_block",
    "read_transaction",
]

T = TypeVar("T")

# Requests of a mempool poll: each is an HTTP round trip to (often) a public provider.
MAX_PENDING_FETCH: Final = 100
MAX_PENDING_TXS: Final = 50_000
PARALLEL: Final = 8
_HEADER_BYTES: Final = 80
_HASH: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_NULL_HASH: Final = "0" * 64
_NOT_FOUND, _BAD_REQUEST = 404, 400
# Bitcoin Core's default -minrelaytxfee (base units per 1,000 vbytes); Litecoin's is higher.
MIN_RELAY_FEE: Final = {"BTC": 1_000, "LTC": 10_000}

#: Genesis block hashes of the networks a chain may be configured for. A provider whose genesis
#: is listed under another network is refused; one not listed (a private signet) is trusted.
GENESIS: Final = {
    ("BTC", "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"): Network.MAINNET,
    ("BTC", "000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943"): Network.TESTNET,
    ("BTC", "00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043"): Network.TESTNET,
    ("BTC", "00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6"): Network.TESTNET,
    ("BTC", "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"): Network.REGTEST,
    ("LTC", "12a765e31ffd4059bada1e25190f6e98c99d9714d334efa41a195a7e7e04bfe2"): Network.MAINNET,
    ("LTC", "4966625a4b2851d9fdee139e56211a0d88575f59ed816ff5e6a63deb4e3e29a0"): Network.TESTNET,
    ("LTC", "530827f38f93b43ed12af0b3ad25a288dc02ed74d6d7857862df51fc56c416f9"): Network.REGTEST,
}

log = structlog.get_logger(__name__)


# Raw blocks and transactions -------------------------------------------------------------------


class _Exact(io.BytesIO):
    """A stream that refuses to read past its end (embit reads a short stream as zeros)."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and len(data) != size:
            raise MalformedResponse("the data ends in the middle of a field")
        return data


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block as serialised on the wire: its hash and its parent's (hex, as nodes print
    them) and its transactions (the coinbase first)."""

    hash: str
    parent_hash: str
    transactions: tuple[Any, ...]  # embit Transaction


def _display(digest: bytes) -> str:
    return digest[::-1].hex()


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def read_block(raw: bytes) -> RawBlock:
    """The block serialised in ``raw`` (80-byte header, transaction count, transactions, nothing
    after them), checked against its header's merkle root. MalformedResponse otherwise."""
    if len(raw) < _HEADER_BYTES + 1:
        raise MalformedResponse(f"a block of {len(raw)} bytes")
    header = raw[:_HEADER_BYTES]
    stream = _Exact(raw[_HEADER_BYTES:])
    try:
        count = compact.read_from(stream)
        if not 1 <= count <= len(raw) // 60:  # a transaction takes at least 60 bytes
            raise MalformedResponse(f"a block of {len(raw)} bytes cannot hold {count} transactions")
        transactions = tuple(Transaction.read_from(stream) for _ in range(count))
    except MalformedResponse:
        raise
    except Exception as exc:  # embit signals bad data with assorted types
        raise MalformedResponse(f"unreadable block: {type(exc).__name__}: {exc}"[:200]) from exc
    if stream.tell() != len(raw) - _HEADER_BYTES:
        raise MalformedResponse("bytes after the block's last transaction")
    if _merkle_root([tx.hash() for tx in transactions]) != header[36:68]:
        raise MalformedResponse("the transactions do not hash to the header's merkle root")
    if not _is_coinbase(transactions[0]):
        raise MalformedResponse("a block whose first transaction is no coinbase")
    return RawBlock(_display(_sha256d(header)), _display(header[4:36]), transactions)


def read_transaction(raw: bytes) -> Any:
    """The one transaction serialised in ``raw`` (an embit Transaction); MalformedResponse for
    anything else (cut short, trailing bytes, garbage)."""
    stream = _Exact(raw)
    try:
        tx = Transaction.read_from(stream)
    except MalformedResponse:
        raise
    except Exception as exc:
        raise MalformedResponse(f"unreadable transaction: {type(exc).__name__}") from exc
    if stream.tell() != len(raw):
        raise MalformedResponse("bytes after the transaction")
    return tx


def _merkle_root(hashes: Sequence[bytes]) -> bytes:
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _is_coinbase(tx: Any) -> bool:
    return len(tx.vin) == 1 and tx.vin[0].txid == bytes(32) and tx.vin[0].vout == 0xFFFFFFFF


# The source ------------------------------------------------------------------------------------


class EsploraSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of one chain over Esplora (module
    docstring). ``network`` is the chain's (``KEEL_COINPAY_<CHAIN>_NETWORK``): addresses are
    written for it, and the first ``tip()`` checks the providers' genesis block against it.

    ``pending()`` keeps the outputs of the mempool transactions it has read (dropping each once
    it leaves the mempool), so a poll costs ``GET /mempool/txids`` and at most ``max_fetch``
    transactions, ``parallel`` at a time; it holds at most ``max_txs``. A poll that could not
    read every transaction in the mempool reports ``complete=False`` (nothing is concluded from
    an absence then), and catches up over the next polls.
    """

    def __init__(
        self,
        chain: str,
        rest: RestClient,
        *,
        network: Network = Network.MAINNET,
        max_fetch: int = MAX_PENDING_FETCH,
        max_txs: int = MAX_PENDING_TXS,
        parallel: int = PARALLEL,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.chain = chain
        self.network = network
        self._family = COINS[chain].family
        self._rest = rest
        self._checked = False
        self._mempool = MempoolCache(chain, max_fetch=max_fetch, max_txs=max_txs)
        self._parallel = parallel

    async def aclose(self) -> None:
        """Close the REST client's connections."""
        await self._rest.aclose()

    async def tip(self) -> BlockRef:
        """The providers' best block; InvalidChainConfig when their genesis block is another
        network's than the one configured (checked on the first call)."""
        if not self._checked:
            await self._check_network()
        best = await self._rest.get("/blocks/tip/hash", name="GET /blocks/tip/hash", parse=_hash)

        def parse(content: bytes) -> BlockRef:
            ref = _block_ref(json_body(content))
            if ref.hash != best:
                raise MalformedResponse("GET /block/:hash answered another block")
            return ref

        try:
            return await self._rest.get(
                f"/block/{best}", name="GET /block/:hash", parse=parse, rejected=(_NOT_FOUND,)
            )
        except RestCallRejected as exc:
            # Failed over between the two requests to a provider that lacks the first's tip.
            raise ChainUnavailable(
                f"{self.chain}: providers disagree on the tip", chain=self.chain
            ) from exc

    async def _check_network(self) -> None:
        genesis = await self._rest.get(
            "/block-height/0", name="GET /block-height/:height", parse=_hash
        )
        found = GENESIS.get((self.chain, genesis))
        if found is not None and found is not self.network:
            raise InvalidChainConfig(
                f"{self.chain} is configured for {self.network} but its Esplora serves "
                f"{found}'s genesis block: set KEEL_COINPAY_{self.chain}_NETWORK to match, or "
                "point the URLs at an Esplora of that network"
            )
        if found is None:
            log.warning("esplora genesis block unknown", chain=self.chain, genesis=genesis)
        self._checked = True

    async def block(self, height: int) -> Block:
        """Every output of the block at ``height`` paying an address; BlockNotFound above the
        tip, ChainUnavailable when no provider answers (or only with a damaged block)."""
        if height < 0:
            raise ValueError("height must be >= 0")
        try:
            block_hash = await self._rest.get(
                f"/block-height/{height}",
                name="GET /block-height/:height",
                parse=_hash,
                rejected=(_NOT_FOUND,),
            )
        except RestCallRejected as exc:
            raise BlockNotFound(
                f"{self.chain} has no block {height} yet", chain=self.chain
            ) from exc

        def parse(content: bytes) -> Block:
            raw = read_block(content)
            if raw.hash != block_hash:
                raise MalformedResponse(f"GET /block/:hash/raw answered not block {height}")
            transfers = [t for tx in raw.transactions[1:] for t in self._outputs(tx)]
            return Block(BlockRef(height, raw.hash, raw.parent_hash), tuple(transfers))

        # A block reorganised away between the two requests is still served by hash (providers
        # keep stale blocks), so this is the block at ``height`` as the chain was a moment ago:
        # the scanner sees the replacement at its next look at the tip.
        try:
            return await self._rest.get(
                f"/block/{block_hash}/raw",
                name="GET /block/:hash/raw",
                parse=parse,
                rejected=(_NOT_FOUND,),
            )
        except RestCallRejected as exc:
            # Failed over between the two requests to a provider that lacks that block.
            raise BlockNotFound(f"{self.chain}: block {height} vanished", chain=self.chain) from exc

    async def pending(self) -> Mempool:
        """Outputs paying an address in mempool transactions (bounded: see the class); complete
        when every transaction in the providers' mempool was read."""
        txids: list[str] = await self._rest.get(
            "/mempool/txids", name="GET /mempool/txids", parse=_txids
        )
        fetch = self._mempool.to_fetch(txids)
        read = await _bounded(self._parallel, self._mempool_tx, fetch)
        for txid, outputs in zip(fetch, read, strict=True):
            if outputs is not None:
                self._mempool.add(txid, outputs)
        return self._mempool.view(txids)

    async def _mempool_tx(self, txid: str) -> tuple[Transfer, ...] | None:
        """A mempool transaction's transfers; None when it left the mempool or no provider
        served it (it is asked again next poll, and the poll is not complete)."""

        def parse(content: bytes) -> tuple[Transfer, ...]:
            tx = read_transaction(bytes.fromhex(text_body(content)))
            if tx.txid().hex() != txid:
                raise MalformedResponse("GET /tx/:txid/hex answered another transaction")
            return tuple(self._outputs(tx))

        try:
            return await self._rest.get(
                f"/tx/{txid}/hex", name="GET /tx/:txid/hex", parse=parse, rejected=(_NOT_FOUND,)
            )
        except (RestCallRejected, ChainUnavailable):
            return None

    def _outputs(self, tx: Any) -> list[Transfer]:
        if _is_coinbase(tx):
            return []
        txid = tx.txid().hex()
        transfers: list[Transfer] = []
        for n, out in enumerate(tx.vout):
            address = script_address(self._family, out.script_pubkey.data, self.network)
            if address is not None and out.value > 0:
                transfers.append(Transfer(self.chain, txid, n, address, out.value))
        return transfers


# The sweep side --------------------------------------------------------------------------------


class EsploraNode:
    """:class:`~keel.coinpay.chains.utxo_node.UtxoNode` over Esplora (module docstring), for
    :class:`~keel.coinpay.chains.utxo_sender.UtxoSender` on a chain whose URLs speak Esplora.
    Addresses are asked in the form written for ``network``."""

    def __init__(
        self, chain: str, rest: RestClient, *, network: Network, parallel: int = PARALLEL
    ) -> None:
        self.chain = chain
        self.network = network
        self._family = COINS[chain].family
        self._rest = rest
        self._parallel = parallel
        self._min_relay_fee = MIN_RELAY_FEE.get(chain, 1_000)

    async def aclose(self) -> None:
        await self._rest.aclose()

    async def unspent(self, outputs: Sequence[OutputRef]) -> list[Unspent | None]:
        """Each output if it is among its address's unspent outputs (one request per address,
        and one for the tip's height when any is confirmed)."""
        addresses = sorted({o.address for o in outputs})
        listed = await _bounded(self._parallel, self._utxos, addresses)
        by_outpoint: dict[tuple[str, int], tuple[int | None, int]] = {}
        for utxos in listed:
            by_outpoint.update(utxos)
        tip = None
        if any(height is not None for height, _ in by_outpoint.values()):
            tip = await self._tip_height()
        found: list[Unspent | None] = []
        for o in outputs:
            entry = by_outpoint.get((o.txid, o.vout))
            if entry is None:
                found.append(None)
                continue
            height, amount = entry
            depth = 0 if height is None or tip is None else max(tip - height + 1, 1)
            script = output_script(self._family, o.address, self.network)
            found.append(Unspent(depth, amount, script))
        return found

    async def _utxos(self, address: str) -> dict[tuple[str, int], tuple[int | None, int]]:
        return await self._rest.get(
            f"/address/{address}/utxo", name="GET /address/:address/utxo", parse=_utxo_list
        )

    async def fee_rate(self, target_blocks: int, fallback: int) -> int:
        """The estimate for the first target at or beyond ``target_blocks`` (sat/vB, as
        ``GET /fee-estimates`` writes it, rounded up per 1,000 vbytes), else ``fallback``;
        never below the chain's default minimum relay fee."""
        estimates = await self._rest.get(
            "/fee-estimates", name="GET /fee-estimates", parse=_fee_estimates
        )
        targets = sorted(t for t in estimates if t >= target_blocks)
        rate = fallback
        if targets:
            per_vbyte = estimates[targets[0]]
            rate = int((per_vbyte * 1000).to_integral_value(rounding=ROUND_CEILING))
        return max(rate, self._min_relay_fee)

    async def broadcast(self, raw: str) -> None:
        """``POST /tx``; a 400 whose text says the node has the transaction already (in its
        mempool or a block) counts as sent, any other refusal raises RestCallRejected."""
        try:
            await self._rest.post(
                "/tx", raw.encode(), name="POST /tx", parse=_hash, rejected=(_BAD_REQUEST,)
            )
        except RestCallRejected as exc:
            if already_known(exc.message) or '"code":-27' in exc.message.replace(" ", ""):
                return
            raise

    async def confirmations(self, tx_hash: str) -> int | None:
        """``GET /tx/:txid/status`` against the tip's height; an unconfirmed one is asked for
        by ``GET /tx/:txid/hex`` (Esplora answers an unknown transaction's status as merely
        unconfirmed): 0 when it is in the mempool, None when it is nowhere."""
        try:
            height = await self._rest.get(
                f"/tx/{tx_hash}/status",
                name="GET /tx/:txid/status",
                parse=_tx_status,
                rejected=(_NOT_FOUND,),
            )
        except RestCallRejected:
            return None  # some Esploras answer an unknown transaction 404
        if height is not None:
            return max(await self._tip_height() - height + 1, 1)
        try:
            await self._rest.get(
                f"/tx/{tx_hash}/hex",
                name="GET /tx/:txid/hex",
                parse=text_body,
                rejected=(_NOT_FOUND,),
            )
        except RestCallRejected:
            return None
        return 0

    async def _tip_height(self) -> int:
        return await self._rest.get(
            "/blocks/tip/height", name="GET /blocks/tip/height", parse=_height
        )


# Readers of Esplora's answers --------------------------------------------------------------------


def _hash(content: bytes) -> str:
    value = text_body(content)
    if _HASH.fullmatch(value) is None:
        raise MalformedResponse(f"not a block or transaction hash: {value[:80]!r}")
    return value


def _height(content: bytes) -> int:
    value = text_body(content)
    if not value.isdigit() or len(value) > 10:
        raise MalformedResponse(f"not a height: {value[:40]!r}")
    return int(value)


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"{what} {value!r:.40}")
    return value


def _block_ref(body: Any) -> BlockRef:
    if not isinstance(body, dict):
        raise MalformedResponse("a block that is not an object")
    height = _int(body["height"], "block height")
    parent = body.get("previousblockhash") or (_NULL_HASH if height == 0 else None)
    return BlockRef(height, _hash(str(body["id"]).encode()), _hash(str(parent).encode()))


def _txids(content: bytes) -> list[str]:
    body = json_body(content)
    if not isinstance(body, list):
        raise MalformedResponse("GET /mempool/txids returned no list")
    return [_hash(str(txid).encode()) for txid in body]


def _utxo_list(content: bytes) -> dict[tuple[str, int], tuple[int | None, int]]:
    body = json_body(content)
    if not isinstance(body, list):
        raise MalformedResponse("GET /address/:address/utxo returned no list")
    found: dict[tuple[str, int], tuple[int | None, int]] = {}
    for utxo in body:
        status = utxo["status"]
        height = _int(status["block_height"], "block height") if status["confirmed"] else None
        txid = _hash(str(utxo["txid"]).encode())
        found[(txid, _int(utxo["vout"], "output index"))] = (height, _int(utxo["value"], "value"))
    return found


def _fee_estimates(content: bytes) -> dict[int, Decimal]:
    body = json_body(content)
    if not isinstance(body, dict):
        raise MalformedResponse("GET /fee-estimates returned no object")
    rates: dict[int, Decimal] = {}
    for target, rate in body.items():
        value = Decimal(rate) if isinstance(rate, int | Decimal) else None
        if value is None or not value.is_finite() or value < 0 or not str(target).isdigit():
            raise MalformedResponse(f"fee estimate {target!r:.20}: {rate!r:.20}")
        rates[int(target)] = value
    return rates


def _tx_status(content: bytes) -> int | None:
    """The block height of a confirmed transaction, None for an unconfirmed (or unknown) one."""
    body = json_body(content)
    if not isinstance(body, dict) or not isinstance(body.get("confirmed"), bool):
        raise MalformedResponse("a transaction status without 'confirmed'")
    if not body["confirmed"]:
        return None
    return _int(body.get("block_height"), "block height")


async def _bounded(
    parallel: int, work: Callable[[str], Awaitable[T]], items: Sequence[str]
) -> list[T]:
    """``work`` of each item, at most ``parallel`` at a time, results in order."""
    gate = asyncio.Semaphore(parallel)

    async def one(item: str) -> T:
        async with gate:
            return await work(item)

    return list(await asyncio.gather(*(one(item) for item in items)))
