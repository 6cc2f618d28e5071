"""Cardano transactions as coinpay writes them: key-witnessed inputs, ADA-only outputs, the
exact minimum fee, and the smallest output the ledger accepts.

**Shape** (Conway CDDL, the parts used): a transaction is ``[body, witness_set, true, null]``;
the body a map ``{0: inputs, 1: outputs, 2: fee, 3: ttl}``; an input ``[tx_hash, index]``; an
output the pre-Babbage array ``[address_bytes, lovelace]`` (still valid, and the smallest
encoding); the witness set ``{0: [[vkey, signature], ...]}``. Sets are written as plain arrays,
which Conway still accepts (tag 258 is optional until a later era makes it mandatory). The
transaction id is BLAKE2b-256 of the body's bytes, which are embedded verbatim.

**Fee.** ``min_fee_a × size + min_fee_b`` lovelace (no scripts, so no execution or reference-
script costs), ``size`` being the signed transaction's length in bytes. Ed25519 signatures and
keys have fixed lengths, so the size is known before signing; the fee and the outputs it is taken
from change the size of their own integers, so :func:`build` iterates to the fixed point.

**Minimum output** (Babbage and later): an output must hold at least ``(160 + size) ×
coinsPerUTxOByte`` lovelace, ``size`` being the output's own encoding (160 bytes stand for the
UTxO entry's overhead). :func:`output_minimum` is that rule; :func:`min_output_lovelace` the
smallest amount meeting it for an address; :func:`minimum_payment_lovelace` what coinpay
requires of an ADA payment at creation (ADR 0025).

**Signing** is Ed25519-BIP32 (Khovratovich-Law, CIP-1852's keys): the 64-byte extended key is
``kL ‖ kR``; the public key is ``kL·B``; the nonce is ``SHA-512(kR ‖ message)``; the signature
is an ordinary Ed25519 signature, verified by any Ed25519 implementation. The point
multiplications are libsodium's (PyNaCl, ``noclamp``: ``kL`` is already a valid scalar); the
scalar arithmetic is Python integers.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import cbor2
import nacl.bindings
from bip_utils import Base58Decoder, Bech32Decoder

from keel.coinpay import commission, money
from keel.coinpay.errors import AmountBelowMinimumOutput
from keel.coinpay.wallets import Family, validate_address

__all__ = [
    "MAINNET_PARAMS",
    "ProtocolParams",
    "SignedBody",
    "TxIn",
    "TxOut",
    "UnsignedTx",
    "address_bytes",
    "below_minimum",
    "build",
    "check_payment_amount",
    "key_hash",
    "merge_outputs",
    "min_fee",
    "min_output_lovelace",
    "minimum_payment_lovelace",
    "output_minimum",
    "public_key",
    "read_signed",
    "sign",
    "signed_tx",
    "tx_id",
]

#: Bytes the ledger adds to an output's encoded size for its UTxO entry (Babbage, CIP-55).
UTXO_ENTRY_OVERHEAD: Final = 160
#: Ed25519's group order.
_L: Final = 2**252 + 27742317777372353535851937790883648493
_VKEY, _SIGNATURE = 32, 64
_BASE_ADDRESS_BYTES: Final = 57  # header, payment key hash, stake key hash (CIP-19)
_MAX_UINT64: Final = 2**64 - 1
_TX_HASH_HEX: Final = 64


@dataclass(frozen=True, slots=True)
class ProtocolParams:
    """The protocol parameters a transfer depends on (Koios ``/epoch_params`` names them
    ``min_fee_a``, ``min_fee_b``, ``coins_per_utxo_size``, ``max_tx_size``)."""

    min_fee_a: int  # lovelace per byte
    min_fee_b: int  # lovelace per transaction
    coins_per_utxo_byte: int
    max_tx_size: int


#: Mainnet's since the Vasil (Babbage) hard fork; the sender reads the current epoch's instead.
MAINNET_PARAMS: Final = ProtocolParams(
    min_fee_a=44, min_fee_b=155_381, coins_per_utxo_byte=4_310, max_tx_size=16_384
)


@dataclass(frozen=True, slots=True, order=True)
class TxIn:
    """An output to spend: its transaction's id (hex) and its index there."""

    tx_hash: str
    index: int


@dataclass(frozen=True, slots=True)
class TxOut:
    """An ADA-only output: the raw address bytes (:func:`address_bytes`) and lovelace."""

    address: bytes
    lovelace: int


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    """A body ready to sign: its bytes, its id, its fee and outputs as written."""

    body: bytes
    tx_hash: str
    fee: int
    outputs: tuple[TxOut, ...]


def address_bytes(address: str) -> bytes:
    """The bytes an output carries for ``address`` (a mainnet Shelley ``addr1…`` or Byron
    address, as ``validate_address`` accepts them). Raises InvalidAddress otherwise."""
    normalised = validate_address(Family.ADA, address)
    if normalised.startswith("addr1"):
        return bytes(Bech32Decoder.Decode("addr", normalised))
    return bytes(Base58Decoder.Decode(normalised))


def key_hash(vkey: bytes) -> bytes:
    """BLAKE2b-224 of a verification key: the payment credential an address carries."""
    return hashlib.blake2b(vkey, digest_size=28).digest()


def output_minimum(output: TxOut, params: ProtocolParams = MAINNET_PARAMS) -> int:
    """The least lovelace ``output`` may hold, given its own encoding (module docstring)."""
    return (UTXO_ENTRY_OVERHEAD + len(_output_cbor(output))) * params.coins_per_utxo_byte


def min_output_lovelace(address: bytes, params: ProtocolParams = MAINNET_PARAMS) -> int:
    """The smallest lovelace an ADA-only output to ``address`` (raw bytes) can hold. The
    amount's own encoding counts in the size, so this is the least amount that meets the
    rule for itself."""
    amount = 0
    while (need := output_minimum(TxOut(address, amount), params)) > amount:
        amount = need
    return amount


def minimum_payment_lovelace(commission_bps: int, params: ProtocolParams = MAINNET_PARAMS) -> int:
    """The least an ADA payment may ask for (ADR 0025): after the commission
    (``commission_bps``, the highest plan's) and the fee of a sweep of it alone, what is left
    for the merchant is still an output the ledger accepts. Conservative: the merchant's and
    the payment's outputs are taken as base addresses with an amount written in 9 bytes."""
    base = bytes(_BASE_ADDRESS_BYTES)
    floor = output_minimum(TxOut(base, _MAX_UINT64), params)
    lone = build(
        [TxIn("00" * 32, 0)],
        lambda fee: [TxOut(base, _MAX_UINT64), TxOut(base, _MAX_UINT64)],
        signers=1,
        ttl=_MAX_UINT64,
        params=params,
    )
    return math.ceil((floor + lone.fee) * 10_000 / (10_000 - commission_bps))


def check_payment_amount(amount_lovelace: int) -> None:
    """Raise AmountBelowMinimumOutput for an ADA payment below :func:`minimum_payment_lovelace`
    at mainnet's parameters and the highest plan's commission (ADR 0025)."""
    minimum = minimum_payment_lovelace(max(commission.PLANS.values()))
    if amount_lovelace < minimum:
        raise AmountBelowMinimumOutput(
            f"ADA payments must be at least {money.format_units(minimum, 6)} ADA (this one is "
            f"{money.format_units(amount_lovelace, 6)} ADA): Cardano refuses outputs below "
            f"about {money.format_units(min_output_lovelace(bytes(_BASE_ADDRESS_BYTES)), 6)} "
            "ADA, and forwarding the payment to the merchant costs a network fee",
            minimum_ada=money.format_units(minimum, 6),
        )


def min_fee(size: int, params: ProtocolParams) -> int:
    """The ledger's minimum fee of a ``size``-byte transaction without scripts."""
    return params.min_fee_a * size + params.min_fee_b


def build(
    inputs: Sequence[TxIn],
    outputs: Callable[[int], Sequence[TxOut]],
    *,
    signers: int,
    ttl: int,
    params: ProtocolParams,
) -> UnsignedTx:
    """The body spending ``inputs`` with ``outputs(fee)`` and the least fee that covers the
    signed transaction (with ``signers`` key witnesses), found by iterating to the fixed point.
    Inputs are written sorted (the ledger orders them so anyway)."""
    if not inputs or signers < 1:
        raise ValueError("a transaction spends at least one input with one key")
    ordered = sorted(set(inputs))
    fee = 0
    dummy = [(bytes(_VKEY), bytes(_SIGNATURE))] * signers
    for _ in range(16):
        written = tuple(outputs(fee))
        body = _body_cbor(ordered, written, fee, ttl)
        needed = min_fee(len(signed_tx(body, dummy)), params)
        if needed <= fee:
            return UnsignedTx(body, tx_id(body), fee, written)
        fee = needed
    raise RuntimeError("the fee did not converge")  # pragma: no cover - sizes only grow slowly


@dataclass(frozen=True, slots=True)
class SignedBody:
    """What a stored transaction commits to: its id, the outputs it spends, its TTL (the
    first slot at which it is no longer valid)."""

    tx_hash: str
    inputs: tuple[TxIn, ...]
    ttl: int


def read_signed(raw: bytes) -> SignedBody:
    """The id, inputs and TTL of a transaction :func:`signed_tx` wrote, its body read back
    verbatim (so the id is the one signed); ValueError for any other bytes."""
    stream = io.BytesIO(raw)
    if stream.read(1) != b"\x84":
        raise ValueError("not a signed Cardano transaction: [body, witnesses, valid, data]")
    try:
        body = cbor2.CBORDecoder(stream).decode()
        inputs = tuple(TxIn(bytes(h).hex(), i) for h, i in body[0])
        ttl = body[3]
    except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a signed Cardano transaction: {exc}"[:200]) from exc
    if not isinstance(ttl, int) or not inputs or any(not isinstance(i.index, int) for i in inputs):
        raise ValueError("not a signed Cardano transaction: no TTL or no inputs")
    return SignedBody(tx_id(raw[1 : stream.tell()]), inputs, ttl)


def tx_id(body: bytes) -> str:
    """The transaction id of a body: BLAKE2b-256 of its bytes, hex."""
    return hashlib.blake2b(body, digest_size=32).hexdigest()


def signed_tx(body: bytes, witnesses: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``[body, {0: [[vkey, signature], ...]}, true, null]`` with ``body`` embedded verbatim."""
    witness_set = cbor2.dumps({0: [[vkey, sig] for vkey, sig in witnesses]})
    return b"\x84" + body + witness_set + b"\xf5\xf6"


def public_key(extended_key: bytes) -> bytes:
    """The Ed25519 verification key of a 64-byte Ed25519-BIP32 key ``kL ‖ kR``."""
    if len(extended_key) != 64:
        raise ValueError("an extended key is 64 bytes")
    return bytes(nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(extended_key[:32]))


def sign(extended_key: bytes, message: bytes) -> tuple[bytes, bytes]:
    """``(vkey, signature)`` of ``message`` under the 64-byte Ed25519-BIP32 key (module
    docstring). Deterministic: the same key and message give the same signature."""
    vkey = public_key(extended_key)
    k_left, k_right = extended_key[:32], extended_key[32:]
    r = int.from_bytes(hashlib.sha512(k_right + message).digest(), "little") % _L
    big_r = bytes(nacl.bindings.crypto_scalarmult_ed25519_base_noclamp(r.to_bytes(32, "little")))
    h = int.from_bytes(hashlib.sha512(big_r + vkey + message).digest(), "little") % _L
    s = (r + h * int.from_bytes(k_left, "little")) % _L
    return vkey, big_r + s.to_bytes(32, "little")


def merge_outputs(amounts: Mapping[bytes, int]) -> list[TxOut]:
    """One output per address, in a stable order (amount, then address bytes)."""
    return sorted((TxOut(a, v) for a, v in amounts.items()), key=lambda o: (o.lovelace, o.address))


def below_minimum(outputs: Sequence[TxOut], params: ProtocolParams) -> list[tuple[TxOut, int]]:
    """The outputs holding less than their minimum, each with that minimum."""
    return [(o, m) for o in outputs if o.lovelace < (m := output_minimum(o, params))]


def _output_cbor(output: TxOut) -> bytes:
    if not 0 <= output.lovelace <= _MAX_UINT64:
        raise ValueError("an output holds 0 to 2**64 - 1 lovelace")
    return bytes(cbor2.dumps([output.address, output.lovelace]))


def _body_cbor(inputs: Sequence[TxIn], outputs: Sequence[TxOut], fee: int, ttl: int) -> bytes:
    for i in inputs:
        if len(i.tx_hash) != _TX_HASH_HEX or not 0 <= i.index < 2**16:
            raise ValueError(f"not an output reference: {i.tx_hash}#{i.index}")
    if any(not 0 <= o.lovelace <= _MAX_UINT64 for o in outputs) or not 0 <= fee <= _MAX_UINT64:
        raise ValueError("amounts are 0 to 2**64 - 1 lovelace")
    body = {
        0: [[bytes.fromhex(i.tx_hash), i.index] for i in inputs],
        1: [[o.address, o.lovelace] for o in outputs],
        2: fee,
        3: ttl,
    }
    return bytes(cbor2.dumps(body))
