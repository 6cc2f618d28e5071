"""Sweeps of Cardano payments: built and signed here (``cardano_tx``), sent through Koios.

One transaction sweeps a batch of payments (``batch_limit`` of them), like the UTXO sender: it
spends every confirmed, unspent output at each payment's address and pays

* each merchant address its payments' part: what arrived, less the commission written on the
  payment, less the payment's share of the fee (several payments to one merchant address share
  one output);
* the platform address ONE output with the summed commission.

**Outputs to spend** are those the scanner stored for the payment addresses, each checked with
one ``POST /utxo_info`` (``_extended`` for the assets): unspent, at the address, of the stored
lovelace, with no native token. An output carrying tokens cannot be spent without sending the
tokens somewhere, and coinpay moves only ADA, so its payment is refused (NotSweepable) and shows
in ``coinpay_sweeps_unsigned``; an operator moves it by hand.

**Fee** from the current epoch's parameters (``GET /epoch_params?_epoch_no=``): the ledger's
minimum for the signed transaction's exact size (``cardano_tx.build``), split across the batch
in proportion to what each merchant is owed (``utxo_sender.split_fee``), and returned per
payment in ``SignedSweep.fees``.

**Every output at least its minimum** (``coinsPerUTxOByte``): a merchant output below it is
refused like dust. A platform output below it (the batch's commission is under about 1 ADA) is
refused too, and the payments wait in ``forwarding`` for the next round, when the batch takes
every payment confirmed meanwhile: the commission accrues across payments until one output can
carry it (ADR 0025 says why not to raise it from the merchants' share).

**TTL** is the tip's slot plus ``ttl_slots`` (a day by default): a signed sweep that never
reached the chain becomes invalid then, instead of staying spendable for ever.

**Expiry and signing again** (an :class:`~keel.coinpay.chains.base.ExpiringSender`). After a
long outage, or a refusal that recurs until the TTL passes (a fee the parameters outgrew), the
stored bytes can never land, and the sweeper signs the payments again once :meth:`expired` says
all of these hold: the tip's slot is at least ``expiry_margin_slots`` past the TTL read from the
stored body (the margin is the lag a Koios instance may have behind another: one that has not
seen the block holding the sweep would say "in no block"); ``/tx_status`` knows the transaction
in no block; and ``/utxo_info`` finds every output it spends still unspent. Signing again then
spends those same outputs (the scanner's deposits at the same addresses), so at most one of the
two can ever land. An output spent by another transaction (or gone) is no expiry: the sweep is
left as it is, logged (``sweep_inputs_spent_elsewhere``) and counted
(``coinpay_sweep_inputs_spent_elsewhere_total``) for an operator to look at.

**Signing**: each payment address's Ed25519-BIP32 key is derived from the seed when signing,
checked to be the key of the address (its payment credential), and signs the body's id; one
witness per payment. The same inputs and outputs give the same bytes (Ed25519 is
deterministic); two signings of one batch spend the same inputs, so at most one can land.

**Broadcast** is ``POST /submittx`` (``application/cbor``). A transaction whose inputs are
already spent (``BadInputsUTxO``) is taken as this one sent before: only this transaction spends
them (each payment address belongs to one payment, and one sweep claims it); one past its TTL is
refused (``OutsideValidityIntervalUTxO``), and the sweeper asks :meth:`expired`.
**Confirmations** come from ``POST /tx_status``: Koios counts blocks after the transaction's
block, so its depth is that plus one; a transaction in no block is unknown (Koios sees no
mempool), and the sweeper sends the same bytes again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay.chains import cardano_tx
from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.chains.cardano import BLOCK_FIELDS, block_ref, lovelace
from keel.coinpay.chains.cardano_tx import ProtocolParams, TxIn, TxOut
from keel.coinpay.chains.config import ChainConfig
from keel.coinpay.chains.koios import KoiosClient
from keel.coinpay.chains.providers import send_breaker
from keel.coinpay.chains.rpc import DEFAULT_TIMEOUT_SECONDS, MalformedResponse
from keel.coinpay.chains.scanner import mined_transfers
from keel.coinpay.chains.utxo_sender import NotSweepable, split_fee
from keel.coinpay.errors import InvalidAddress, InvalidChainConfig, RpcCallRejected
from keel.coinpay.wallets import Family, HDRoot
from keel.core.logging import get_logger

__all__ = [
    "DEFAULT_BATCH_LIMIT",
    "DEFAULT_EXPIRY_MARGIN_SLOTS",
    "DEFAULT_TTL_SLOTS",
    "CardanoSender",
    "open_cardano_sender",
    "plan_sweep",
]

log = get_logger("keel.coinpay.cardano_sender")

#: Payments per sweep: about 200 bytes each (input, witness, output) under the 16 KiB limit.
DEFAULT_BATCH_LIMIT: Final = 40
#: Slots (seconds on mainnet) a signed sweep stays valid.
DEFAULT_TTL_SLOTS: Final = 86_400
#: Slots past its TTL before a stored sweep counts as expired: ten minutes (about 30 blocks) of
#: lag a Koios instance may have behind the one that answered the tip.
DEFAULT_EXPIRY_MARGIN_SLOTS: Final = 600
_SHELLEY_KEY_PAYMENT: Final = frozenset({0, 2, 6})  # CIP-19 headers with a key payment part
_ALREADY_SPENT: Final = "BadInputsUTxO"

log = get_logger("keel.coinpay.sweeps")

SPENT_ELSEWHERE = Counter(
    "coinpay_sweep_inputs_spent_elsewhere_total",
    "Cardano sweeps past their TTL in no block, not signed again because an output they spend "
    "is spent by another transaction or gone (an operator must look; see the log)",
    ["chain"],
)


@dataclass(frozen=True, slots=True)
class _Coin:
    """One confirmed, unspent output paying a payment's address."""

    payment_id: str
    ref: TxIn
    amount: int


class CardanoSender:
    """:class:`~keel.coinpay.chains.base.ExpiringSender` of Cardano (module docstring).

    ``client`` reaches Koios (the source's URLs); ``sessions`` reads what the scanner stored;
    ``keys`` returns the installation's HD root (``Custody.root``).
    """

    def __init__(
        self,
        client: KoiosClient,
        sessions: async_sessionmaker[AsyncSession],
        keys: Callable[[], Awaitable[HDRoot]],
        *,
        chain: str = "ADA",
        batch_limit: int = DEFAULT_BATCH_LIMIT,
        ttl_slots: int = DEFAULT_TTL_SLOTS,
        expiry_margin_slots: int = DEFAULT_EXPIRY_MARGIN_SLOTS,
    ) -> None:
        if not 1 <= batch_limit <= DEFAULT_BATCH_LIMIT:
            raise ValueError(f"batch_limit must be 1 to {DEFAULT_BATCH_LIMIT}")
        if ttl_slots < 1:
            raise ValueError("ttl_slots must be at least 1")
        if expiry_margin_slots < 0:
            raise ValueError("expiry_margin_slots must be at least 0")
        self.chain = chain
        self.batch_limit = batch_limit
        self._client = client
        self._sessions = sessions
        self._keys = keys
        self._ttl = ttl_slots
        self._margin = expiry_margin_slots

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

    # ChainSender ------------------------------------------------------------------------------

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        """One signed transaction sweeping ``inputs`` (module docstring); NotSweepable when the
        batch cannot be paid as asked, InvalidAddress for a payee that is not a mainnet
        Cardano address, ChainUnavailable when no provider answers."""
        if not inputs or len(inputs) > self.batch_limit:
            raise ValueError(f"a sweep takes 1 to {self.batch_limit} payments")
        if len({i.payment_id for i in inputs}) != len(inputs):
            raise ValueError("a payment appears twice in one sweep")
        platform = cardano_tx.address_bytes(platform_address)
        merchants = {i.payment_id: cardano_tx.address_bytes(i.merchant_address) for i in inputs}
        coins = await self._spendable(inputs)
        held = {
            i.payment_id: sum(c.amount for c in coins if c.payment_id == i.payment_id)
            for i in inputs
        }
        left_out = {
            i.payment_id: (
                f"{held[i.payment_id]} of its {i.received} lovelace are confirmed and unspent "
                "at its address, without native tokens"
            )
            for i in inputs
            if held[i.payment_id] < i.received or i.commission > i.received
        }
        # One payment that cannot go yet does not hold back the others of the batch.
        inputs = tuple(i for i in inputs if i.payment_id not in left_out)
        if not inputs:
            raise NotSweepable("; ".join(f"payment {p}: {why}" for p, why in left_out.items()))
        coins = [c for c in coins if c.payment_id not in left_out]
        keys = await self._payment_keys(inputs)
        owed = {i.payment_id: held[i.payment_id] - i.commission for i in inputs}
        commission = sum(i.commission for i in inputs)
        slot, params = await self._tip_and_params()

        unsigned, shares = plan_sweep(
            [c.ref for c in coins],
            owed,
            merchants,
            platform,
            commission,
            signers=len(keys),
            ttl=slot + self._ttl,
            params=params,
        )
        witnesses = sorted(
            cardano_tx.sign(key, bytes.fromhex(unsigned.tx_hash)) for key in keys.values()
        )
        raw = cardano_tx.signed_tx(unsigned.body, witnesses)
        if len(raw) > params.max_tx_size:
            raise NotSweepable(
                f"a sweep of {len(inputs)} payments is {len(raw)} bytes, over the "
                f"{params.max_tx_size} a transaction may have"
            )
        return SignedSweep(unsigned.tx_hash, raw.hex(), shares, left_out)

    async def broadcast(self, raw: str) -> None:
        """Send ``raw``; one whose inputs are already spent counts as sent (module docstring)."""
        try:
            await self._client.post_cbor("/submittx", bytes.fromhex(raw), parse=_tx_hash)
        except RpcCallRejected as exc:
            if _ALREADY_SPENT in exc.rpc_message:
                return
            raise

    async def confirmations(self, tx_hash: str) -> int | None:
        """How deep ``tx_hash`` is (1 in the newest block); None while in no block."""
        return await self._client.post(
            "/tx_status", {"_tx_hashes": [tx_hash]}, parse=lambda r: _depth(r, tx_hash)
        )

    async def expired(self, tx_hash: str, raw: str) -> bool:
        """True once the stored transaction ``raw`` can never land and signing its payments
        again spends the very outputs it spends (module docstring); False before, once it is in
        a block, or while an output it spends is spent elsewhere or gone (logged and counted).
        ValueError for bytes that are not ``tx_hash``; ChainUnavailable when Koios cannot tell."""
        stored = cardano_tx.read_signed(bytes.fromhex(raw))
        if stored.tx_hash != tx_hash:
            raise ValueError(f"the stored transaction is not {tx_hash}")
        slot, _ = await self._client.get(
            "/blocks", {"select": BLOCK_FIELDS, "limit": "1"}, parse=_tip
        )
        if slot < stored.ttl + self._margin:
            return False
        if await self.confirmations(tx_hash) is not None:
            return False
        refs = [f"{i.tx_hash}#{i.index}" for i in stored.inputs]
        found = await self._client.post(
            "/utxo_info", {"_utxo_refs": refs, "_extended": True}, parse=_utxos
        )
        spent = [ref for ref in refs if ref in found and found[ref].spent]
        missing = [ref for ref in refs if ref not in found]
        if spent or missing:
            SPENT_ELSEWHERE.labels(self.chain).inc()
            log.warning(
                "sweep_inputs_spent_elsewhere",
                chain=self.chain,
                tx_hash=tx_hash,
                spent=spent,
                missing=missing,
                why="past its TTL and in no block, but not signed again: an operator must look",
            )
            return False
        return True

    # Signing ----------------------------------------------------------------------------------

    async def _payment_keys(self, inputs: Sequence[SweepInput]) -> dict[str, bytes]:
        """Each payment address's extended key, derived now and checked against the address's
        payment credential (a payment of another seed is refused, not signed for)."""
        root = await self._keys()
        keys: dict[str, bytes] = {}
        for i in inputs:
            key = root.private_key(Family.ADA, i.derivation_index)
            address = cardano_tx.address_bytes(i.address)
            credential = cardano_tx.key_hash(cardano_tx.public_key(key))
            if address[0] >> 4 not in _SHELLEY_KEY_PAYMENT or address[1:29] != credential:
                raise NotSweepable(
                    f"payment {i.payment_id}: index {i.derivation_index} is not the key of "
                    "its address"
                )
            keys[i.payment_id] = key
        return keys

    async def _spendable(self, inputs: Sequence[SweepInput]) -> list[_Coin]:
        """The confirmed, unspent, ADA-only outputs paying the inputs' addresses."""
        payment_of = {i.address: i.payment_id for i in inputs}
        rows = await mined_transfers(self._sessions, self.chain, payment_of)
        if not rows:
            return []
        refs = [f"{r.tx_hash}#{r.position}" for r in rows]
        found = await self._client.post(
            "/utxo_info", {"_utxo_refs": refs, "_extended": True}, parse=_utxos
        )
        coins: list[_Coin] = []
        for row, ref in zip(rows, refs, strict=True):
            utxo = found.get(ref)
            if utxo is None or utxo.spent or utxo.address != row.address:
                continue  # spent, or no longer on the chain
            if utxo.amount != int(row.amount):
                continue
            if utxo.tokens:
                # Anyone may send tokens along: the output stays (an operator moves it by
                # hand), and its payment waits unless its other outputs cover what it received.
                log.warning(
                    "cardano_output_with_tokens_left", payment=payment_of[row.address], output=ref
                )
                continue
            coins.append(
                _Coin(payment_of[row.address], TxIn(row.tx_hash, int(row.position)), utxo.amount)
            )
        return coins

    async def _tip_and_params(self) -> tuple[int, ProtocolParams]:
        tip = await self._client.get("/blocks", {"select": BLOCK_FIELDS, "limit": "1"}, parse=_tip)
        slot, epoch = tip
        params = await self._client.get("/epoch_params", {"_epoch_no": str(epoch)}, parse=_params)
        return slot, params


def plan_sweep(
    refs: Sequence[TxIn],
    owed: Mapping[str, int],
    merchants: Mapping[str, bytes],
    platform: bytes,
    commission: int,
    *,
    signers: int,
    ttl: int,
    params: ProtocolParams,
) -> tuple[cardano_tx.UnsignedTx, dict[str, int]]:
    """The body spending ``refs`` that pays each merchant address (``merchants``: payment id
    -> address bytes) what its payments are ``owed`` less their share of the fee, and the
    platform ``commission``; with each payment's fee share. Raises NotSweepable when an output
    would be below its minimum (the commission's: it waits for more payments, ADR 0025)."""

    def outputs(fee: int) -> list[TxOut]:
        shares = split_fee(fee, owed)
        paid = {p: owed[p] - shares[p] for p in owed}
        if min(paid.values()) < 0:
            raise NotSweepable(f"the fee of {fee} lovelace is more than a merchant is owed")
        return _outputs(merchants, paid, platform, commission)

    tx = cardano_tx.build(refs, outputs, signers=signers, ttl=ttl, params=params)
    for output, minimum in cardano_tx.below_minimum(tx.outputs, params):
        if commission and output == tx.outputs[-1]:
            raise NotSweepable(
                f"the batch's commission of {commission} lovelace is below the {minimum} an "
                "output needs: it waits for more payments to join the batch (ADR 0025)"
            )
        raise NotSweepable(
            f"an output of {output.lovelace} lovelace is below the {minimum} an output needs "
            f"(the fee is {tx.fee})"
        )
    return tx, split_fee(tx.fee, owed)


def open_cardano_sender(
    config: ChainConfig,
    sessions: async_sessionmaker[AsyncSession],
    keys: Callable[[], Awaitable[HDRoot]],
    *,
    platform_address: str,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> CardanoSender:
    """The sender of Cardano through its configured Koios providers (close with ``aclose()``).
    Refuses, at boot, a chain with no URL, providers that do not speak Koios and a platform
    wallet that is not a mainnet Cardano address (InvalidChainConfig)."""
    if not config.configured:
        raise InvalidChainConfig(f"{config.chain} has no Koios URL to sweep through")
    if config.api != "koios":
        raise InvalidChainConfig(f"{config.chain}: sweeps go through Koios, not {config.api}")
    try:
        cardano_tx.address_bytes(platform_address)
    except InvalidAddress as exc:
        raise InvalidChainConfig(
            f"{config.chain}: the platform wallet is not a mainnet Cardano address ({exc.detail})"
        ) from None
    client = KoiosClient(
        config.chain, config.rpc_urls, timeout_seconds=timeout_seconds, breaker=send_breaker
    )
    return CardanoSender(client, sessions, keys, chain=config.chain)


def _outputs(
    merchants: Mapping[str, bytes], amounts: Mapping[str, int], platform: bytes, commission: int
) -> list[TxOut]:
    """One output per merchant address (its payments' amounts added), and one to the platform
    unless there is no commission."""
    by_address: dict[bytes, int] = {}
    for payment_id, amount in amounts.items():
        by_address[merchants[payment_id]] = by_address.get(merchants[payment_id], 0) + amount
    outputs = cardano_tx.merge_outputs(by_address)
    if commission:
        outputs.append(TxOut(platform, commission))
    return outputs


@dataclass(frozen=True, slots=True)
class _Utxo:
    address: str
    amount: int
    spent: bool
    tokens: bool


def _utxos(result: Any) -> dict[str, _Utxo]:
    if not isinstance(result, list):
        raise MalformedResponse("/utxo_info answered no list")
    found: dict[str, _Utxo] = {}
    for row in result:
        index = row["tx_index"]
        if not isinstance(index, int) or isinstance(index, bool):
            raise MalformedResponse(f"output index {index!r:.40}")
        assets = row.get("asset_list")
        if not isinstance(assets, list):
            raise MalformedResponse("/utxo_info without asset_list (is _extended honoured?)")
        spent = row.get("is_spent")
        if not isinstance(spent, bool):
            raise MalformedResponse("/utxo_info without is_spent")
        found[f"{row['tx_hash']}#{index}"] = _Utxo(
            str(row["address"]), lovelace(row["value"]), spent, bool(assets)
        )
    return found


def _tip(result: Any) -> tuple[int, int]:
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], dict):
        raise MalformedResponse("/blocks answered no newest block")
    row = result[0]
    block_ref(row)
    return _natural(row.get("abs_slot"), "abs_slot"), _natural(row.get("epoch_no"), "epoch_no")


def _params(result: Any) -> ProtocolParams:
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], dict):
        raise MalformedResponse("/epoch_params answered no one epoch")
    row = result[0]
    # coins_per_utxo_size is a string of lovelace; the others are JSON numbers.
    per_byte = lovelace(row.get("coins_per_utxo_size"))
    params = ProtocolParams(
        min_fee_a=_natural(row.get("min_fee_a"), "min_fee_a"),
        min_fee_b=_natural(row.get("min_fee_b"), "min_fee_b"),
        coins_per_utxo_byte=per_byte,
        max_tx_size=_natural(row.get("max_tx_size"), "max_tx_size"),
    )
    if min(params.min_fee_a, params.coins_per_utxo_byte, params.max_tx_size) < 1:
        raise MalformedResponse(f"/epoch_params with unusable parameters: {params}")
    return params


def _natural(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"{name} {value!r:.40}")
    return value


def _tx_hash(result: Any) -> str:
    if not isinstance(result, str) or len(result) != 64:
        raise MalformedResponse(f"/submittx answered {result!r:.80}")
    return result


def _depth(result: Any, tx_hash: str) -> int | None:
    if not isinstance(result, list) or len(result) != 1 or not isinstance(result[0], dict):
        raise MalformedResponse("/tx_status answered no one transaction")
    row = result[0]
    if row.get("tx_hash") != tx_hash:
        raise MalformedResponse("/tx_status answered about another transaction")
    after = row.get("num_confirmations")
    if after is None:
        return None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise MalformedResponse(f"num_confirmations {after!r:.40}")
    return after + 1
