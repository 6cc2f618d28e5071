"""Sweeps of a UTXO chain (Bitcoin, Litecoin, Dogecoin, Bitcoin Cash): signed here, sent over
Bitcoin Core's RPC.

One transaction sweeps a batch of payments (``batch_limit`` of them): it spends every confirmed,
unspent output paying each payment's address, and pays

* each merchant address its payments' part: what arrived, less the commission written on the
  payment, less the payment's share of the network fee (several payments to one merchant
  address share one output);
* the platform address ONE output with the summed commission.

**Fee.** ``estimatesmartfee`` for ``fee_target_blocks``; where the node has no estimate yet
(regtest, a fresh node) ``fallback_fee_rate``; never below the node's ``mempoolminfee`` or
``minrelaytxfee``. The size is the transaction's virtual size with every signature at its
largest (signatures are ground to low R, so 71 bytes with the sighash type), known before
signing because amounts do not change a transaction's size. The fee is split across the
batch's payments in proportion to what each merchant is owed before the fee (so every merchant
of a batch pays the same fraction), exactly in integers by largest remainder
(:func:`split_fee`), and returned per payment in ``SignedSweep.fees``.

**Outputs to spend** come from what the scanner stored for the payment addresses (each output
already matched to its payment, with its block), each checked with ``gettxout`` (including the
mempool) to be unspent, confirmed and of the stored amount: one JSON-RPC batch, however large
the UTXO set (``scantxoutset`` reads the whole set per call and runs one at a time). Outputs
still in the mempool are left for a later sweep.

**Signing** is local and deterministic: the key of each payment address is derived from the
installation's seed at the moment of signing (``HDRoot.private_key`` on the chain's network),
checked to be the key of that address, and signs with RFC 6979 nonces; so the same inputs give
the same bytes. Inputs and outputs are ordered by BIP69. What is signed depends on the chain:

* BTC and LTC payment addresses are P2WPKH: BIP143 digests, signatures in the witness; sequence
  ``0xfffffffd`` signals replaceability (BIP125) for a later fee bump spending the same inputs.
* DOGE addresses are P2PKH: the legacy digest, signature and key in the input script.
* BCH addresses are P2PKH written as CashAddr, and Bitcoin Cash accepts only signatures with
  ``SIGHASH_FORKID`` (replay protection since the 2017 split): the BIP143 digest (which commits
  to the amount spent) with the hash type ``ALL | FORKID`` (0x41, fork id 0) in the preimage and
  after the signature. A signature without it is invalid there, and this one is invalid on
  Bitcoin, so a sweep can never be replayed across the two.

DOGE and BCH have no BIP125: their inputs use sequence ``0xffffffff``. Bitcoin Cash Node has no
``estimatesmartfee``; where a node lacks it the chain's fallback rate applies (1 sat/byte on
BCH, the node's floor permitting; 0.01 DOGE per kB on Dogecoin, its recommended fee).

**Library: embit** (0.8, MIT, pure Python; it loads the libsecp256k1 it ships, or the
system's, through ctypes, and falls back to pure Python). It does exactly what is needed here
(transaction serialisation, BIP143 sighash, low-R ECDSA) without a wallet or a database of its
own, and its address handling is not needed: scripts come from ``wallets.output_script`` for
any network. python-bitcointx needs a system libsecp256k1 (no wheel carries one);
bitcoinlib brings its own wallet database and service layer (python-stack.md).

**The chain's providers** are asked four things (``utxo_node.UtxoNode``): which stored outputs
are unspent, the fee rate, to relay, how deep a sweep is. Over Bitcoin Core's JSON-RPC
(``utxo_node.JsonRpcNode``): the checks above, ``estimatesmartfee``; **broadcast** is
``sendrawtransaction``, "already in the block chain" (``-27``) and "already known / in the
mempool" count as sent. **Confirmations** come from ``getrawtransaction`` (in the mempool, or
on a node with ``-txindex``), else from ``gettxout`` of the sweep's outputs (a node without
``-txindex`` serves confirmed transactions only through their unspent outputs: once every output
of a sweep is spent before it reaches the policy's depth, it reads as unknown and is reported
stuck; run the sweeping node with ``-txindex=1`` to rule that out). Over an Esplora (BTC,
``KEEL_COINPAY_BTC_API=esplora``): ``esplora.EsploraNode`` (``POST /tx``,
``GET /tx/:txid/status``; ADR 0024).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from embit import ec, script
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay.assets import COINS
from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.config import ChainConfig
from keel.coinpay.chains.esplora import EsploraNode
from keel.coinpay.chains.providers import send_breaker
from keel.coinpay.chains.rest import RestClient
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, RpcClient
from keel.coinpay.chains.scanner import mined_transfers
from keel.coinpay.chains.utxo import TRANSIENT_CODES
from keel.coinpay.chains.utxo_node import JsonRpcNode, OutputRef, UtxoNode
from keel.coinpay.errors import InvalidAddress, InvalidChainConfig
from keel.coinpay.wallets import UTXO_FAMILIES, Family, HDRoot, Network, output_script
from keel.core.logging import get_logger

__all__ = [
    "DEFAULT_BATCH_LIMIT",
    "DEFAULT_FALLBACK_FEE_RATE",
    "NotSweepable",
    "UtxoSender",
    "forkid_digest",
    "open_utxo_sender",
    "split_fee",
]

log = get_logger("keel.coinpay.utxo_sender")

DEFAULT_BATCH_LIMIT: Final = 50
# Base units per 1,000 virtual bytes when the node has no estimate: Litecoin Core's -mintxfee
# (0.0001 LTC/kvB), ten times Bitcoin Core's relay minimum.
DEFAULT_FALLBACK_FEE_RATE: Final = 10_000
# Per chain where it differs: BCH 1 sat/byte (blocks are not full); DOGE 0.01 DOGE/kB, the fee
# Dogecoin Core recommends (its relay floor is a tenth of that).
FALLBACK_FEE_RATES: Final = {"BCH": 1_000, "DOGE": 1_000_000}
DEFAULT_FEE_TARGET_BLOCKS: Final = 6
# Each chain's -dustrelayfee default (base units per kvB): an output worth less than spending
# it costs at this rate is not relayed.
DUST_RELAY_FEE: Final = {"BTC": 3_000, "LTC": 30_000, "BCH": 3_000}
# Dogecoin Core's soft dust limit (0.01 DOGE): a fixed amount, not a rate; below it an output
# costs an extra fee of that much to relay.
DOGE_DUST_LIMIT: Final = 1_000_000
SEQUENCE: Final = 0xFFFFFFFD  # final for locktime, replaceable (BIP125)
FINAL_SEQUENCE: Final = 0xFFFFFFFF  # chains without BIP125
# The hash type Bitcoin Cash signs with: SIGHASH_ALL | SIGHASH_FORKID, fork id 0.
SIGHASH_ALL_FORKID: Final = 0x41

# Serialised sizes (bytes) for the virtual size: version, locktime; an input without its
# witness (outpoint 36, empty script 1, sequence 4); a P2WPKH witness at its largest (item
# count, 72-byte signature with its sighash type... ground to at most 71, pushed with its
# length, and the 33-byte compressed key); segwit's marker and flag.
# A legacy P2PKH input: outpoint, script length, the script (signature push, signature with its
# hash type at its largest, key push, key), sequence.
_SEGWIT_FAMILIES: Final = frozenset({Family.BTC, Family.LTC})  # P2WPKH payment addresses
_TX_FIXED, _INPUT, _P2WPKH_WITNESS, _SEGWIT_MARKER = 8, 41, 1 + 1 + 71 + 1 + 33, 2
_P2PKH_INPUT: Final = 36 + 1 + (1 + 71 + 1 + 33) + 4
_WITNESS_SCALE = 4


class NotSweepable(Exception):
    """A batch cannot be signed as asked (nothing confirmed to spend yet, an output below dust,
    a key that is not the address's): the sweeper records it and tries again next round."""


@dataclass(frozen=True, slots=True)
class _Coin:
    """One confirmed, unspent output paying a payment's address."""

    payment_id: str
    txid: str
    vout: int
    amount: int
    script: bytes


def split_fee(fee: int, weights: Mapping[str, int]) -> dict[str, int]:
    """``fee`` base units split in proportion to ``weights`` (each ≥ 0, not all 0), exactly:
    every share is the floor of its exact proportion or one more, and they add up to ``fee``
    (largest remainder; ties to the key that sorts first). Raises ValueError otherwise."""
    total = sum(weights.values())
    if fee < 0 or total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError("the fee must be >= 0 and the weights >= 0 with a positive sum")
    shares = {key: fee * weight // total for key, weight in weights.items()}
    left = fee - sum(shares.values())
    by_remainder = sorted(weights, key=lambda key: (-(fee * weights[key] % total), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares


class UtxoSender:
    """:class:`~keel.coinpay.chains.base.ChainSender` of one UTXO chain (module docstring).

    ``rpc`` reaches the chain's providers (the source's URLs): an RpcClient of Bitcoin Core
    nodes, or any :class:`~keel.coinpay.chains.utxo_node.UtxoNode` (an Esplora's
    :class:`~keel.coinpay.chains.esplora.EsploraNode`); ``sessions`` reads what the scanner
    stored; ``keys`` returns the installation's HD root (``Custody.root``); ``network`` is the
    chain's (``KEEL_COINPAY_<CHAIN>_NETWORK``). Rates are in base units per 1,000 vbytes.
    """

    def __init__(
        self,
        chain: str,
        rpc: RpcClient | UtxoNode,
        sessions: async_sessionmaker[AsyncSession],
        keys: Callable[[], Awaitable[HDRoot]],
        *,
        network: Network = Network.MAINNET,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        fallback_fee_rate: int | None = None,
        fee_target_blocks: int = DEFAULT_FEE_TARGET_BLOCKS,
    ) -> None:
        coin = COINS.get(chain)
        if coin is None or coin.family not in UTXO_FAMILIES:
            raise ValueError(f"{chain} is not a UTXO chain")
        if not 1 <= batch_limit <= DEFAULT_BATCH_LIMIT:
            raise ValueError(f"batch_limit must be 1 to {DEFAULT_BATCH_LIMIT}")
        if fallback_fee_rate is None:
            fallback_fee_rate = FALLBACK_FEE_RATES.get(chain, DEFAULT_FALLBACK_FEE_RATE)
        if fallback_fee_rate < 1 or fee_target_blocks < 1:
            raise ValueError("fallback_fee_rate and fee_target_blocks must be at least 1")
        self.chain = chain
        self.batch_limit = batch_limit
        self.network = network
        self._family = coin.family
        self._node: UtxoNode = (
            JsonRpcNode(rpc, coin.decimals) if isinstance(rpc, RpcClient) else rpc
        )
        self._sessions = sessions
        self._keys = keys
        self._fallback = fallback_fee_rate
        self._target = fee_target_blocks
        self._segwit = coin.family in _SEGWIT_FAMILIES

    async def aclose(self) -> None:
        """Close the providers' connections."""
        await self._node.aclose()

    # ChainSender ------------------------------------------------------------------------------

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        """One signed transaction sweeping ``inputs`` (module docstring); NotSweepable when
        the batch cannot be paid as asked, InvalidAddress for an address of another network,
        ChainUnavailable when no node answers."""
        if not inputs or len(inputs) > self.batch_limit:
            raise ValueError(f"a sweep takes 1 to {self.batch_limit} payments")
        if len({i.payment_id for i in inputs}) != len(inputs):
            raise ValueError("a payment appears twice in one sweep")
        platform = output_script(self._family, platform_address, self.network)
        merchants = {
            i.payment_id: output_script(self._family, i.merchant_address, self.network)
            for i in inputs
        }
        left_out: dict[str, str] = {}
        keys = await self._payment_keys(inputs, left_out)
        if len(left_out) == len(inputs):
            raise NotSweepable("; ".join(f"payment {p}: {why}" for p, why in left_out.items()))
        coins = await self._spendable([i for i in inputs if i.payment_id not in left_out])
        held = {
            i.payment_id: sum(c.amount for c in coins if c.payment_id == i.payment_id)
            for i in inputs
        }
        for i in inputs:
            if i.payment_id not in left_out and (
                held[i.payment_id] < i.received or i.commission > i.received
            ):
                left_out[i.payment_id] = (
                    f"{held[i.payment_id]} of its {i.received} base units are confirmed and "
                    "unspent at its address"
                )
        # One payment that cannot go yet does not hold back the others of the batch.
        inputs = tuple(i for i in inputs if i.payment_id not in left_out)
        if not inputs:
            raise NotSweepable("; ".join(f"payment {p}: {why}" for p, why in left_out.items()))
        coins = [c for c in coins if c.payment_id not in left_out]
        owed = {i.payment_id: held[i.payment_id] - i.commission for i in inputs}
        commission = sum(i.commission for i in inputs)

        outputs = _outputs(merchants, owed, platform, commission)  # amounts before the fee
        size = _vsize(len(coins), [s for s, _ in outputs], segwit=self._segwit)
        fee = _fee(await self._node.fee_rate(self._target, self._fallback), size)
        shares = split_fee(fee, owed)
        paid = {pid: owed[pid] - shares[pid] for pid in owed}
        outputs = _outputs(merchants, paid, platform, commission)
        for out_script, amount in outputs:
            if amount < self._dust(out_script):
                raise NotSweepable(
                    f"an output of {amount} base units is dust on {self.chain} (the fee is {fee})"
                )
        tx = _signed(self._family, coins, outputs, keys)
        return SignedSweep(tx.txid().hex(), tx.serialize().hex(), shares, left_out)

    async def broadcast(self, raw: str) -> None:
        """Send ``raw``; one the node already has (in its mempool or a block) counts as sent."""
        await self._node.broadcast(raw)

    async def confirmations(self, tx_hash: str) -> int | None:
        """How deep ``tx_hash`` is: 0 in the mempool, None when the node knows it nowhere."""
        return await self._node.confirmations(tx_hash)

    # Signing ----------------------------------------------------------------------------------

    async def _payment_keys(
        self, inputs: Sequence[SweepInput], left_out: dict[str, str]
    ) -> dict[str, ec.PrivateKey]:
        """Each payment address's key, derived now and checked against the address (a payment
        created on another network, or with another seed, is left out, not signed for)."""
        root = await self._keys()
        keys: dict[str, ec.PrivateKey] = {}
        for i in inputs:
            secret = root.private_key(self._family, i.derivation_index, self.network)
            key = ec.PrivateKey(secret)
            expected = output_script(self._family, i.address, self.network)
            if _payment_script(self._family, key.get_public_key()).data != expected:
                left_out[i.payment_id] = (
                    f"index {i.derivation_index} on {self.network} is not the key of its address"
                )
                continue
            keys[i.payment_id] = key
        return keys

    async def _spendable(self, inputs: Sequence[SweepInput]) -> list[_Coin]:
        """The confirmed, unspent outputs paying the inputs' addresses (module docstring)."""
        payment_of = {i.address: i.payment_id for i in inputs}
        rows = await mined_transfers(self._sessions, self.chain, payment_of)
        seen = await self._node.unspent(
            [OutputRef(r.address, r.tx_hash, int(r.position)) for r in rows]
        )
        coins: list[_Coin] = []
        for row, utxo in zip(rows, seen, strict=True):
            if utxo is None:
                continue  # spent, or no longer on the chain
            expected = output_script(self._family, row.address, self.network)
            if utxo.depth < 1 or utxo.amount != int(row.amount) or utxo.script != expected:
                continue
            coins.append(
                _Coin(
                    payment_of[row.address], row.tx_hash, int(row.position), utxo.amount, expected
                )
            )
        return coins

    def _dust(self, out_script: bytes) -> int:
        """The smallest output the chain's nodes relay to ``out_script``."""
        if self.chain == "DOGE":
            return DOGE_DUST_LIMIT
        return _dust(out_script, DUST_RELAY_FEE[self.chain])


def open_utxo_sender(
    config: ChainConfig,
    sessions: async_sessionmaker[AsyncSession],
    keys: Callable[[], Awaitable[HDRoot]],
    *,
    platform_address: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> UtxoSender:
    """The sender of a configured UTXO chain through its providers, JSON-RPC or Esplora as
    ``config.api`` says (close with ``aclose()``). Refuses, at boot rather than at the first
    sweep, a chain with no URL and a platform address that is not of the chain's network
    (InvalidChainConfig)."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to sweep through")
    family = COINS[config.chain].family
    try:
        output_script(family, platform_address, config.network)
    except InvalidAddress as exc:
        raise InvalidChainConfig(
            f"{config.chain}: the platform wallet is not an address of its {config.network} "
            f"({exc.detail})"
        ) from None
    node: RpcClient | UtxoNode
    if config.api == "esplora":
        rest = RestClient(
            config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, breaker=send_breaker
        )
        node = EsploraNode(config.chain, rest, network=config.network)
    else:
        node = RpcClient(
            config.chain,
            config.rpc_urls,
            timeout_seconds=timeout_seconds,
            transient_codes=TRANSIENT_CODES,
            breaker=send_breaker,
        )
    return UtxoSender(config.chain, node, sessions, keys, network=config.network)


def _outputs(
    merchants: Mapping[str, bytes], amounts: Mapping[str, int], platform: bytes, commission: int
) -> list[tuple[bytes, int]]:
    """One output per merchant script (its payments' amounts added) and one to the platform,
    in BIP69 order (amount, then script)."""
    by_script: dict[bytes, int] = {}
    for payment_id, amount in amounts.items():
        by_script[merchants[payment_id]] = by_script.get(merchants[payment_id], 0) + amount
    outputs = list(by_script.items())
    if commission:
        outputs.append((platform, commission))
    return sorted(outputs, key=lambda out: (out[1], out[0]))


def _vsize(inputs: int, scripts: Iterable[bytes], *, segwit: bool = True) -> int:
    """Virtual size of a transaction of ``inputs`` P2WPKH (``segwit``) or P2PKH inputs paying
    ``scripts``, every signature at its largest."""
    outs = list(scripts)
    per_input = _INPUT if segwit else _P2PKH_INPUT
    base = _TX_FIXED + _varint_size(inputs) + inputs * per_input + _varint_size(len(outs))
    base += sum(8 + _varint_size(len(s)) + len(s) for s in outs)
    if not segwit:
        return base
    weight = base * _WITNESS_SCALE + _SEGWIT_MARKER + inputs * _P2WPKH_WITNESS
    return math.ceil(weight / _WITNESS_SCALE)


def _fee(rate_per_kvb: int, vsize: int) -> int:
    return math.ceil(rate_per_kvb * vsize / 1000)


def _dust(out_script: bytes, dust_fee_per_kvb: int) -> int:
    """Bitcoin Core's GetDustThreshold: the cost of the output plus the input spending it."""
    spend = 67 if out_script[:1] == b"\x00" or 0x51 <= out_script[0] <= 0x60 else 148
    size = 8 + _varint_size(len(out_script)) + len(out_script) + spend
    return dust_fee_per_kvb * size // 1000


def _varint_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def _payment_script(family: Family, public: ec.PublicKey) -> script.Script:
    """The output script of a payment address of ``family`` with key ``public``."""
    return script.p2wpkh(public) if family in _SEGWIT_FAMILIES else script.p2pkh(public)


def _signed(
    family: Family,
    coins: Sequence[_Coin],
    outputs: Sequence[tuple[bytes, int]],
    keys: Mapping[str, ec.PrivateKey],
) -> Any:
    """The transaction spending ``coins`` to ``outputs``, signed as ``family``'s chain wants
    (module docstring)."""
    segwit = family in _SEGWIT_FAMILIES
    sequence = SEQUENCE if segwit else FINAL_SEQUENCE
    ordered = sorted(coins, key=lambda c: (c.txid, c.vout))  # BIP69
    tx = Transaction(
        version=1 if family is Family.DOGE else 2,
        vin=[TransactionInput(bytes.fromhex(c.txid), c.vout, sequence=sequence) for c in ordered],
        vout=[TransactionOutput(amount, script.Script(s)) for s, amount in outputs],
        locktime=0,
    )
    for index, coin in enumerate(ordered):
        key = keys[coin.payment_id]
        public = key.get_public_key()
        # A P2WPKH input (BIP143) and a BCH one sign the P2PKH script of the key as their code.
        code = script.p2pkh(public)
        if segwit:
            digest = tx.sighash_segwit(index, code, coin.amount)
            signature = key.sign(digest).serialize() + bytes([SIGHASH.ALL])
            tx.vin[index].witness = script.Witness([signature, public.sec()])
            continue
        if family is Family.BCH:
            digest = forkid_digest(tx, index, code, coin.amount)
            hash_type = SIGHASH_ALL_FORKID
        else:
            digest = tx.sighash_legacy(index, code)
            hash_type = SIGHASH.ALL
        signature = key.sign(digest).serialize() + bytes([hash_type])
        tx.vin[index].script_sig = script.Script(_push(signature) + _push(public.sec()))
    return tx


def forkid_digest(
    tx: Any, index: int, script_code: script.Script, amount: int, hash_type: int = 0x41
) -> bytes:
    """The digest a Bitcoin Cash input signs: BIP143's preimage (every input's outpoint and
    sequence, this input's script code and amount, every output) with ``hash_type``
    (``ALL | FORKID`` = 0x41) in its last four bytes. With hash type 1 it is BIP143's own."""
    spent = tx.vin[index]
    preimage = b"".join(
        [
            tx.version.to_bytes(4, "little"),
            hashlib.sha256(tx.hash_prevouts()).digest(),
            hashlib.sha256(tx.hash_sequence()).digest(),
            bytes(reversed(spent.txid)),
            spent.vout.to_bytes(4, "little"),
            script_code.serialize(),
            amount.to_bytes(8, "little"),
            spent.sequence.to_bytes(4, "little"),
            hashlib.sha256(tx.hash_outputs()).digest(),
            tx.locktime.to_bytes(4, "little"),
            hash_type.to_bytes(4, "little"),
        ]
    )
    return hashlib.sha256(hashlib.sha256(preimage).digest()).digest()


def _push(data: bytes) -> bytes:
    """A script push of ``data`` (under 76 bytes: signatures and keys)."""
    if len(data) >= 0x4C:
        raise ValueError("a direct push holds at most 75 bytes")
    return bytes([len(data)]) + data
