"""What a chain source saw of one transaction, in our terms, never a provider's JSON.

A transaction is reported as every value movement it made (:class:`Transfer`), not as one
"payment": an ERC-20 call can emit several Transfer logs and a Solana transaction can move SOL
and tokens at once, so which of them pays an invoice is the domain check's call
(:mod:`keel.coach.payments.verify`), not the adapter's.

Addresses are kept in each chain's canonical form (:func:`canonical_address`): EVM lower-case
hex with ``0x`` (EIP-55 case is a checksum, not part of the address), Solana and TRON base58
exactly as written (base58 is case-sensitive; a TRON address given as ``41…`` hex is
rewritten to its base58check form).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from bip_utils import Base58Decoder, Base58Encoder

__all__ = [
    "NATIVE",
    "Asset",
    "Chain",
    "Native",
    "ObservedPayment",
    "Token",
    "Transfer",
    "TxStatus",
    "canonical_address",
    "same_address",
]


class Chain(enum.StrEnum):
    """A chain a pasted hash is verified on (the values are ``coach_invoices.chain``'s)."""

    ETH = "ETH"
    SOL = "SOL"
    TRON = "TRON"


@dataclass(frozen=True, slots=True)
class Native:
    """The chain's own coin (wei, lamports, sun)."""

    def __str__(self) -> str:
        return "native"


@dataclass(frozen=True, slots=True)
class Token:
    """A token, named by its contract (EVM, TRON) or mint (Solana) address, never by symbol:
    anyone can deploy a contract whose symbol is "USDT"."""

    contract: str

    def __str__(self) -> str:
        return self.contract


Asset = Native | Token
NATIVE: Final = Native()


class TxStatus(enum.StrEnum):
    PENDING = "pending"  # known to the source but in no block yet (success unknown)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # in a block, reverted: no value moved (whatever its fields say)


@dataclass(frozen=True, slots=True)
class Transfer:
    """One movement of value inside a transaction, in the asset's base units."""

    asset: Asset
    sender: str
    recipient: str
    amount: int

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"a transfer amount is a non-negative int, got {self.amount!r}")


@dataclass(frozen=True, slots=True)
class ObservedPayment:
    """One transaction as a source saw it.

    ``block_time`` is the time of its block (UTC; None while pending). ``confirmations``
    counts blocks from its own up to the tip (1 in the tip block) where the source counts
    blocks (EVM); None where it vouches for finality instead, as ``finalized`` (Solana's
    ``finalized`` commitment, Tronscan's ``confirmed``).
    """

    chain: Chain
    tx_hash: str
    status: TxStatus
    sender: str
    transfers: tuple[Transfer, ...]
    block_time: datetime | None
    confirmations: int | None
    finalized: bool

    def __post_init__(self) -> None:
        if self.block_time is not None and self.block_time.utcoffset() is None:
            raise ValueError("block_time must be timezone-aware")
        if self.status is not TxStatus.PENDING and self.block_time is None:
            raise ValueError("a transaction in a block has a block time")

    @property
    def succeeded(self) -> bool:
        return self.status is TxStatus.SUCCEEDED


_EVM_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}", re.ASCII)
_BASE58: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]+", re.ASCII)
_TRON_HEX: Final = re.compile(r"41[0-9a-fA-F]{40}", re.ASCII)
_TRON_PREFIX: Final = b"\x41"  # mainnet account prefix: base58check of it starts with "T"


def canonical_address(chain: Chain, address: str) -> str:
    """``address`` in ``chain``'s canonical form; ValueError when it is not an address there."""
    chain, text = Chain(chain), address.strip()
    if chain is Chain.ETH:
        if not _EVM_ADDRESS.fullmatch(text):
            raise ValueError(f"not an EVM address: {address!r}")
        return text.lower()
    if chain is Chain.SOL:
        if len(text) > 44 or not _BASE58.fullmatch(text) or len(_b58decode(text)) != 32:
            raise ValueError(f"not a Solana address: {address!r}")
        return text
    if _TRON_HEX.fullmatch(text):
        return str(Base58Encoder.CheckEncode(bytes.fromhex(text)))
    if len(text) != 34 or not _BASE58.fullmatch(text):
        raise ValueError(f"not a TRON address: {address!r}")
    try:
        raw = bytes(Base58Decoder.CheckDecode(text))
    except Exception as exc:  # bip_utils raises its own checksum error types
        raise ValueError(f"not a TRON address (bad checksum): {address!r}") from exc
    if len(raw) != 21 or raw[:1] != _TRON_PREFIX:
        raise ValueError(f"not a TRON address: {address!r}")
    return text


def same_address(chain: Chain, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are one address on ``chain``; an unreadable one equals none."""
    try:
        return canonical_address(chain, a) == canonical_address(chain, b)
    except ValueError:
        return False


def _b58decode(text: str) -> bytes:
    return bytes(Base58Decoder.Decode(text))
