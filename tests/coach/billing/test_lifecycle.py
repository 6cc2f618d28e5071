"""The invoice state machine: order and repeats of coinpay's events never change the result."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.coach.billing.lifecycle import Effect, InvoiceStatus, Signal, advance, signal

signals = st.lists(st.sampled_from(list(Signal)), max_size=12)


def run(sequence: list[Signal]) -> tuple[InvoiceStatus, list[Effect]]:
    status, effects = InvoiceStatus.OPEN, []
    for sig in sequence:
        step = advance(status, sig)
        status = step.status
        effects.append(step.effect)
    return status, effects


@given(signals, st.data())
def test_the_final_status_depends_only_on_which_signals_arrived(
    sequence: list[Signal], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(sequence))
    assert run(sequence)[0] == run(shuffled)[0]


@given(signals)
def test_paying_unlocks_exactly_once_whatever_else_arrives(sequence: list[Signal]) -> None:
    status, effects = run(sequence)
    assert effects.count(Effect.UNLOCK) == (1 if Signal.PAID in sequence else 0)
    if Signal.PAID in sequence:
        assert status is InvoiceStatus.PAID
    elif {Signal.EXPIRED, Signal.FAILED} & set(sequence):
        assert status is InvoiceStatus.EXPIRED
    else:
        assert status is InvoiceStatus.OPEN


@given(signals)
def test_repeating_every_signal_changes_nothing(sequence: list[Signal]) -> None:
    doubled = [s for sig in sequence for s in (sig, sig)]
    assert run(doubled)[0] == run(sequence)[0]
    assert run(doubled)[1].count(Effect.UNLOCK) == run(sequence)[1].count(Effect.UNLOCK)


@pytest.mark.parametrize(
    ("status", "sig", "after", "effect"),
    [
        (InvoiceStatus.OPEN, Signal.PAID, InvoiceStatus.PAID, Effect.UNLOCK),
        (InvoiceStatus.EXPIRED, Signal.PAID, InvoiceStatus.PAID, Effect.UNLOCK),  # paid late
        (InvoiceStatus.PAID, Signal.PAID, InvoiceStatus.PAID, Effect.ALREADY_PAID),
        (InvoiceStatus.OPEN, Signal.EXPIRED, InvoiceStatus.EXPIRED, Effect.CLOSE),
        (InvoiceStatus.OPEN, Signal.FAILED, InvoiceStatus.EXPIRED, Effect.CLOSE),
        (InvoiceStatus.PAID, Signal.EXPIRED, InvoiceStatus.PAID, Effect.NONE),  # out of order
        (InvoiceStatus.PAID, Signal.FAILED, InvoiceStatus.PAID, Effect.REVERSED),
        (InvoiceStatus.EXPIRED, Signal.EXPIRED, InvoiceStatus.EXPIRED, Effect.NONE),
        (InvoiceStatus.OPEN, Signal.NONE, InvoiceStatus.OPEN, Effect.NONE),
    ],
)
def test_each_edge(
    status: InvoiceStatus, sig: Signal, after: InvoiceStatus, effect: Effect
) -> None:
    assert advance(status, sig).status is after
    assert advance(status, sig).effect is effect


@pytest.mark.parametrize(
    ("event_type", "payment_status", "expected"),
    [
        ("payment.confirmed", "confirmed", Signal.PAID),
        ("payment.completed", "forwarded", Signal.PAID),
        ("payment.forwarded", "forwarded", Signal.PAID),
        ("payment.confirming", "confirmed", Signal.NONE),  # its payment.confirmed follows
        ("payment.created", "pending", Signal.NONE),
        ("payment.pending", "pending", Signal.NONE),  # a partial payment
        ("payment.expired", "expired", Signal.EXPIRED),
        ("payment.failed", "failed", Signal.FAILED),
        ("payment.reversed", "failed", Signal.FAILED),
        ("payment.reversed", "expired", Signal.EXPIRED),
        ("payment.reversed", "pending", Signal.NONE),
        ("business.updated", None, Signal.NONE),
    ],
)
def test_what_each_coinpay_event_means(
    event_type: str, payment_status: str | None, expected: Signal
) -> None:
    assert signal(event_type, payment_status) is expected
