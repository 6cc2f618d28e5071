"""The subscription state machine: reports in any order and any number never regress the state;
expired is final. Checked against a declarative model with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keel.roadmaps.billing.resources import SubscriptionReport, SubscriptionStatus
from keel.roadmaps.billing.subscriptions import Subscription, advance

START = datetime(2026, 1, 1, tzinfo=UTC)
EXPIRED = SubscriptionStatus.EXPIRED


def report(status: SubscriptionStatus, minute: int, variant: str = "222") -> SubscriptionReport:
    at = START + timedelta(minutes=minute)
    return SubscriptionReport(
        id="1",
        status=status,
        variant_id=variant,
        renews_at=at + timedelta(days=30),
        ends_at=at + timedelta(days=30)
        if status in (EXPIRED, SubscriptionStatus.CANCELLED)
        else None,
        trial_ends_at=None,
        updated_at=at,
    )


def test_a_first_report_creates_the_subscription_for_its_user() -> None:
    first = advance(None, report(SubscriptionStatus.ON_TRIAL, 0), user_id="u1", now=START)
    assert first.applied
    assert (first.state.user_id, first.state.status) == ("u1", SubscriptionStatus.ON_TRIAL)
    assert first.state.status_since == first.state.provider_updated_at == START


def test_status_since_moves_only_when_the_status_changes() -> None:
    state = advance(None, report(SubscriptionStatus.ACTIVE, 0), user_id="u", now=START).state
    renewed = advance(state, report(SubscriptionStatus.ACTIVE, 10), user_id="u", now=START).state
    assert renewed.status_since == START
    failed = advance(renewed, report(SubscriptionStatus.PAST_DUE, 20), user_id="u", now=START)
    assert failed.state.status_since == START + timedelta(minutes=20)


def test_an_api_answer_that_changes_nothing_still_confirms_the_state() -> None:
    state = advance(None, report(SubscriptionStatus.ACTIVE, 5), user_id="u", now=START).state
    later = START + timedelta(days=3)
    same = advance(
        state, report(SubscriptionStatus.ACTIVE, 5), user_id="u", now=later, confirmed=True
    )
    assert not same.applied
    assert same.state == Subscription(**{**state.__dict__, "checked_at": later})
    unconfirmed = advance(state, report(SubscriptionStatus.ACTIVE, 5), user_id="u", now=later)
    assert unconfirmed.state == state


def _expected(delivered: list[SubscriptionReport]) -> SubscriptionReport | None:
    """Declaratively: the first expired report newer than all before it, if any, else the newest
    report (the first of equals)."""
    for k, candidate in enumerate(delivered):
        if candidate.status is EXPIRED and all(
            candidate.updated_at > earlier.updated_at for earlier in delivered[:k]
        ):
            return candidate
    if not delivered:
        return None
    newest = max(r.updated_at for r in delivered)
    return next(r for r in delivered if r.updated_at == newest)


class SubscriptionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state: Subscription | None = None
        self.delivered: list[SubscriptionReport] = []
        self.now = START

    @rule(
        status=st.sampled_from(SubscriptionStatus),
        minute=st.integers(0, 60),
        variant=st.sampled_from(["222", "333"]),
        confirmed=st.booleans(),
    )
    def a_report_arrives(
        self, status: SubscriptionStatus, minute: int, variant: str, confirmed: bool
    ) -> None:
        arriving = report(status, minute, variant)
        before = self.state
        after = advance(before, arriving, user_id="u", now=self.now, confirmed=confirmed)
        if before is not None:
            assert after.state.provider_updated_at >= before.provider_updated_at  # no regress
            assert after.state.created_at == before.created_at
            if before.status is EXPIRED:
                assert not after.applied
                assert after.state.status is EXPIRED
        if after.applied or confirmed:
            assert after.state.checked_at == self.now
        self.delivered.append(arriving)
        self.state = after.state

    @rule(hours=st.integers(1, 48))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @invariant()
    def the_state_is_the_model_s_report(self) -> None:
        expected = _expected(self.delivered)
        if expected is None:
            assert self.state is None
            return
        assert self.state is not None
        held = (
            self.state.status,
            self.state.variant_id,
            self.state.renews_at,
            self.state.ends_at,
            self.state.provider_updated_at,
        )
        assert held == (
            expected.status,
            expected.variant_id,
            expected.renews_at,
            expected.ends_at,
            expected.updated_at,
        )
        assert self.state.status_since <= self.state.provider_updated_at
        assert any(
            r.status is self.state.status and r.updated_at == self.state.status_since
            for r in self.delivered
        )


SubscriptionMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
test_subscriptions_follow_their_state_machine = SubscriptionMachine.TestCase
