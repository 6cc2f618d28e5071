"""Property tests of the payment state machine against an independent model of its rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keel.coinpay import lifecycle
from keel.coinpay.lifecycle import ALLOWED, Deposit, Policy, State, Status

START = datetime(2026, 1, 1, tzinfo=UTC)
EXPECTED = 100_000


def policy(required: int = 2, tolerance: str = "0", custodial: bool = True) -> Policy:
    return Policy(
        required_confirmations=required,
        tolerance_percent=Decimal(tolerance),
        expires_at=START + timedelta(minutes=15),
        monitor_until=START + timedelta(minutes=60),
        custodial=custodial,
    )


def test_partial_payment_stays_pending_then_expires_partially_paid() -> None:
    p = policy()
    out = lifecycle.observe(State(Status.PENDING, EXPECTED), [Deposit("a", 40_000, 3)], p, START)
    assert out.state.status is Status.PENDING
    assert out.state.paid_partial
    assert [t.event for t in out.transitions] == ["payment.pending"]
    expired = lifecycle.expire(out.state, p, START + timedelta(minutes=16))
    assert expired.state.status is Status.EXPIRED
    assert expired.state.paid_partial
    assert [t.event for t in expired.transitions] == ["payment.expired"]


def test_late_full_payment_within_the_monitoring_window_confirms_with_paid_late() -> None:
    p = policy()
    expired = lifecycle.expire(State(Status.PENDING, EXPECTED), p, START + timedelta(minutes=20))
    late = lifecycle.observe(
        expired.state, [Deposit("a", EXPECTED, 2)], p, START + timedelta(minutes=30)
    )
    assert late.state.status is Status.CONFIRMED
    assert late.state.paid_late
    assert [t.event for t in late.transitions] == ["payment.confirming", "payment.confirmed"]


def test_payment_after_the_monitoring_window_is_ignored() -> None:
    p = policy()
    expired = lifecycle.expire(State(Status.PENDING, EXPECTED), p, START + timedelta(minutes=20))
    out = lifecycle.observe(
        expired.state, [Deposit("a", EXPECTED, 9)], p, START + timedelta(hours=2)
    )
    assert out.state.status is Status.EXPIRED
    assert out.transitions == ()


def test_overpayment_is_flagged_and_confirms() -> None:
    out = lifecycle.observe(
        State(Status.PENDING, EXPECTED), [Deposit("a", EXPECTED * 2, 5)], policy(), START
    )
    assert out.state.status is Status.CONFIRMED
    assert out.state.paid_over


def test_tolerance_accepts_a_small_shortfall() -> None:
    out = lifecycle.observe(
        State(Status.PENDING, EXPECTED), [Deposit("a", 99_000, 5)], policy(tolerance="1"), START
    )
    assert out.state.status is Status.CONFIRMED
    assert not out.state.paid_partial


def test_a_reorg_sends_a_confirming_payment_back_to_waiting() -> None:
    p = policy(required=6)
    seen = lifecycle.observe(State(Status.PENDING, EXPECTED), [Deposit("a", EXPECTED, 1)], p, START)
    assert seen.state.status is Status.CONFIRMING
    gone = lifecycle.observe(seen.state, [Deposit("a", EXPECTED, 1, reverted=True)], p, START)
    assert gone.state.status is Status.PENDING
    assert gone.state.received == 0
    assert [t.event for t in gone.transitions] == ["payment.reversed"]
    late = lifecycle.observe(
        seen.state, [Deposit("a", EXPECTED, 1, reverted=True)], p, p.expires_at
    )
    assert late.state.status is Status.EXPIRED
    again = lifecycle.observe(gone.state, [Deposit("b", EXPECTED, 6)], p, START)
    assert again.state.status is Status.CONFIRMED  # a new deposit still pays it


def test_a_reorg_after_confirmation_fails_the_payment_with_payment_reversed() -> None:
    p = policy(required=2)
    done = lifecycle.observe(State(Status.PENDING, EXPECTED), [Deposit("a", EXPECTED, 2)], p, START)
    assert done.state.status is Status.CONFIRMED
    gone = lifecycle.observe(done.state, [Deposit("a", EXPECTED, 0, reverted=True)], p, START)
    assert gone.state.status is Status.FAILED
    assert [(t.event, t.from_status, t.to_status) for t in gone.transitions] == [
        ("payment.reversed", Status.CONFIRMED, Status.FAILED)
    ]


def test_watch_only_payment_completes_at_confirmed_custodial_after_forwarding() -> None:
    watch = lifecycle.observe(
        State(Status.PENDING, EXPECTED), [Deposit("a", EXPECTED, 2)], policy(custodial=False), START
    )
    assert watch.transitions[-1].event == "payment.completed"
    custodial = lifecycle.observe(
        State(Status.PENDING, EXPECTED), [Deposit("a", EXPECTED, 2)], policy(), START
    )
    assert "payment.completed" not in [t.event for t in custodial.transitions]
    forwarding = lifecycle.start_forwarding(custodial.state)
    done = lifecycle.finish_forwarding(forwarding.state)
    assert [t.event for t in done.transitions] == ["payment.forwarded", "payment.completed"]


deposit_amounts = st.integers(min_value=1, max_value=EXPECTED)


class PaymentMachine(RuleBasedStateMachine):
    """Random customers, blocks, reorgs, clock moves and sweeps; the rules must always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = policy(required=3, tolerance="2")
        self.state = State(Status.PENDING, EXPECTED)
        self.deposits: list[Deposit] = []
        self.now = START
        self.history: list[Status] = [Status.PENDING]
        self.became_full_at: datetime | None = None

    def _apply(self, outcome: lifecycle.Outcome) -> None:
        for step in outcome.transitions:
            assert step.from_status is not step.to_status or step.event in (
                "payment.pending",
                "payment.completed",
            )
            if step.event == "payment.reversed":
                assert step.from_status in (Status.CONFIRMING, Status.CONFIRMED)
            if step.from_status is not step.to_status:
                assert step.to_status in ALLOWED[step.from_status]
                self.history.append(step.to_status)
            if step.to_status is Status.CONFIRMED and step.from_status is not Status.CONFIRMED:
                assert outcome.state.confirmations >= self.policy.required_confirmations
        self.state = outcome.state

    def _observe(self) -> None:
        self._apply(lifecycle.observe(self.state, self.deposits, self.policy, self.now))

    @rule(amount=deposit_amounts, confirmations=st.integers(0, 5))
    def customer_pays(self, amount: int, confirmations: int) -> None:
        self.deposits.append(Deposit(f"tx{len(self.deposits)}", amount, confirmations))
        self._observe()

    @rule()
    def a_block_is_mined(self) -> None:
        self.deposits = [
            Deposit(d.tx_hash, d.amount, d.confirmations + 1, d.reverted) for d in self.deposits
        ]
        self._observe()

    @precondition(lambda self: bool(self.deposits))
    @rule(index=st.integers(min_value=0))
    def a_reorg_drops_a_deposit(self, index: int) -> None:
        d = self.deposits[index % len(self.deposits)]
        self.deposits[index % len(self.deposits)] = Deposit(d.tx_hash, d.amount, 0, reverted=True)
        self._observe()

    @rule(minutes=st.integers(1, 30))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self._apply(lifecycle.expire(self.state, self.policy, self.now))

    @precondition(lambda self: self.state.status is Status.CONFIRMED)
    @rule()
    def funds_are_swept(self) -> None:
        self._apply(lifecycle.start_forwarding(self.state))
        self._apply(lifecycle.finish_forwarding(self.state))

    @invariant()
    def received_is_the_sum_of_live_deposits_while_watching(self) -> None:
        if self.state.status in (Status.PENDING, Status.CONFIRMING):
            live = sum(d.amount for d in self.deposits if not d.reverted)
            assert self.state.received == live

    @invariant()
    def confirmed_means_paid_within_tolerance(self) -> None:
        if self.state.status is Status.CONFIRMED:
            assert self.state.received * 100 >= EXPECTED * 98

    @invariant()
    def terminal_states_are_terminal(self) -> None:
        for earlier, later in zip(self.history, self.history[1:], strict=False):
            assert later in ALLOWED[earlier]

    @invariant()
    def pending_before_expiry_only(self) -> None:
        if self.state.status is Status.EXPIRED:
            assert self.now >= self.policy.expires_at
            assert (
                not self.state.received * 100 >= EXPECTED * 98
                or self.now > self.policy.monitor_until
            )


TestPaymentMachine = PaymentMachine.TestCase
TestPaymentMachine.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@given(st.lists(st.tuples(deposit_amounts, st.integers(0, 10)), max_size=6))
def test_flags_describe_the_amount(payments: list[tuple[int, int]]) -> None:
    deposits = [Deposit(f"t{i}", a, c) for i, (a, c) in enumerate(payments)]
    out = lifecycle.observe(State(Status.PENDING, EXPECTED), deposits, policy(), START)
    total = sum(a for a, _ in payments)
    assert out.state.paid_over == (total > EXPECTED)
    assert out.state.paid_partial == (0 < total < EXPECTED)
    assert (out.state.status is Status.PENDING) == (total < EXPECTED)
