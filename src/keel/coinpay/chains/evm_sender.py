"""Sweeps on an EVM chain (ETH, POL, BNB; native coin and ERC-20 tokens): signed here, sent
through its nodes.

A payment is swept by at most two legacy (type-0, EIP-155) transactions from its address: nonce
``n`` pays the commission to the platform address, nonce ``n + 1`` pays the merchant what is
left, ``received - commission - fee``. With no commission only the merchant's is sent (nonce
``n``). The merchant's transaction is the sweep's ``tx_hash``: nonce order mines it after the
commission's, so its depth is the sweep's.

**Why legacy transactions, not EIP-1559.** A type-2 transaction pays the base fee of the block
that includes it plus a tip, capped by ``maxFeePerGas``: its fee is known only once it is mined,
so the amount sent cannot be chosen to leave the address at exactly zero, and what the cap did
not spend stays behind as dust at an address nobody watches any more. A legacy transaction pays
exactly ``gasPrice`` per gas (above the base fee the rest is the miner's tip), and a plain
transfer to an address without code uses exactly 21,000 gas: the fee, ``2 × 21,000 ×
gasPrice``, is known when the transaction is signed, the merchant's part is exact, the payment
address ends at 0 and the payment's ``network_fee`` is what the chain charged. The cost is the
margin: ``gasPrice`` is the node's ``eth_gasPrice`` plus ``gas_price_margin_percent`` (25 % by
default, nearly two full blocks of base-fee rise at 12.5 % each, so a short spike does not leave
a sweep below the base fee), and that margin is paid as tip rather than refunded.

**Nonces** are read when signing, ``eth_getTransactionCount(address, "latest")``: every outgoing
transaction of a payment address is one of these sweeps, and a sweep is stored before it is sent
and never signed again once stored, so two signings of one payment (two workers racing; the
loser's signature is discarded unsent) carry the same nonces and at most one of them can ever be
mined. ``latest`` rather than ``pending``: a transaction of ours still in the pool then conflicts
with a new signing instead of being followed by a second sweep.

**Tokens** (``USDC_ETH``…) are swept the same way, by two ``transfer`` calls of the token
contract (commission, then merchant: ``received - commission`` exactly, since the network fee is
paid in the chain's coin). The payment address holds no coin to pay that fee with, so the
platform's **fee wallet** (``HDRoot.fee_wallet``, kept funded by the operator) first sends it
exactly the gas the two calls may burn: ``eth_estimateGas`` of each, plus
``TOKEN_GAS_MARGIN_PERCENT`` (a payee's balance going to zero between estimate and mining makes
its next credit cost 17,100 gas more), times the gas price. Until that top-up is in the latest
block :meth:`EvmSender.sign` raises :class:`~keel.coinpay.errors.SweepWaiting`. A top-up still
in the pool is not sent twice: the pending balance counts it, and where a provider's "pending"
is only "latest", the sender remembers the top-up it sent and asks the node for it. The calls
are then signed at the highest gas price the address can pay, up to the usual margin: a price
that rose since the top-up costs nothing more while the node's own price is still covered. The
top-up moves only the platform's money, and the worst a crash can do is send it twice; what gas
is left unused stays at the payment address (logged). Top-ups are signed and sent one at a time
per sender, at the fee wallet's pending nonce.

**Refused at signing** (:class:`~keel.coinpay.errors.SweepRefused`, nothing sent): funds that do
not cover commission plus fee (dust), an address holding less than was received, a payee with
code (21,000 gas cannot run a contract wallet's or an EIP-7702 account's code: it would fail and
burn the fee), a key that does not control the payment address, and a node reporting another
chain id than configured (:class:`~keel.coinpay.errors.InvalidChainConfig`, checked once).

**Broadcast** sends the stored transactions in nonce order. A node refusing one it already has
("already known", "nonce too low" once mined) is success, decided by asking the node for the
transaction's hash, not by reading its error text.

**Keys** come from ``keys(derivation_index)`` only after every node call of a signing, live in
one short function, and leave no trace in exceptions (messages name the error type only, and no
frame of a raised traceback still holds the key), logs or reprs.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn

from eth_hash.auto import keccak

from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.evm import hash32, quantity
from keel.coinpay.chains.rpc import MalformedResponse, RpcClient
from keel.coinpay.errors import (
    InvalidChainConfig,
    RpcCallRejected,
    SweepRefused,
    SweepReverted,
    SweepWaiting,
)
from keel.coinpay.wallets.address_validation import eip55
from keel.core.logging import get_logger

if TYPE_CHECKING:
    from eth_account.datastructures import SignedTransaction

__all__ = [
    "DEFAULT_GAS_PRICE_MARGIN_PERCENT",
    "SEND_REJECTED_CODES",
    "TOKEN_GAS_MARGIN_PERCENT",
    "TRANSFER_GAS",
    "EvmSender",
    "FeeWallet",
    "KeySource",
]

# A transfer of value to an address without code costs exactly this (the intrinsic gas).
TRANSFER_GAS: Final = 21_000
DEFAULT_GAS_PRICE_MARGIN_PERCENT: Final = 25

TOKEN_GAS_MARGIN_PERCENT: Final = 25
# ERC-20 selectors: transfer(address,uint256), balanceOf(address).
_TRANSFER: Final = "0xa9059cbb"
_BALANCE_OF: Final = "0x70a08231"

# Derivation index -> the 32-byte secp256k1 private key at that index (custody root, EVM family).
KeySource = Callable[[int], bytes] | Callable[[int], Awaitable[bytes]]
# The platform fee wallet's address and 32-byte key (``HDRoot.fee_wallet(Family.EVM)``).
FeeWallet = Callable[[], Awaitable[tuple[str, bytes]]]

# How nodes refuse a transaction (geth -32000 "already known" / "nonce too low", EIP-1474 and
# anvil -32003 "transaction rejected", Nethermind -32010): the transaction's fault, not the
# node's, so no failover and no breaker count. Whether it is ours already is asked, not read.
SEND_REJECTED_CODES: Final = frozenset({-32000, -32003, -32010})

_HEX: Final = re.compile(r"0x[0-9a-fA-F]*", re.ASCII)
_RAW_TX: Final = re.compile(r"0x(?:[0-9a-fA-F]{2})+", re.ASCII)

log = get_logger("keel.coinpay.sweeps")


class EvmSender:
    """:class:`~keel.coinpay.chains.base.ChainSender` of one EVM chain's native coin (module
    docstring). ``chain`` is its code in ``keel.coinpay.assets``; ``chain_id`` the EIP-155 id
    transactions are signed for and the nodes must report."""

    batch_limit = 1  # one payment address, one account nonce sequence, per sweep

    def __init__(
        self,
        chain: str,
        rpc: RpcClient,
        keys: KeySource,
        chain_id: int,
        *,
        gas_price_margin_percent: int = DEFAULT_GAS_PRICE_MARGIN_PERCENT,
        tokens: Mapping[str, str] | None = None,
        fee_wallet: FeeWallet | None = None,
    ) -> None:
        if chain_id < 1:
            raise ValueError("chain_id must be positive")
        if not 0 <= gas_price_margin_percent <= 1000:
            raise ValueError("gas_price_margin_percent must be from 0 to 1000")
        self.chain = chain
        self.chain_id = chain_id
        self._rpc = rpc
        self._keys = keys
        self._margin = gas_price_margin_percent
        self._chain_checked = False
        self._tokens = {coin: eip55(contract) for coin, contract in (tokens or {}).items()}
        self._fee_wallet = fee_wallet
        self._top_up_lock = asyncio.Lock()
        self._top_ups: dict[str, str] = {}  # payment address -> the last top-up sent to it

    def __repr__(self) -> str:
        return f"EvmSender({self.chain!r}, chain_id={self.chain_id})"

    async def aclose(self) -> None:
        """Close the RPC client's connections."""
        await self._rpc.aclose()

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        """The commission and merchant transactions of one payment, signed at the address's
        current nonce; raises SweepRefused (module docstring), SweepWaiting (a token sweep's
        gas on its way) and ChainUnavailable."""
        if len(inputs) != 1:
            raise ValueError(f"an EVM sweep moves one payment, not {len(inputs)}")
        [sweep] = inputs
        await self._check_chain()
        source = _address(sweep.address, "payment address")
        merchant = _address(sweep.merchant_address, "merchant payout address")
        if sweep.received <= 0 or not 0 <= sweep.commission <= sweep.received:
            raise SweepRefused(
                f"nothing to sweep: received {sweep.received}, commission out of range"
            )
        contract = self._tokens.get(sweep.coin)
        if contract is not None:
            return await self._sign_token(sweep, source, merchant, platform_address, contract)
        payees = [(merchant, 0)]
        if sweep.commission:
            payees.insert(0, (_address(platform_address, "platform address"), sweep.commission))
        nonce, balance, node_price, codes = await self._state(source, [p for p, _ in payees])
        gas_price = self._gas_price(node_price)
        fee = TRANSFER_GAS * gas_price * len(payees)
        merchant_wei = sweep.received - sweep.commission - fee
        if merchant_wei <= 0:
            raise SweepRefused(
                f"dust: {sweep.received} wei received does not cover the commission "
                f"{sweep.commission} and the network fee {fee} ({len(payees)} x {TRANSFER_GAS} gas "
                f"at {gas_price} wei)"
            )
        if balance < sweep.received:
            raise SweepRefused(
                f"{source} holds {balance} wei, less than the {sweep.received} received"
            )
        if balance > sweep.received:
            log.warning(
                "sweep_leaves_surplus",
                chain=self.chain,
                address=source,
                wei=balance - sweep.received,
            )
        for payee, code in zip((p for p, _ in payees), codes, strict=True):
            if code != "0x":
                raise SweepRefused(f"{payee} has code: a 21,000-gas transfer cannot pay a contract")
        payees[-1] = (merchant, merchant_wei)
        txs: list[dict[str, Any]] = [
            {
                "nonce": nonce + offset,
                "gasPrice": gas_price,
                "gas": TRANSFER_GAS,
                "to": to,
                "value": value,
                "data": b"",
                "chainId": self.chain_id,
            }
            for offset, (to, value) in enumerate(payees)
        ]
        signed = await self._signed(sweep.derivation_index, source, txs)
        raws = ["0x" + tx.raw_transaction.hex() for tx in signed]
        return SignedSweep("0x" + signed[-1].hash.hex(), "\n".join(raws), {sweep.payment_id: fee})

    async def _sign_token(
        self, sweep: SweepInput, source: str, merchant: str, platform: str, contract: str
    ) -> SignedSweep:
        """A token payment's two ``transfer`` calls, once the fee wallet's gas is there."""
        payees = [(merchant, sweep.received - sweep.commission)]
        if sweep.commission:
            payees.insert(0, (_address(platform, "platform address"), sweep.commission))
        if payees[-1][1] <= 0:
            raise SweepRefused(f"nothing left for the merchant: commission {sweep.commission}")
        data = [_TRANSFER + _word(to) + f"{value:064x}" for to, value in payees]
        calls: list[tuple[str, Sequence[object]]] = [
            ("eth_getTransactionCount", [source, "latest"]),
            ("eth_getBalance", [source, "latest"]),
            ("eth_getBalance", [source, "pending"]),
            ("eth_gasPrice", []),
            ("eth_call", [{"to": contract, "data": _BALANCE_OF + _word(source)}, "latest"]),
            *(("eth_estimateGas", [{"from": source, "to": contract, "data": d}]) for d in data),
        ]
        results = await self._rpc.batch(calls, parse=_hex)
        held = results[4]
        if not isinstance(held, RpcCallRejected) and quantity(held) < sweep.received:
            # Before the estimates are read: a transfer of more than is held cannot be estimated.
            raise SweepRefused(
                f"{source} holds {quantity(held)} {sweep.coin} base units, less than the "
                f"{sweep.received} received"
            )
        for result in results:
            if isinstance(result, RpcCallRejected):
                raise result
        nonce, balance, pending, node_price, _, *estimates = (quantity(str(r)) for r in results)
        limits = [-(-gas * (100 + TOKEN_GAS_MARGIN_PERCENT) // 100) for gas in estimates]
        # The gas price the address can pay, up to the usual margin: a top-up sent a round ago
        # at a lower price still serves while it covers the node's price, so a rising price
        # does not send a top-up every round.
        gas_price = min(self._gas_price(node_price), balance // sum(limits))
        if gas_price < node_price:
            gas_price = self._gas_price(node_price)
            await self._top_up(source, sum(limits) * gas_price, pending, gas_price)
        if balance > sum(limits) * gas_price:
            surplus = balance - sum(limits) * gas_price
            log.info("sweep_gas_surplus", chain=self.chain, address=source, wei=surplus)
        txs: list[dict[str, Any]] = [
            {
                "nonce": nonce + offset,
                "gasPrice": gas_price,
                "gas": limit,
                "to": contract,
                "value": 0,
                "data": bytes.fromhex(call[2:]),
                "chainId": self.chain_id,
            }
            for offset, (call, limit) in enumerate(zip(data, limits, strict=True))
        ]
        signed = await self._signed(sweep.derivation_index, source, txs)
        raws = ["0x" + tx.raw_transaction.hex() for tx in signed]
        return SignedSweep("0x" + signed[-1].hash.hex(), "\n".join(raws), {sweep.payment_id: 0})

    async def _top_up(self, address: str, needed: int, pending: int, gas_price: int) -> NoReturn:
        """Send ``address`` from the fee wallet what it lacks of ``needed`` wei (unless the
        pool already holds it); always raises SweepWaiting (or SweepRefused: no fee wallet,
        or one that cannot pay)."""
        if pending >= needed:
            raise SweepWaiting(f"{address}: the gas for its token sweep is in the pool")
        sent = self._top_ups.get(address)
        if sent is not None and await self._known(sent):
            # Not every provider counts the pool in a "pending" balance: the top-up this
            # process sent is still on its way, so none is sent beside it.
            raise SweepWaiting(f"{address}: the gas for its token sweep is on its way ({sent})")
        if self._fee_wallet is None:
            raise SweepRefused(f"{self.chain}: a token sweep needs a fee wallet, and none is set")
        async with self._top_up_lock:
            fee_address, _ = await self._fee_wallet()
            calls: list[tuple[str, Sequence[object]]] = [
                ("eth_getTransactionCount", [fee_address, "pending"]),
                ("eth_getBalance", [fee_address, "pending"]),
            ]
            nonce, funds = map(quantity, await self._values(calls))
            value = needed - pending
            if funds < value + TRANSFER_GAS * gas_price:
                raise SweepRefused(
                    f"{self.chain} fee wallet {fee_address} holds {funds} wei: it needs "
                    f"{value + TRANSFER_GAS * gas_price} to send {address} its sweep's gas"
                )
            tx = {
                "nonce": nonce,
                "gasPrice": gas_price,
                "gas": TRANSFER_GAS,
                "to": address,
                "value": value,
                "data": b"",
                "chainId": self.chain_id,
            }
            [signed] = await self._signed(None, fee_address, [tx])
            raw = "0x" + signed.raw_transaction.hex()
            self._top_ups[address] = "0x" + signed.hash.hex()
            await self.broadcast(raw)
        log.info("sweep_gas_sent", chain=self.chain, address=address, wei=value)
        raise SweepWaiting(f"{address}: sent {value} wei for its token sweep's gas")

    async def broadcast(self, raw: str) -> None:
        """Send each stored transaction in nonce order; one the node already has counts as
        sent. Raises RpcCallRejected for a refusal of a transaction the node does not know
        (the next one is then not sent), ChainUnavailable when no node answers."""
        for line in raw.split("\n"):
            if _RAW_TX.fullmatch(line) is None:
                raise ValueError("not a sweep of EvmSender: expected hex transactions, one a line")
            tx_hash = "0x" + keccak(bytes.fromhex(line[2:])).hex()
            try:
                await self._rpc.call(
                    "eth_sendRawTransaction",
                    [line],
                    parse=hash32,
                    rejected_codes=SEND_REJECTED_CODES,
                )
            except RpcCallRejected:
                if not await self._known(tx_hash):
                    raise

    def tx_hashes(self, raw: str) -> list[str]:
        """The stored transactions' hashes (commission, then merchant): the sweeper checks
        every one, so a commission transfer that reverted is not taken for a finished sweep."""
        return ["0x" + keccak(bytes.fromhex(line[2:])).hex() for line in raw.split("\n")]

    async def confirmations(self, tx_hash: str) -> int | None:
        """Blocks on top of the transaction's, its own included; 0 while in the pool, None when
        the node does not know it. Raises SweepReverted when it was mined and failed."""
        receipt = await self._rpc.call("eth_getTransactionReceipt", [tx_hash], parse=_receipt)
        if receipt is None:
            return 0 if await self._known(tx_hash) else None
        number, succeeded = receipt
        if number is None:
            return 0
        if not succeeded:
            raise SweepReverted(
                f"{self.chain} sweep {tx_hash} failed in block {number}: it moved no value"
            )
        tip = await self._rpc.call("eth_blockNumber", parse=quantity)
        return max(tip - number + 1, 1)  # a lagging provider's tip may be below the block

    async def _check_chain(self) -> None:
        if self._chain_checked:
            return
        reported = await self._rpc.call("eth_chainId", parse=quantity)
        if reported != self.chain_id:
            raise InvalidChainConfig(
                f"{self.chain}: the node reports chain id {reported}, not {self.chain_id} "
                f"(KEEL_COINPAY_{self.chain}_CHAIN_ID): nothing is signed for it"
            )
        self._chain_checked = True

    async def _state(self, source: str, payees: list[str]) -> tuple[int, int, int, list[str]]:
        """Nonce and balance of ``source``, the node's gas price and the payees' code, in one
        request (one node's view)."""
        calls: list[tuple[str, Sequence[object]]] = [
            ("eth_getTransactionCount", [source, "latest"]),
            ("eth_getBalance", [source, "latest"]),
            ("eth_gasPrice", []),
            *(("eth_getCode", [payee, "latest"]) for payee in payees),
        ]
        values = await self._values(calls)
        nonce, balance, price = (quantity(v) for v in values[:3])
        return nonce, balance, price, [v.lower() for v in values[3:]]

    async def _values(self, calls: list[tuple[str, Sequence[object]]]) -> list[str]:
        """The hex results of ``calls`` in one request (one node's view); a refusal raises."""
        values: list[str] = []
        for result in await self._rpc.batch(calls, parse=_hex):
            if isinstance(result, RpcCallRejected):
                raise result
            values.append(result)
        return values

    def _gas_price(self, node_price: int) -> int:
        return -(-node_price * (100 + self._margin) // 100)  # rounded up

    async def _known(self, tx_hash: str) -> bool:
        found = await self._rpc.call("eth_getTransactionByHash", [tx_hash])
        return isinstance(found, dict)

    async def _signed(
        self, index: int | None, source: str, txs: list[dict[str, Any]]
    ) -> list[SignedTransaction]:
        """``txs`` signed by the key at ``index`` (None: the fee wallet's), which must control
        ``source``. The key lives in this frame alone and is gone from it before anything is
        raised."""
        # Imported on first use: eth-account takes about a second to import, which every
        # `keel` command opening the gateway would pay otherwise.
        from eth_account import Account

        key: bytes | None = await (
            _key(self._keys, index) if index is not None else _fee_key(self._fee_wallet)
        )
        account: Any = None
        problem = None
        signed: list[SignedTransaction] = []
        try:
            account = Account.from_key(key)
            if account.address != source:
                whose = "the fee wallet's key" if index is None else f"the key at index {index}"
                problem = f"{whose} does not control {source}"
            else:
                signed = [account.sign_transaction(tx) for tx in txs]
        except Exception as exc:  # eth-account's message could quote its input
            problem = f"signing failed ({type(exc).__name__})"
        finally:
            key = account = None
        if problem is not None:
            raise SweepRefused(problem)
        return signed


async def _fee_key(wallet: FeeWallet | None) -> bytes:
    if wallet is None:
        raise SweepRefused("no fee wallet is set")
    _, key = await wallet()
    if len(key) != 32:
        raise SweepRefused("the fee wallet's key is not 32 bytes")
    return key


async def _key(keys: KeySource, index: int) -> bytes:
    key = keys(index)
    if inspect.isawaitable(key):
        key = await key
    if isinstance(key, bytes | bytearray) and len(key) == 32:
        return bytes(key)
    del key  # whatever it was, the refusal's traceback does not carry it
    raise SweepRefused(f"the key source gave no 32-byte key for derivation index {index}")


def _address(value: str, what: str) -> str:
    try:
        return eip55(value.strip())
    except ValueError:
        raise SweepRefused(f"the {what} {value[:50]!r} is not an EVM address") from None


def _word(address: str) -> str:
    """An address as a 32-byte ABI word, hex without 0x."""
    return address[2:].lower().rjust(64, "0")


def _hex(value: object) -> str:
    """A quantity or byte string in hex (parsed further by the caller)."""
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise MalformedResponse(f"not hex: {value!r:.80}")
    return value


def _receipt(value: object) -> tuple[int | None, bool] | None:
    """(block number or None while pending, succeeded) of a receipt; None for no receipt."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedResponse("a receipt is not an object")
    number = value.get("blockNumber")
    # Receipts before Byzantium (2017) carry a state root instead: those all succeeded.
    status = value.get("status")
    return (
        None if number is None else quantity(number),
        status is None or quantity(status) == 1,
    )
