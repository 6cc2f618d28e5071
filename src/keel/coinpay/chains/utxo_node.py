"""What a UTXO sweep asks of its chain's providers, whatever they speak.

:class:`~keel.coinpay.chains.utxo_sender.UtxoSender` signs locally; it asks the chain four things
(:class:`UtxoNode`): which stored outputs are still unspent, the fee rate, to relay a
transaction, and how deep one is. :class:`JsonRpcNode` answers over Bitcoin Core's JSON-RPC;
:class:`~keel.coinpay.chains.esplora.EsploraNode` over the Esplora REST API.

"Already known" is success for a broadcast on both: a restart sends the very same bytes again
(ADR 0018). Bitcoin Core says so with ``-27`` ("Transaction already in block chain", since
Core 28 "Transaction outputs already in utxo set") for a transaction already mined, and with
"txn-already-known" / "txn-already-in-mempool" (``-26``/``-25``) for one it holds; an Esplora
relays the same texts in a 400 (``sendrawtransaction RPC error: {"code":-27,...}``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

from keel.coinpay import money
from keel.coinpay.chains.rpc import MalformedResponse, RpcClient
from keel.coinpay.errors import RpcCallRejected

__all__ = [
    "ALREADY_KNOWN",
    "MAX_SWEEP_OUTPUTS",
    "JsonRpcNode",
    "OutputRef",
    "Unspent",
    "UtxoNode",
    "already_known",
]

# A sweep pays at most one output per payment of its batch (at most 50) and one to the platform.
MAX_SWEEP_OUTPUTS: Final = 51
# RPC_VERIFY_ALREADY_IN_CHAIN (renamed RPC_VERIFY_ALREADY_IN_UTXO_SET in Core 28).
_ALREADY_IN_CHAIN: Final = -27
#: Texts of "this very transaction is already there", lower case, as nodes and Esplora write them.
ALREADY_KNOWN: Final = (
    "txn-already-known",
    "txn-already-in-mempool",
    "already in mempool",
    "transaction already in block chain",
    "transaction outputs already in utxo set",
)
_NOT_FOUND: Final = -5
_METHOD_NOT_FOUND: Final = -32601


def already_known(message: str) -> bool:
    """Whether a node's refusal of a transaction says it has that transaction already."""
    text = message.lower()
    return any(known in text for known in ALREADY_KNOWN)


@dataclass(frozen=True, slots=True)
class OutputRef:
    """One output a sweep may spend: the payment address it pays and where it is."""

    address: str
    txid: str
    vout: int


@dataclass(frozen=True, slots=True)
class Unspent:
    """An output still unspent (a mempool spend counts as spent): ``depth`` 0 in the mempool,
    ``amount`` in base units, ``script`` its scriptPubKey."""

    depth: int
    amount: int
    script: bytes


class UtxoNode(Protocol):
    """A UTXO chain's providers as a sweep sees them (module docstring)."""

    async def unspent(self, outputs: Sequence[OutputRef]) -> list[Unspent | None]:
        """Each output, in order, if it is unspent; None when spent or unknown. Raises
        ChainUnavailable when no provider answers."""
        ...

    async def fee_rate(self, target_blocks: int, fallback: int) -> int:
        """Base units per 1,000 vbytes to confirm within ``target_blocks``: the providers'
        estimate, else ``fallback``; never below what they relay."""
        ...

    async def broadcast(self, raw: str) -> None:
        """Relay ``raw`` (hex); one already known (mempool or block) counts as sent. A refusal
        raises RpcCallRejected (RestCallRejected over REST)."""
        ...

    async def confirmations(self, tx_hash: str) -> int | None:
        """How deep ``tx_hash`` is: 0 in the mempool, None when the providers know it nowhere."""
        ...

    async def aclose(self) -> None: ...


class JsonRpcNode:
    """:class:`UtxoNode` over Bitcoin Core's JSON-RPC (``utxo_sender``'s module docstring says
    which calls and why). ``decimals`` are the chain coin's (amounts come in whole coins)."""

    def __init__(self, rpc: RpcClient, decimals: int) -> None:
        self._rpc = rpc
        self._decimals = decimals

    async def aclose(self) -> None:
        await self._rpc.aclose()

    async def unspent(self, outputs: Sequence[OutputRef]) -> list[Unspent | None]:
        seen = await self._rpc.batch(
            [("gettxout", [o.txid, o.vout, True]) for o in outputs], parse=_utxo
        )
        found: list[Unspent | None] = []
        for utxo in seen:
            if isinstance(utxo, RpcCallRejected) or utxo is None:
                found.append(None)  # spent, or no longer on the chain
                continue
            depth, value, script_hex = utxo
            found.append(
                Unspent(depth, money.units_of(value, self._decimals), bytes.fromhex(script_hex))
            )
        return found

    async def fee_rate(self, target_blocks: int, fallback: int) -> int:
        try:
            estimate = await self._rpc.call("estimatesmartfee", [target_blocks], parse=_dict)
        except RpcCallRejected as exc:
            if exc.rpc_code != _METHOD_NOT_FOUND:  # Bitcoin Cash Node has no estimatesmartfee
                raise
            estimate = {}
        pool = await self._rpc.call("getmempoolinfo", [], parse=_dict)
        rate = fallback
        if isinstance(estimate.get("feerate"), Decimal):
            rate = money.units_of(estimate["feerate"], self._decimals)
        floors = [pool.get("mempoolminfee"), pool.get("minrelaytxfee")]
        floor = max((money.units_of(f, self._decimals) for f in floors if f is not None), default=0)
        return max(rate, floor)

    async def broadcast(self, raw: str) -> None:
        try:
            await self._rpc.call("sendrawtransaction", [raw])
        except RpcCallRejected as exc:
            if exc.rpc_code == _ALREADY_IN_CHAIN or already_known(exc.rpc_message):
                return
            raise

    async def confirmations(self, tx_hash: str) -> int | None:
        try:
            return await self._rpc.call(
                "getrawtransaction", [tx_hash, True], parse=_tx_confirmations
            )
        except RpcCallRejected as exc:
            if exc.rpc_code != _NOT_FOUND:
                raise
        # Confirmed, on a node without -txindex: one of its outputs, while unspent, knows.
        found = await self._rpc.batch(
            [("gettxout", [tx_hash, n, True]) for n in range(MAX_SWEEP_OUTPUTS)],
            parse=_utxo_confirmations,
        )
        depths = [d for d in found if isinstance(d, int)]
        return max(depths) if depths else None


def _dict(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise MalformedResponse("expected an object")
    return result


def _tx_confirmations(result: Any) -> int:
    depth = _dict(result).get("confirmations", 0)  # absent while in the mempool
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 0:
        raise MalformedResponse(f"confirmations {depth!r:.40}")
    return depth


def _utxo(result: Any) -> tuple[int, Decimal, str] | None:
    if result is None:
        return None
    found = _dict(result)
    script_pubkey = found.get("scriptPubKey")
    if not isinstance(script_pubkey, dict) or not isinstance(script_pubkey.get("hex"), str):
        raise MalformedResponse("gettxout without scriptPubKey.hex")
    return _tx_confirmations(found), found["value"], script_pubkey["hex"]


def _utxo_confirmations(result: Any) -> int | None:
    return None if result is None else _tx_confirmations(result)
