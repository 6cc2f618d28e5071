"""An invoice's state machine, pure: status and signal in, status and effect out. No I/O.

coinpay's payment events reduce to four signals::

    paid      payment.confirmed / .completed / .forwarded: coinpay counts the money as received
    expired   payment.expired, or payment.reversed back to expired: the window closed unpaid
    failed    payment.failed, or payment.reversed to failed: a reorg took a confirmed deposit back
    none      anything else (created, pending, confirming, reversed to pending, business.*)

The statuses are ordered ``open < expired < paid`` and a signal moves the invoice to the
greater of where it is and where the signal points (paid → paid, expired and failed →
expired, none → open)::

    open ──paid──▶ paid ◀──paid (late)── expired
      └────expired / failed────────────────▲

So the final status depends only on which signals arrived, never on their order or repeats:
coinpay's worker may deliver late, twice, or out of order. In particular:

* ``paid`` unlocks exactly once, from ``open`` or from ``expired`` (coinpay keeps watching an
  expired payment and accepts a late one: the user paid, so they get what they paid for);
* ``expired`` after ``paid`` is stale (delivered out of order) and changes nothing;
* ``failed`` after ``paid`` keeps the access already given (revoking days is a support
  decision, not a webhook's) but is reported as ``reversed`` so it can be looked at.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    EXPIRED = "expired"
    PAID = "paid"


class Signal(enum.StrEnum):
    PAID = "paid"
    EXPIRED = "expired"
    FAILED = "failed"
    NONE = "none"


class Effect(enum.StrEnum):
    UNLOCK = "unlock"  # into paid: extend the user's paid_until by the invoice's days
    ALREADY_PAID = "already_paid"  # paid again (another event of the same payment)
    CLOSE = "close"  # open -> expired: the invoice can no longer be paid as issued
    REVERSED = "reversed"  # paid, then failed: access kept, flagged
    NONE = "none"


_RANK = {InvoiceStatus.OPEN: 0, InvoiceStatus.EXPIRED: 1, InvoiceStatus.PAID: 2}
_TARGET = {
    Signal.PAID: InvoiceStatus.PAID,
    Signal.EXPIRED: InvoiceStatus.EXPIRED,
    Signal.FAILED: InvoiceStatus.EXPIRED,
    Signal.NONE: InvoiceStatus.OPEN,
}
PAID_EVENTS = frozenset({"payment.confirmed", "payment.completed", "payment.forwarded"})


@dataclass(frozen=True)
class Step:
    status: InvoiceStatus
    effect: Effect


def signal(event_type: str, payment_status: str | None) -> Signal:
    """What a coinpay event means for the invoice of its payment. ``payment_status`` is the
    payment's status the event carries (``data.status``)."""
    if event_type in PAID_EVENTS:
        return Signal.PAID
    if event_type == "payment.expired":
        return Signal.EXPIRED
    if event_type == "payment.failed":
        return Signal.FAILED
    if event_type == "payment.reversed":
        # A reorg: back to waiting (nothing for us), expired, or failed after confirmation.
        if payment_status == "failed":
            return Signal.FAILED
        if payment_status == "expired":
            return Signal.EXPIRED
    return Signal.NONE


def advance(status: InvoiceStatus, sig: Signal) -> Step:
    """The invoice after ``sig`` (module docstring)."""
    target = _TARGET[sig]
    new = target if _RANK[target] > _RANK[status] else status
    if new is InvoiceStatus.PAID and status is not InvoiceStatus.PAID:
        return Step(new, Effect.UNLOCK)
    if status is InvoiceStatus.PAID and sig is Signal.PAID:
        return Step(new, Effect.ALREADY_PAID)
    if status is InvoiceStatus.PAID and sig is Signal.FAILED:
        return Step(new, Effect.REVERSED)
    if status is InvoiceStatus.OPEN and new is InvoiceStatus.EXPIRED:
        return Step(new, Effect.CLOSE)
    return Step(new, Effect.NONE)
