"""Does an observed transaction pay an invoice? A pure check: no I/O, no clock.

In this order, the first that applies decides:

1. another chain than the invoice's: refused (``wrong_chain``);
2. in no block yet: wait (``pending``);
3. reverted: refused (``tx_failed``); a failed transaction moved nothing;
4. its block is older than the invoice (less :data:`BLOCK_TIME_SLACK`): refused
   (``sent_before_invoice``), so an old payment to our address (someone else's, never
   pasted) cannot buy a new invoice;
5. nothing reached the invoice's address: refused (``wrong_recipient``);
6. something reached it, but not the invoice's asset (ETH for USDT, or a look-alike token
   whose symbol is "USDT" but whose contract is not ours): refused (``wrong_token``);
7. less than the invoice's amount in that asset: refused (``too_little``); several transfers
   to us in one transaction add up;
8. not final yet (too few confirmations, or the source does not vouch for it): wait
   (``not_final``); the same hash is checked again later;
9. otherwise: accepted, with the amount received (more than asked is accepted).

Refusals come before finality: what a transaction pays never changes with confirmations, so a
user who sent too little learns it at once instead of after twelve blocks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from keel.coach.payments.observed import (
    Asset,
    Chain,
    Native,
    ObservedPayment,
    Token,
    TxStatus,
    canonical_address,
    same_address,
)

__all__ = [
    "BLOCK_TIME_SLACK",
    "Accepted",
    "Expected",
    "Refusal",
    "Refused",
    "Verdict",
    "Wait",
    "WaitReason",
    "check",
]

# A block's time is its producer's, in whole seconds, and can precede a transaction in it:
# Ethereum stamps a block with its slot's start though builders add transactions for seconds
# after, and Solana's blockTime is a stake-weighted estimate. So a payment sent right after the
# invoice may carry a time a little before it. Nobody pays within seconds of seeing an address,
# and an unclaimed old payment is older than this by far.
BLOCK_TIME_SLACK: Final = timedelta(seconds=15)


@dataclass(frozen=True, slots=True)
class Expected:
    """What an invoice asks: ``amount`` at least, in base units of ``asset``, to ``recipient``
    on ``chain``, in a block no older than ``created_at``. ``confirmations``: blocks needed
    where the source counts blocks (EVM); elsewhere the source's finality flag decides."""

    chain: Chain
    asset: Asset
    amount: int
    recipient: str
    created_at: datetime
    confirmations: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount <= 0:
            raise ValueError(f"an invoice amount is a positive int, got {self.amount!r}")
        if self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        if self.confirmations < 0:
            raise ValueError("confirmations cannot be negative")
        object.__setattr__(self, "chain", Chain(self.chain))
        # Canonical once, here: a misconfigured recipient fails loudly, not as "wrong recipient".
        object.__setattr__(self, "recipient", canonical_address(self.chain, self.recipient))
        if isinstance(self.asset, Token):
            contract = canonical_address(self.chain, self.asset.contract)
            object.__setattr__(self, "asset", Token(contract))


class Refusal(enum.StrEnum):
    WRONG_CHAIN = "wrong_chain"
    FAILED = "tx_failed"
    BEFORE_INVOICE = "sent_before_invoice"
    WRONG_RECIPIENT = "wrong_recipient"
    WRONG_TOKEN = "wrong_token"  # noqa: S105 - a refusal code, not a credential
    TOO_LITTLE = "too_little"


_REFUSAL_LINES: Final = {
    Refusal.WRONG_CHAIN: "That transaction is on another chain than the invoice.",
    Refusal.FAILED: "That transaction failed on chain, so it moved no funds.",
    Refusal.BEFORE_INVOICE: "That transaction was sent before this invoice was created.",
    Refusal.WRONG_RECIPIENT: "That transaction paid nothing to the invoice's address.",
    Refusal.WRONG_TOKEN: "That transaction sent another coin or token than the invoice asks.",
    Refusal.TOO_LITTLE: "That transaction sent less than the invoice's amount.",
}


class WaitReason(enum.StrEnum):
    PENDING = "pending"  # not in a block yet
    NOT_FINAL = "not_final"  # in a block, not final yet


@dataclass(frozen=True, slots=True)
class Accepted:
    """It pays the invoice: ``amount`` base units of the invoice's asset reached us."""

    amount: int


@dataclass(frozen=True, slots=True)
class Refused:
    """It does not pay the invoice, and never will. ``received``: base units of the
    invoice's asset that did reach us (for ``too_little``; 0 otherwise)."""

    reason: Refusal
    received: int = 0

    @property
    def line(self) -> str:
        return _REFUSAL_LINES[self.reason]


@dataclass(frozen=True, slots=True)
class Wait:
    """It may pay the invoice once final: check again later. ``confirmations`` / ``needed``
    are blocks where the chain counts them (None / 0 otherwise)."""

    reason: WaitReason
    confirmations: int | None = None
    needed: int = 0

    @property
    def line(self) -> str:
        if self.reason is WaitReason.PENDING:
            return "That transaction is not in a block yet; try again in a minute."
        if self.confirmations is not None and self.needed:
            return (
                f"That transaction has {self.confirmations} of {self.needed} confirmations; "
                "try again in a few minutes."
            )
        return "That transaction is not final yet; try again in a minute."


Verdict = Accepted | Refused | Wait


def check(invoice: Expected, observed: ObservedPayment) -> Verdict:
    """Whether ``observed`` pays ``invoice`` (the module docstring gives the rules' order)."""
    if observed.chain is not invoice.chain:
        return Refused(Refusal.WRONG_CHAIN)
    if observed.status is TxStatus.PENDING or observed.block_time is None:
        return Wait(WaitReason.PENDING)
    if observed.status is TxStatus.FAILED:
        return Refused(Refusal.FAILED)
    if observed.block_time < invoice.created_at - BLOCK_TIME_SLACK:
        return Refused(Refusal.BEFORE_INVOICE)
    to_us = [
        t for t in observed.transfers if same_address(invoice.chain, t.recipient, invoice.recipient)
    ]
    if not to_us:
        return Refused(Refusal.WRONG_RECIPIENT)
    paid = [t for t in to_us if _same_asset(invoice.chain, t.asset, invoice.asset)]
    if not paid:
        return Refused(Refusal.WRONG_TOKEN)
    received = sum(t.amount for t in paid)
    if received < invoice.amount:
        return Refused(Refusal.TOO_LITTLE, received)
    counted = observed.confirmations
    if not observed.finalized and (counted is None or counted < invoice.confirmations):
        needed = invoice.confirmations if counted is not None else 0
        return Wait(WaitReason.NOT_FINAL, counted, needed)
    return Accepted(received)


def _same_asset(chain: Chain, a: Asset, b: Asset) -> bool:
    if isinstance(a, Native) or isinstance(b, Native):
        return isinstance(a, Native) and isinstance(b, Native)
    return same_address(chain, a.contract, b.contract)
