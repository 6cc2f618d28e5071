"""XRP sweeps and account activations: Payments signed here with xrpl-py, sent through rippled.

**A sweep** moves one payment's XRP out of its business's receiving account (``tags``): at most
two Payments from the account, at the Sequence ``account_info`` reports for the validated
ledger: Sequence ``n`` pays the commission to the platform wallet, ``n + 1`` pays the merchant
``received - commission - fee`` (``n`` alone without a commission). The merchant's is the
sweep's ``tx_hash``. Only the payment's own drops leave: the account keeps its reserve and
anything nobody claimed (an untagged deposit waits there for an operator's refund).

* **Fee**: the ``fee`` method's ``open_ledger_fee`` (never below ``base_fee``) per Payment,
  exactly what the ledger charges (XRP burns the ``Fee`` field, no refund, no tip), taken from
  the merchant's part. Above ``max_fee_drops`` (a fee spike) nothing is signed; the sweeper
  tries again next round.
* **Reserve**: ``server_state``'s ``validated_ledger.reserve_base`` plus ``reserve_inc`` per
  object the account owns, read at each signing (the network votes it: 10 XRP until 2021, 1
  XRP since 2024), never hard-coded. A sweep that would leave less is refused.
* **Payees** are asked first: one that does not exist yet and would get less than the base
  reserve, or that requires a destination tag (``lsfRequireDestTag``) and gets none, would make
  the Payment fail (``tecNO_DST_INSUF_XRP``, ``tecDST_TAG_NEEDED``) after burning its fee and
  Sequence: refused at signing instead. A payout written as an X-address carries its tag to
  the Payment.
* **Exclusivity**: the Sequence makes two signings of one sweep mutually exclusive, like an EVM
  nonce. Payments of one business share the account and its Sequence, so only one sweep per
  account may be in flight (``serial_per_address``: the sweeper's claim refuses a second one,
  which is signed again once the first is settled).
* ``LastLedgerSequence`` is the validated ledger plus ``ledger_window``: a Payment not in a
  validated ledger by then never will be, so the question "did it go through" has an answer.

**Broadcast** is ``submit`` of each stored blob in Sequence order. ``tes``, ``tec`` (applied,
fee charged: ``confirmations`` reports the failure) and ``ter`` (queued or held) results count
as sent, and so does a refusal (``tefPAST_SEQ``, ``tefALREADY``...) of a transaction the node
already has, asked by its hash with ``tx``. **Confirmations** come from ``tx``: a transaction
in a validated ledger is final, so 1; in none yet, 0; unknown, None.

**Activation**: a live receiving account is funded with the base reserve from the platform's
XRP fee wallet (``HDRoot.fee_wallet(Family.XRP)``, ``m/44'/144'/1'/0/0``), the same way:
signed, stored by the caller, sent, settled (:meth:`XrpSender.sign_activation`,
:meth:`XrpSender.settled`).

**Keys** are derived from the custody root at signing time, live in one function, and never
reach a log, an exception message or a repr.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.config import ChainConfig
from keel.coinpay.chains.rpc import (
    DEFAULT_TIMEOUT_SECONDS,
    MalformedResponse,
    RpcClient,
    default_breaker,
)
from keel.coinpay.chains.xrp import (
    ACT_NOT_FOUND,
    TXN_NOT_FOUND,
    drops,
    framed_client,
    ledger_hash,
    ledger_index,
)
from keel.coinpay.errors import (
    InvalidAddress,
    InvalidChainConfig,
    RpcCallRejected,
    SweepRefused,
    SweepReverted,
)
from keel.coinpay.wallets import Family, HDRoot, validate_address
from keel.core.logging import get_logger
from keel.core.resilience import CircuitBreaker

__all__ = [
    "DEFAULT_LEDGER_WINDOW",
    "DEFAULT_MAX_FEE_DROPS",
    "Settled",
    "XrpSender",
    "open_xrp_sender",
    "payee",
]

log = get_logger("keel.coinpay.xrp_sender")

DEFAULT_LEDGER_WINDOW: Final = 20  # about 80 s of ledgers to get in
DEFAULT_MAX_FEE_DROPS: Final = 2_000  # 0.002 XRP a Payment; the open ledger fee is 10-12 drops
REQUIRE_DEST_TAG: Final = 0x00020000  # lsfRequireDestTag
_SENT_PREFIXES: Final = ("tes", "tec", "ter")
_BLOB: Final = re.compile(r"(?:[0-9A-F]{2})+", re.ASCII)

Settled = Literal["validated", "failed", "pending", "expired"]
RootSource = Callable[[], Awaitable[HDRoot]]


@dataclass(frozen=True, slots=True)
class _Account:
    balance: int
    sequence: int
    owner_count: int
    flags: int


@dataclass(frozen=True, slots=True)
class _Ledger:
    """What a signing needs of the validated ledger: its index and reserves (drops)."""

    index: int
    reserve_base: int
    reserve_inc: int


def payee(address: str) -> tuple[str, int | None]:
    """A payout or platform address as (classic address, destination tag): an ``r…`` address
    has no tag, a mainnet X-address carries its own. InvalidAddress for anything else."""
    from xrpl.core.addresscodec import xaddress_to_classic_address

    normalised = validate_address(Family.XRP, address)
    if normalised.startswith("X"):
        classic, tag, is_test = xaddress_to_classic_address(normalised)
        if is_test:
            raise InvalidAddress("a test network X-address")
        return classic, tag
    return normalised, None


class XrpSender:
    """:class:`~keel.coinpay.chains.base.ChainSender` of XRP, and the activator of receiving
    accounts (module docstring). ``rpc`` is framed for rippled; ``keys`` gives the custody
    root (``Custody.root``)."""

    batch_limit = 1
    serial_per_address = True  # one account, one Sequence: one sweep in flight per account

    def __init__(
        self,
        rpc: RpcClient,
        keys: RootSource,
        *,
        chain: str = "XRP",
        ledger_window: int = DEFAULT_LEDGER_WINDOW,
        max_fee_drops: int = DEFAULT_MAX_FEE_DROPS,
    ) -> None:
        if ledger_window < 4 or max_fee_drops < 10:
            raise ValueError("ledger_window must be >= 4 and max_fee_drops >= 10")
        self.chain = chain
        self._rpc = rpc
        self._keys = keys
        self._window = ledger_window
        self._max_fee = max_fee_drops

    def __repr__(self) -> str:
        return f"XrpSender({self.chain!r})"

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    # ChainSender ------------------------------------------------------------------------------

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        """The commission and merchant Payments of one payment, at the account's Sequence;
        SweepRefused when they cannot be paid as asked (module docstring), ChainUnavailable
        when no node answers."""
        if len(inputs) != 1:
            raise ValueError(f"an XRP sweep moves one payment, not {len(inputs)}")
        [sweep] = inputs
        if sweep.received <= 0 or not 0 <= sweep.commission <= sweep.received:
            raise SweepRefused(
                f"nothing to sweep: received {sweep.received}, commission out of range"
            )
        merchant = _payee(sweep.merchant_address, "merchant payout address")
        platform = _payee(platform_address, "platform address")
        source = await self._account(sweep.address)
        if source is None:
            raise SweepRefused(f"{sweep.address} does not exist on the ledger")
        ledger = await self._ledger()
        fee = await self._fee()
        payees = [(merchant, 0)]
        if sweep.commission:
            payees.insert(0, (platform, sweep.commission))
        fee_total = fee * len(payees)
        merchant_drops = sweep.received - sweep.commission - fee_total
        if merchant_drops <= 0:
            raise SweepRefused(
                f"dust: {sweep.received} drops received do not cover the commission "
                f"{sweep.commission} and the network fee {fee_total}"
            )
        reserve = ledger.reserve_base + ledger.reserve_inc * source.owner_count
        if source.balance - sweep.received < reserve:
            raise SweepRefused(
                f"{sweep.address} holds {source.balance} drops: sending the {sweep.received} "
                f"received would leave less than its reserve of {reserve}"
            )
        payees[-1] = (merchant, merchant_drops)
        for (address, tag), amount in payees:
            await self._check_payee(address, tag, amount, ledger)
        txs = [
            {
                "account": sweep.address,
                "destination": address,
                "destination_tag": tag,
                "amount": str(amount),
                "fee": str(fee),
                "sequence": source.sequence + offset,
                "last_ledger_sequence": ledger.index + self._window,
            }
            for offset, ((address, tag), amount) in enumerate(payees)
        ]
        signed = await self._signed(Family.XRP, sweep.derivation_index, sweep.address, txs)
        return SignedSweep(
            signed[-1][0], "\n".join(blob for _, blob in signed), {sweep.payment_id: fee_total}
        )

    async def broadcast(self, raw: str) -> None:
        """``submit`` each stored blob in Sequence order; one the node already has counts as
        sent. Raises RpcCallRejected for a refusal of a transaction the node does not know (the
        next one is then not sent), ChainUnavailable when no node answers."""
        for blob in raw.split("\n"):
            if _BLOB.fullmatch(blob) is None:
                raise ValueError("not a sweep of XrpSender: expected hex blobs, one a line")
            result = await self._rpc.call("submit", {"tx_blob": blob}, parse=_submitted)
            engine, tx_hash = result
            if engine.startswith(_SENT_PREFIXES):
                continue
            if await self._tx(tx_hash) is not None:
                continue  # tefPAST_SEQ / tefALREADY of our own, already applied transaction
            raise RpcCallRejected(
                f"{self.chain}: the node refused {tx_hash}: {engine}",
                rpc_code=0,
                rpc_message=engine,
            )

    def tx_hashes(self, raw: str) -> list[str]:
        """Each stored Payment's hash (commission, then merchant): the sweeper checks every
        one, so a commission Payment that failed is not taken for a finished sweep."""
        return [blob_hash(blob) for blob in raw.split("\n")]

    async def confirmations(self, tx_hash: str) -> int | None:
        """Validated ledgers since the transaction's, its own included (a validated ledger is
        final, so any depth is; counted for a policy above 1), 0 before, None when the node
        does not know it. SweepReverted when it was validated with a failure (``tec``)."""
        state = await self._tx(tx_hash)
        if state is None:
            return None
        validated, result, ledger_index = state
        if not validated:
            return 0
        if result != "tesSUCCESS":
            raise SweepReverted(
                f"{self.chain} sweep {tx_hash} failed: {result}; its fee was burned"
            )
        tip = (await self._ledger()).index
        return max(tip - ledger_index + 1, 1)  # a lagging node's tip may be behind it

    async def expired(self, tx_hash: str, raw: str) -> bool:
        """True when none of the stored Payments was applied and none ever can be: the
        account's validated Sequence is still the first one's (any applied transaction, even a
        failed one, takes its Sequence) and the validated ledger is past their
        ``LastLedgerSequence``. Then signing again (at that same Sequence) is safe. A sweep of
        which one Payment was applied is never expired: it waits for an operator."""
        from xrpl.core.binarycodec import decode

        first = decode(raw.split("\n")[0])
        query = {"account": first["Account"], "ledger_index": "validated"}
        sequence, ledger_index = await self._rpc.call("account_info", query, parse=_sequence_at)
        return sequence == int(first["Sequence"]) and ledger_index > int(
            first["LastLedgerSequence"]
        )

    # Activation -------------------------------------------------------------------------------

    async def exists(self, address: str) -> bool:
        """Whether ``address`` is an account of the validated ledger."""
        return await self._account(address) is not None

    async def sign_activation(self, address: str) -> SignedSweep:
        """A Payment of the base reserve from the platform's XRP fee wallet to ``address``
        (signed, not sent: the caller stores it first). SweepRefused when the fee wallet
        cannot pay it and keep its own reserve."""
        root = await self._keys()
        wallet_address, _key = root.fee_wallet(Family.XRP)
        del _key
        wallet = await self._account(wallet_address)
        ledger = await self._ledger()
        fee = await self._fee()
        amount = ledger.reserve_base
        if wallet is None:
            raise SweepRefused(f"the XRP fee wallet {wallet_address} is not funded")
        keep = ledger.reserve_base + ledger.reserve_inc * wallet.owner_count
        if wallet.balance - amount - fee < keep:
            raise SweepRefused(
                f"the XRP fee wallet {wallet_address} holds {wallet.balance} drops: too little "
                f"to pay a reserve of {amount} and keep its own {keep}"
            )
        tx = {
            "account": wallet_address,
            "destination": address,
            "destination_tag": None,
            "amount": str(amount),
            "fee": str(fee),
            "sequence": wallet.sequence,
            "last_ledger_sequence": ledger.index + self._window,
        }
        [(tx_hash, blob)] = await self._signed(None, 0, wallet_address, [tx])
        return SignedSweep(tx_hash, blob, {})

    async def settled(self, tx_hash: str, raw: str) -> Settled:
        """Where a stored transaction stands: ``validated`` (success), ``failed`` (validated
        with a ``tec``), ``pending``, or ``expired``: its sender's validated Sequence still its
        own and the validated ledger past its LastLedgerSequence, so it can never be
        included."""
        from xrpl.core.binarycodec import decode

        state = await self._tx(tx_hash)
        if state is not None:
            validated, result, _ = state
            if not validated:
                return "pending"
            return "validated" if result == "tesSUCCESS" else "failed"
        # One node not knowing it proves nothing (a gap in its history): the sender's Sequence
        # does. Still the transaction's, with the validated ledger past its last one: it was
        # never applied and never can be.
        tx = decode(raw.split("\n")[-1])
        query = {"account": tx["Account"], "ledger_index": "validated"}
        sequence, ledger_index = await self._rpc.call("account_info", query, parse=_sequence_at)
        never = sequence == int(tx["Sequence"]) and ledger_index > int(tx["LastLedgerSequence"])
        return "expired" if never else "pending"

    # Node calls -------------------------------------------------------------------------------

    async def _account(self, address: str) -> _Account | None:
        query = {"account": address, "ledger_index": "validated"}
        try:
            found: _Account = await self._rpc.call("account_info", query, parse=_account_data)
        except RpcCallRejected as exc:
            if exc.rpc_code == ACT_NOT_FOUND:
                return None
            raise
        return found

    async def _ledger(self) -> _Ledger:
        found: _Ledger = await self._rpc.call("server_state", {}, parse=_server_state)
        return found

    async def _fee(self) -> int:
        fee: int = await self._rpc.call("fee", {}, parse=_open_ledger_fee)
        if fee > self._max_fee:
            raise SweepRefused(
                f"the open ledger fee is {fee} drops, above the {self._max_fee} allowed: a fee "
                "spike; signed again next round"
            )
        return fee

    async def _tx(self, tx_hash: str) -> tuple[bool, str, int] | None:
        """(validated, TransactionResult, ledger index) of a transaction; None when the node
        knows nothing."""
        try:
            found: tuple[bool, str, int] = await self._rpc.call(
                "tx", {"transaction": tx_hash, "binary": False}, parse=_tx_state
            )
        except RpcCallRejected as exc:
            if exc.rpc_code == TXN_NOT_FOUND:
                return None
            raise
        return found

    async def _check_payee(
        self, address: str, tag: int | None, amount: int, ledger: _Ledger
    ) -> None:
        account = await self._account(address)
        if account is None and amount < ledger.reserve_base:
            raise SweepRefused(
                f"{address} does not exist and {amount} drops are below the {ledger.reserve_base} "
                "reserve that would create it (tecNO_DST_INSUF_XRP)"
            )
        if account is not None and account.flags & REQUIRE_DEST_TAG and tag is None:
            raise SweepRefused(
                f"{address} requires a destination tag: set the payout as an X-address with it"
            )

    async def _signed(
        self, family: Family | None, index: int, source: str, txs: Sequence[dict[str, Any]]
    ) -> list[tuple[str, str]]:
        """``txs`` signed by the key at ``index`` of ``family`` (None: the XRP fee wallet), which
        must control ``source``: (hash, blob) each. The key stays in this frame."""
        from bip_utils import Secp256k1PrivateKey
        from xrpl.core.binarycodec import encode
        from xrpl.models.transactions import Payment
        from xrpl.transaction import sign
        from xrpl.wallet import Wallet

        root = await self._keys()
        key: bytes | None = None
        wallet: Any = None
        problem = None
        out: list[tuple[str, str]] = []
        try:
            if family is None:
                _, key = root.fee_wallet(Family.XRP)
            else:
                key = root.private_key(family, index)
            public = Secp256k1PrivateKey.FromBytes(key).PublicKey().RawCompressed().ToHex()
            wallet = Wallet(public.upper(), "00" + key.hex().upper())
            if wallet.classic_address != source:
                problem = f"the key at derivation index {index} does not control {source}"
            else:
                for tx in txs:
                    signed = sign(Payment(**tx), wallet)
                    out.append((signed.get_hash(), encode(signed.to_xrpl())))
        except Exception as exc:  # a library's message could quote its input
            problem = f"signing failed ({type(exc).__name__})"
        finally:
            key = wallet = None
        if problem is not None:
            raise SweepRefused(problem)
        return out


def open_xrp_sender(
    config: ChainConfig,
    keys: RootSource,
    *,
    platform_address: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> XrpSender:
    """The XRP sender of a configured chain (close with ``aclose()``); refuses at boot a chain
    with no URL and a platform wallet that is no mainnet XRP address (InvalidChainConfig)."""
    del sessions  # the ledger itself is the state: nothing to read from the database
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no RPC URL to sweep through")
    try:
        payee(platform_address)
    except InvalidAddress as exc:
        raise InvalidChainConfig(
            f"{config.chain}: the platform wallet is not an XRP address ({exc.detail})"
        ) from None
    rpc = framed_client(
        config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, breaker=_send_breaker
    )
    return XrpSender(rpc, keys, chain=config.chain)


def _send_breaker(name: str) -> CircuitBreaker:
    return default_breaker(f"{name}:send")


def _payee(address: str, what: str) -> tuple[str, int | None]:
    try:
        return payee(address.strip())
    except InvalidAddress:
        raise SweepRefused(f"the {what} {address[:50]!r} is not an XRP address") from None


def _int(value: object, what: str) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise MalformedResponse(f"{what}: {value!r:.40}")


def _account_data(result: Any) -> _Account:
    data = result["account_data"]
    if not isinstance(data, dict):
        raise MalformedResponse("account_info without account_data")
    return _Account(
        drops(data["Balance"]),
        _int(data["Sequence"], "Sequence"),
        _int(data.get("OwnerCount", 0), "OwnerCount"),
        _int(data.get("Flags", 0), "Flags"),
    )


def _server_state(result: Any) -> _Ledger:
    ledger = result["state"].get("validated_ledger")
    if not isinstance(ledger, dict):
        raise MalformedResponse("server_state without a validated ledger (not synced?)")
    return _Ledger(
        ledger_index(ledger["seq"]),
        _int(ledger["reserve_base"], "reserve_base"),
        _int(ledger["reserve_inc"], "reserve_inc"),
    )


def _open_ledger_fee(result: Any) -> int:
    found = result["drops"]
    return max(drops(found["open_ledger_fee"]), drops(found["base_fee"]))


def _submitted(result: Any) -> tuple[str, str]:
    engine = result["engine_result"]
    if not isinstance(engine, str) or not engine:
        raise MalformedResponse("submit without engine_result")
    tx = result.get("tx_json", {})
    return engine, ledger_hash(tx.get("hash") if isinstance(tx, dict) else None)


def _tx_state(result: Any) -> tuple[bool, str, int]:
    meta = result.get("meta", result.get("metaData"))
    validated = result.get("validated") is True
    if not validated:
        return False, "", 0
    if not isinstance(meta, dict) or not isinstance(meta.get("TransactionResult"), str):
        raise MalformedResponse("a validated transaction without its result")
    return True, meta["TransactionResult"], _int(result.get("ledger_index"), "ledger_index")


def _sequence_at(result: Any) -> tuple[int, int]:
    """(the account's Sequence, the validated ledger's index) of an ``account_info``."""
    data = result.get("account_data")
    if not isinstance(data, dict):
        raise MalformedResponse("account_info without account_data")
    return _int(data["Sequence"], "Sequence"), _int(result.get("ledger_index"), "ledger_index")


def blob_hash(blob: str) -> str:
    """The hash of a signed transaction blob: SHA-512Half of the ``TXN\\0`` prefix and its
    bytes, in upper-case hex as rippled writes it."""
    digest = hashlib.sha512(b"TXN\x00" + bytes.fromhex(blob)).digest()
    return digest[:32].hex().upper()
