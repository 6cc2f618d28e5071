"""The payment state machine, pure: state in, state and transitions out. No I/O.

    pending ──full──▶ confirming ──depth──▶ confirmed ──▶ forwarding ──▶ forwarded
       │                  │                     │
     expiry             reorg                 reorg
       ▼                  ▼                     ▼
    expired ──late full──▶ confirming         failed

Semantics follow BTCPay: a partial payment leaves the payment ``pending`` with ``paid_partial``
until it expires; a payment that becomes full after expiry (within the monitoring window) moves
on with ``paid_late``; paying more than asked sets ``paid_over``. Confirmations counted are the
depth at which the deposits cover the amount. A reorg that leaves a confirming or confirmed
payment short makes it ``failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from keel.coinpay.money import covers


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    FORWARDING = "forwarding"
    FORWARDED = "forwarded"
    EXPIRED = "expired"
    FAILED = "failed"


# Edges the machine may take; anything else is a bug.
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.CONFIRMING, Status.EXPIRED}),
    # A reorg that takes back a confirming payment's deposit sends it back to waiting.
    Status.CONFIRMING: frozenset({Status.CONFIRMED, Status.PENDING, Status.EXPIRED}),
    Status.CONFIRMED: frozenset({Status.FORWARDING, Status.FAILED}),
    Status.FORWARDING: frozenset({Status.FORWARDED, Status.FAILED}),
    Status.FORWARDED: frozenset(),
    Status.EXPIRED: frozenset({Status.CONFIRMING}),
    Status.FAILED: frozenset(),
}

# Webhook event per status entered (forwarding is internal: no event).
EVENT_FOR_STATUS: dict[Status, str] = {
    Status.CONFIRMING: "payment.confirming",
    Status.CONFIRMED: "payment.confirmed",
    Status.FORWARDED: "payment.forwarded",
    Status.EXPIRED: "payment.expired",
    Status.FAILED: "payment.failed",
}
EVENT_TYPES: tuple[str, ...] = (
    "payment.created",
    "payment.pending",
    "payment.confirming",
    "payment.confirmed",
    "payment.completed",
    "payment.expired",
    "payment.failed",
    "payment.forwarded",
    "payment.reversed",
)


@dataclass(frozen=True)
class Deposit:
    """One transfer to the payment address as the chain reports it now."""

    tx_hash: str
    amount: int
    confirmations: int
    reverted: bool = False


@dataclass(frozen=True)
class Policy:
    required_confirmations: int
    tolerance_percent: Decimal
    expires_at: datetime
    monitor_until: datetime
    custodial: bool  # custodial payments are forwarded; watch-only ones end at confirmed


@dataclass(frozen=True)
class State:
    status: Status
    expected: int
    received: int = 0
    confirmations: int = 0
    paid_partial: bool = False
    paid_over: bool = False
    paid_late: bool = False
    tx_hash: str | None = None


@dataclass(frozen=True)
class Transition:
    """An entry for the append-only event log; ``event`` is the webhook type, if any."""

    event: str | None
    from_status: Status
    to_status: Status
    reason: str


@dataclass(frozen=True)
class Outcome:
    state: State
    transitions: tuple[Transition, ...]


def _step(state: State, to: Status, reason: str, steps: list[Transition]) -> State:
    if to not in ALLOWED[state.status]:
        raise ValueError(f"illegal transition {state.status} -> {to}")
    steps.append(Transition(EVENT_FOR_STATUS.get(to), state.status, to, reason))
    return replace(state, status=to)


def _reverse(state: State, to: Status, steps: list[Transition]) -> State:
    """A reorg dropped a counted deposit: ``payment.reversed``, whatever status it moves to."""
    if to not in ALLOWED[state.status]:
        raise ValueError(f"illegal transition {state.status} -> {to}")
    steps.append(Transition("payment.reversed", state.status, to, "deposit reverted (reorg)"))
    return replace(state, status=to)


def _completion(state: State, policy: Policy, steps: list[Transition]) -> None:
    # The merchant has the funds: at confirmed when they hold the keys, after forwarding if not.
    if state.status is Status.CONFIRMED and not policy.custodial:
        steps.append(Transition("payment.completed", state.status, state.status, "confirmed"))


def _covering_depth(live: Sequence[Deposit], expected: int, tolerance: Decimal) -> int:
    """The greatest depth d such that deposits with at least d confirmations pay the amount
    (so a later dust deposit does not "unconfirm" a paid invoice); when nothing covers it,
    the shallowest deposit's depth."""
    running = 0
    for deposit in sorted(live, key=lambda d: d.confirmations, reverse=True):
        running += deposit.amount
        if covers(running, expected, tolerance):
            return deposit.confirmations
    return min((d.confirmations for d in live), default=0)


def observe(state: State, deposits: Sequence[Deposit], policy: Policy, now: datetime) -> Outcome:
    """Apply the chain's current view of the address (every deposit, reverted ones flagged)."""
    if state.status in (Status.FORWARDING, Status.FORWARDED, Status.FAILED):
        return Outcome(state, ())
    if state.status is Status.EXPIRED and now > policy.monitor_until:
        return Outcome(state, ())
    live = [d for d in deposits if not d.reverted and d.amount > 0]
    received = sum(d.amount for d in live)
    full = received > 0 and covers(received, state.expected, policy.tolerance_percent)
    depth = _covering_depth(live, state.expected, policy.tolerance_percent)
    steps: list[Transition] = []
    new = replace(
        state,
        received=received,
        confirmations=depth,
        paid_over=received > state.expected,
        tx_hash=live[-1].tx_hash if live else state.tx_hash,
    )

    if new.status in (Status.CONFIRMING, Status.CONFIRMED) and not full:
        # A reorg took back what paid it. Before confirmation it waits again (a late deposit
        # can still pay it); after, the merchant was told it was paid: it fails.
        if new.status is Status.CONFIRMED:
            back = Status.FAILED
        else:
            back = Status.EXPIRED if now >= policy.expires_at else Status.PENDING
        new = _reverse(replace(new, paid_partial=received > 0), back, steps)
        return Outcome(new, tuple(steps))

    if new.status in (Status.PENDING, Status.EXPIRED):
        if full:
            late = new.status is Status.EXPIRED or now > policy.expires_at
            new = replace(new, paid_partial=False, paid_late=late)
            new = _step(new, Status.CONFIRMING, "paid late" if late else "paid", steps)
        elif received > state.received:
            new = replace(new, paid_partial=True)
            if new.status is Status.PENDING:
                steps.append(
                    Transition("payment.pending", new.status, new.status, "partial payment")
                )

    if new.status is Status.CONFIRMING and depth >= policy.required_confirmations:
        new = _step(new, Status.CONFIRMED, f"{depth} confirmations", steps)
        _completion(new, policy, steps)
    return Outcome(new, tuple(steps))


def expire(state: State, policy: Policy, now: datetime) -> Outcome:
    """Expire a pending payment once its window has passed."""
    if state.status is not Status.PENDING or now < policy.expires_at:
        return Outcome(state, ())
    steps: list[Transition] = []
    reason = "expired partially paid" if state.received else "expired unpaid"
    new = _step(replace(state, paid_partial=state.received > 0), Status.EXPIRED, reason, steps)
    return Outcome(new, tuple(steps))


def start_forwarding(state: State) -> Outcome:
    """Confirmed custodial funds begin their sweep to the merchant."""
    steps: list[Transition] = []
    new = _step(state, Status.FORWARDING, "settlement started", steps)
    return Outcome(new, tuple(steps))


def finish_forwarding(state: State) -> Outcome:
    """The sweep confirmed: the merchant has the funds."""
    steps: list[Transition] = []
    new = _step(state, Status.FORWARDED, "settlement sent", steps)
    steps.append(Transition("payment.completed", new.status, new.status, "forwarded"))
    return Outcome(new, tuple(steps))


def fail(state: State, reason: str) -> Outcome:
    steps: list[Transition] = []
    new = _step(state, Status.FAILED, reason, steps)
    return Outcome(new, tuple(steps))
