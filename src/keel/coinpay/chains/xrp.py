"""The XRP Ledger read ledger by ledger over rippled's JSON-RPC.

rippled frames JSON-RPC its own way (:class:`RippledFraming`): the parameters are one object in
a one-element list, and a call's error comes back *inside* ``result`` with ``status: "error"``,
an ``error`` token and a numeric ``error_code``. The framing turns that into a JSON-RPC 2.0
error, so :class:`~keel.coinpay.chains.rpc.RpcClient`'s failover rules apply unchanged: the
codes of a node that cannot answer now (:data:`TRANSIENT_CODES`: ``tooBusy``, ``noNetwork``,
``notSynced``...) move the call to the next provider; any other code is the call's own.

* ``tip()``: ``ledger`` with ``ledger_index: "validated"``: the newest *validated* ledger, its
  hash and its parent's. Only validated ledgers are read: they are final (the consensus
  protocol never replaces one), so the scanner's reorg walk never triggers here and one
  confirmation is final settlement.
* ``block(n)``: ``ledger`` with ``ledger_index: n, transactions: true, expand: true``. Each
  successful (``tesSUCCESS``) ``Payment`` of XRP is a transfer to its ``Destination``, with its
  ``DestinationTag`` as the memo. The amount is the metadata's ``delivered_amount``, never the
  transaction's ``Amount``: a partial payment (``tfPartialPayment``) may name a large
  ``Amount`` and deliver a few drops, and crediting ``Amount`` is the classic exchange exploit.
  A ledger above the validated tip is ``lgrNotFound``: BlockNotFound.
* ``pending()``: ``Mempool(complete=False)``. Validated ledgers close every 3 to 5 seconds and
  the open ledger's transactions may still fail or be reordered, so a 0-conf XRP payment tells
  the merchant nothing a validated ledger does not tell seconds later.

Payments of issued currencies or MPTs (an object as ``delivered_amount``) are not XRP and are
not transfers; neither are failed (``tec``) transactions, which are in the ledger only to charge
their fee.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from keel.coinpay.chains.base import Block, BlockRef, Mempool, Transfer
from keel.coinpay.chains.rpc import MalformedResponse, Params, RpcClient
from keel.coinpay.errors import BlockNotFound, InvalidAddress, RpcCallRejected
from keel.coinpay.wallets import Family, validate_address
from keel.core.logging import get_logger

__all__ = [
    "LGR_NOT_FOUND",
    "MAX_DROPS",
    "TRANSIENT_CODES",
    "RippledFraming",
    "XrpSource",
    "delivered_drops",
    "drops",
    "ledger_hash",
]

log = get_logger("keel.coinpay.xrp")

# rippled's error codes (ErrorCodes.h) that blame the node, not the call: tooBusy 9, slowDown
# 10, notReady 13, amendmentBlocked 14, noClosed 15, noCurrent 16, noNetwork 17, notSynced 18,
# internal 73, failedToForward 90 (a reporting/Clio server's upstream is down).
TRANSIENT_CODES: Final = (9, 10, 13, 14, 15, 16, 17, 18, 73, 90)
LGR_NOT_FOUND: Final = 21
ACT_NOT_FOUND: Final = 19
TXN_NOT_FOUND: Final = 29
# 100 billion XRP, the most that ever existed, in drops (10^6 a XRP).
MAX_DROPS: Final = 10**17
MAX_TAG: Final = 2**32 - 1

_HASH: Final = re.compile(r"[0-9A-Fa-f]{64}", re.ASCII)
_DROPS: Final = re.compile(r"[0-9]{1,18}", re.ASCII)


class RippledFraming:
    """rippled's JSON-RPC on the wire (module docstring); a :class:`~keel.coinpay.chains.rpc
    .Framing`. Parameters must be one object."""

    def request(self, request_id: int, method: str, params: Params) -> object:
        if not isinstance(params, Mapping):
            raise TypeError("rippled takes its parameters as one object")
        return {"method": method, "params": [dict(params)]}

    def reply(self, body: object, request_id: int) -> object:
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, dict):
            raise MalformedResponse("a rippled reply without a result object")
        if result.get("status") == "error" or "error" in result:
            token = str(result.get("error", ""))
            message = str(result.get("error_message") or token)
            return {
                "id": request_id,
                "error": {"code": result.get("error_code"), "message": f"{token}: {message}"},
            }
        return {"id": request_id, "result": result}


def framed_client(chain: str, urls: tuple[str, ...], **options: Any) -> RpcClient:
    """An RpcClient speaking rippled's JSON-RPC to ``urls`` (``options`` as RpcClient's)."""
    return RpcClient(
        chain, urls, transient_codes=TRANSIENT_CODES, framing=RippledFraming(), **options
    )


class XrpSource:
    """:class:`~keel.coinpay.chains.base.ChainSource` of the XRP Ledger (module docstring).
    ``rpc`` must be framed for rippled (:func:`framed_client`)."""

    def __init__(self, rpc: RpcClient, chain: str = "XRP") -> None:
        self.chain = chain
        self._rpc = rpc

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    async def tip(self) -> BlockRef:
        """The newest validated ledger (one call: index and hashes describe one ledger)."""
        ref: BlockRef = await self._rpc.call(
            "ledger", {"ledger_index": "validated"}, parse=_validated_ref
        )
        return ref

    async def block(self, height: int) -> Block:
        """XRP payments of the validated ledger ``height``; BlockNotFound when the node has no
        validated ledger there (above the tip), ChainUnavailable when no provider answers."""
        if height < 0:
            raise ValueError("height must be >= 0")
        query = {"ledger_index": height, "transactions": True, "expand": True}
        try:
            block: Block | None = await self._rpc.call("ledger", query, parse=self._block)
        except RpcCallRejected as exc:
            if exc.rpc_code != LGR_NOT_FOUND:
                raise
            raise BlockNotFound(
                f"{self.chain} has no validated ledger {height} yet", chain=self.chain
            ) from exc
        if block is None or block.ref.height != height:
            raise BlockNotFound(f"{self.chain}: ledger {height} is not validated", chain=self.chain)
        return block

    async def pending(self) -> Mempool:
        """Nothing, and nothing to conclude from it (module docstring)."""
        return Mempool(complete=False)

    def _block(self, result: Any) -> Block | None:
        if result.get("validated") is not True:
            return None  # closed but not validated yet on this node: not final, not read
        ref = _ref(result)
        transactions = result["ledger"].get("transactions", [])
        if not isinstance(transactions, list):
            raise MalformedResponse("ledger.transactions is not a list")
        found: list[tuple[int, Transfer]] = []
        for item in transactions:
            parsed = self._transfer(item)
            if parsed is not None:
                found.append(parsed)
        found.sort(key=lambda pair: pair[0])
        return Block(ref, tuple(transfer for _, transfer in found))

    def _transfer(self, item: Any) -> tuple[int, Transfer] | None:
        """(TransactionIndex, transfer) of one expanded transaction, or None if it moved no XRP
        to anyone. Flat (``metaData``) and wrapped (``tx_json`` + ``meta``) shapes are read."""
        if not isinstance(item, dict):
            raise MalformedResponse("a ledger without expanded transactions")
        tx = item.get("tx_json", item)
        meta = item.get("meta", item.get("metaData"))
        if not isinstance(tx, dict) or not isinstance(meta, dict):
            raise MalformedResponse("an expanded transaction without its metadata")
        if tx.get("TransactionType") != "Payment" or meta.get("TransactionResult") != "tesSUCCESS":
            return None
        tx_hash = ledger_hash(item.get("hash", tx.get("hash")))
        amount = delivered_drops(meta)
        if amount is None:
            return None
        if amount == 0:
            return None
        try:
            destination = validate_address(Family.XRP, str(tx.get("Destination", "")))
        except InvalidAddress as exc:
            raise MalformedResponse(f"{tx_hash}: Destination is no XRP address") from exc
        tag = tx.get("DestinationTag")
        if tag is not None and (
            not isinstance(tag, int) or isinstance(tag, bool) or not 0 <= tag <= MAX_TAG
        ):
            raise MalformedResponse(f"{tx_hash}: DestinationTag {tag!r:.40}")
        index = meta.get("TransactionIndex", 0)
        if not isinstance(index, int) or isinstance(index, bool):
            raise MalformedResponse(f"{tx_hash}: TransactionIndex {index!r:.40}")
        memo = None if tag is None else str(tag)
        return index, Transfer(self.chain, tx_hash, 0, destination, amount, memo)


def delivered_drops(meta: Mapping[str, Any]) -> int | None:
    """The drops a successful Payment delivered, from its metadata's ``delivered_amount``
    (``DeliveredAmount`` where a node leaves the convenience field out); None when it delivered
    something else than XRP (an issued currency, an MPT) or the ledger predates the field
    (``"unavailable"``). Never reads the transaction's ``Amount``. Raises MalformedResponse
    for metadata without either field."""
    delivered = meta.get("delivered_amount", meta.get("DeliveredAmount"))
    if delivered is None:
        raise MalformedResponse("a successful Payment without delivered_amount")
    if isinstance(delivered, dict):
        return None  # {"currency", "issuer", "value"} or {"mpt_issuance_id", "value"}
    if delivered == "unavailable":
        log.warning("xrp_delivered_amount_unavailable")
        return None
    return drops(delivered)


def drops(value: object) -> int:
    """An XRP amount as rippled writes it (a string of drops) as an integer; MalformedResponse
    for anything else (a number, a fraction, a sign, more than :data:`MAX_DROPS`)."""
    if not isinstance(value, str) or _DROPS.fullmatch(value) is None or int(value) > MAX_DROPS:
        raise MalformedResponse(f"not an XRP amount in drops: {value!r:.40}")
    return int(value)


def ledger_hash(value: object) -> str:
    """A ledger or transaction hash (64 hex digits) in rippled's upper case."""
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise MalformedResponse(f"not a 32-byte hash: {value!r:.80}")
    return value.upper()


def ledger_index(value: object) -> int:
    """A ledger index: a number (API v2), or a numeric string (API v1's ``ledger.ledger_index``)."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, Decimal) or not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResponse(f"not a ledger index: {value!r:.40}")
    if value < 0:
        raise MalformedResponse(f"not a ledger index: {value}")
    return value


def _ref(result: Any) -> BlockRef:
    ledger = result["ledger"]
    if not isinstance(ledger, dict):
        raise MalformedResponse("a ledger reply without its ledger")
    height = ledger_index(result.get("ledger_index", ledger.get("ledger_index")))
    return BlockRef(
        height,
        ledger_hash(result.get("ledger_hash", ledger.get("ledger_hash"))),
        ledger_hash(ledger["parent_hash"]),
    )


def _validated_ref(result: Any) -> BlockRef:
    if result.get("validated") is not True:
        raise MalformedResponse("the node has no validated ledger (not synced?)")
    return _ref(result)
