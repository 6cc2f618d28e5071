"""The referral state machine against an independent model: random sign-ups (valid or not) and
completions by a handful of users; after every step the database agrees with the model and no
referral skipped a state or went back."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from keel.core.replicated import Database
from keel.roadmaps import models, referrals
from keel.roadmaps.referrals import (
    MILESTONES,
    AlreadyReferred,
    ReferralCycle,
    ReferralError,
    SelfReferral,
    Status,
)
from tests.roadmaps.referrals_billing_support import NOW, add_users, migrated

T = TypeVar("T")
USERS = 7
# The steps a referral's own audit entries may show: the state machine's path, in order.
PATH = ["signed_up", "completed", "rewarded"]


class ReferralMachine(RuleBasedStateMachine):
    database: Database
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.users = self.run(add_users(self.database, USERS))
        self.referrer_of: dict[str, str] = {}  # referred -> referrer
        self.rewarded: set[str] = set()  # referred users whose referral was rewarded
        self.seen: dict[str, Status] = {}  # referral id -> status at the last check
        self.now = NOW

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def _refers(self, ancestor: str, user: str) -> bool:
        while user in self.referrer_of:
            user = self.referrer_of[user]
            if user == ancestor:
                return True
        return False

    @rule(a=st.integers(0, USERS - 1), b=st.integers(0, USERS - 1))
    def sign_up(self, a: int, b: int) -> None:
        referrer, referred = self.users[a], self.users[b]
        expected: type[ReferralError] | None = None
        if referrer == referred:
            expected = SelfReferral
        elif referred in self.referrer_of:
            expected = AlreadyReferred
        elif self._refers(referred, referrer):
            expected = ReferralCycle
        code = self.run(referrals.get_or_create_code(self.database, user_id=referrer, now=self.now))
        signup = referrals.record_signup(
            self.database, referred_id=referred, code=code, now=self.now
        )
        if expected is not None:
            with pytest.raises(expected):
                self.run(signup)
            return
        made = self.run(signup)
        assert made.status is Status.PENDING
        self.referrer_of[referred] = referrer

    @rule(b=st.integers(0, USERS - 1))
    def complete(self, b: int) -> None:
        referred = self.users[b]
        done = self.run(referrals.complete(self.database, referred_id=referred, now=self.now))
        if referred not in self.referrer_of or referred in self.rewarded:
            assert done is None
            return
        assert done is not None
        assert done.referral.status is Status.REWARDED
        self.rewarded.add(referred)
        referrer = self.referrer_of[referred]
        assert done.referrer_completed == self._completed_by(referrer)

    @rule(hours=st.integers(1, 100))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    def _completed_by(self, referrer: str) -> int:
        return sum(1 for r in self.rewarded if self.referrer_of[r] == referrer)

    @invariant()
    def the_database_agrees_with_the_model(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        r, a, w, b = models.referrals, models.referral_audit, models.rewards, models.badges
        async with self.database.reading() as conn:
            rows = (await conn.execute(select(r).where(r.c.referred_id.in_(self.users)))).all()
            audit = (
                await conn.execute(
                    select(a.c.referral_id, a.c.event)
                    .where(a.c.event.in_(PATH), a.c.user_id.in_(self.users))
                    .order_by(a.c.id)
                )
            ).all()
            rewards = {
                row.user_id: row
                for row in await conn.execute(select(w).where(w.c.user_id.in_(self.users)))
            }
            badges = (await conn.execute(select(b.c.user_id, b.c.badge))).all()
        assert {row.referred_id: row.referrer_id for row in rows} == self.referrer_of
        for row in rows:
            status = Status(row.status)
            # Between transactions a referral is pending or rewarded, never half-way.
            rewarded = row.referred_id in self.rewarded
            assert status is (Status.REWARDED if rewarded else Status.PENDING)
            before = self.seen.get(row.id, Status.PENDING)
            assert list(Status).index(status) >= list(Status).index(before)  # never back
            self.seen[row.id] = status
            steps = [event for referral_id, event in audit if referral_id == row.id]
            assert steps == (PATH if rewarded else PATH[:1])  # no state skipped
            assert (row.completed_at is not None) is (row.rewarded_at is not None) is rewarded
        for user in self.users:
            completed = self._completed_by(user)
            earned = [m for m in MILESTONES if completed >= m.completed]
            referrals_rewarded = completed + (user in self.rewarded)
            got = rewards.get(user)
            if got is None:
                assert referrals_rewarded == 0
                continue
            assert got.referrals_completed == completed
            assert got.credits == 50 * referrals_rewarded
            trial_days = 3 * referrals_rewarded + sum(m.reward.trial_days for m in earned)
            assert got.trial_days == trial_days
            assert {badge for holder, badge in badges if holder == user} == {
                m.badge for m in earned
            }


def test_referrals_follow_their_state_machine(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    migrated_db = migrated(f"sqlite+aiosqlite:///{tmp_path}/machine.db")
    try:
        ReferralMachine.database = loop.run_until_complete(migrated_db.__aenter__())
        ReferralMachine.loop = loop
        run_state_machine_as_test(
            ReferralMachine,
            settings=settings(
                max_examples=15,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        loop.run_until_complete(migrated_db.__aexit__(None, None, None))
        loop.close()
