"""Which chain a pasted transaction hash belongs to, from its format alone.

* ``0x`` + 64 hex: an EVM transaction hash (ETH).
* 64 hex without ``0x``: a TRON transaction id, or an EVM hash whose ``0x`` was lost (BTC
  txids look the same, but we take no BTC). Both candidates are returned so the caller can
  ask, or pick the one chain it has an open invoice on.
* 86 to 88 base58 characters that decode to 64 bytes: a Solana signature (an ed25519
  signature is 64 bytes; its base58 form is usually 88 characters, rarely fewer).

Each candidate carries the hash in its chain's canonical form: lower-case hex, with ``0x`` for
EVM and without for TRON; a Solana signature unchanged (base58 is case-sensitive). Anything
else raises :class:`~keel.coach.payments.errors.InvalidHash` with a one-line message the bot
can show as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bip_utils import Base58Decoder

from keel.coach.payments.errors import InvalidHash
from keel.coach.payments.observed import Chain, canonical_address

__all__ = ["Candidate", "Detected", "detect"]

_EVM_HASH: Final = re.compile(r"0[xX][0-9a-fA-F]{64}", re.ASCII)
_BARE_HASH: Final = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_HEX: Final = re.compile(r"(0[xX])?[0-9a-fA-F]+", re.ASCII)
_SOL_SIGNATURE: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]{86,88}", re.ASCII)
_BASE58: Final = re.compile(r"[1-9A-HJ-NP-Za-km-z]+", re.ASCII)
# Longer than any hash we take: refuse before decoding (base58 decoding is quadratic).
_MAX_LENGTH: Final = 100


@dataclass(frozen=True, slots=True)
class Candidate:
    chain: Chain
    tx_hash: str  # canonical on that chain: the replay store's key


@dataclass(frozen=True, slots=True)
class Detected:
    """The chains a hash may belong to: one, or several when its format is ambiguous."""

    candidates: tuple[Candidate, ...]

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1

    @property
    def chains(self) -> tuple[Chain, ...]:
        return tuple(c.chain for c in self.candidates)

    def on(self, chain: Chain) -> str | None:
        """The canonical hash on ``chain``, or None when it cannot be one of ``chain``'s."""
        return next((c.tx_hash for c in self.candidates if c.chain is chain), None)


def detect(text: str) -> Detected:
    """The candidate chains of a pasted hash; raises InvalidHash with a one-line reason."""
    value = text.strip()
    if not value:
        raise InvalidHash("Paste the transaction hash of your payment (its TxID or signature).")
    if len(value) > _MAX_LENGTH:
        raise InvalidHash("That is too long to be a transaction hash.")
    if _EVM_HASH.fullmatch(value):
        return Detected((Candidate(Chain.ETH, "0x" + value[2:].lower()),))
    if _BARE_HASH.fullmatch(value):
        bare = value.lower()
        return Detected((Candidate(Chain.ETH, "0x" + bare), Candidate(Chain.TRON, bare)))
    if _SOL_SIGNATURE.fullmatch(value) and _decodes_to(value, 64):
        return Detected((Candidate(Chain.SOL, value),))
    raise InvalidHash(_why_not(value))


def _why_not(value: str) -> str:
    if any(_is_address(chain, value) for chain in Chain):
        return "That is a wallet address, not a transaction hash: paste your payment's hash."
    if _HEX.fullmatch(value):
        digits = len(value) - (2 if value[:2].lower() == "0x" else 0)
        return f"A transaction hash has 64 hex characters; that has {digits}."
    if _BASE58.fullmatch(value) and 80 <= len(value) <= 90:
        return "That looks like a Solana signature but does not decode to 64 bytes."
    return (
        "That is not a transaction hash: paste the 0x… hash (Ethereum), "
        "the 64-character TxID (TRON) or the signature (Solana)."
    )


def _is_address(chain: Chain, value: str) -> bool:
    try:
        canonical_address(chain, value)
    except ValueError:
        return False
    return True


def _decodes_to(value: str, size: int) -> bool:
    return len(bytes(Base58Decoder.Decode(value))) == size
