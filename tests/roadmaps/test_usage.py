"""Daily usage limits: counted per user, UTC day and action; refused past the plan's limit with
the time it resets; the check and the increment cannot race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from keel.core.replicated import Database
from keel.roadmaps import usage
from keel.roadmaps.billing.plans import Plans, UnknownAction
from keel.roadmaps.settings import RoadmapsSettings
from keel.roadmaps.usage import DailyLimitReached
from tests.roadmaps.referrals_billing_support import NOW, add_users

PLANS = Plans.from_settings(
    RoadmapsSettings(
        plan_daily_limits={
            "free": {"generate": 3, "upload": 0},
            "pro": {"generate": 50, "upload": 10},
        }
    )
)


async def _consume(
    database: Database, user: str, *, plan: str = "free", now: datetime = NOW
) -> usage.Usage:
    return await usage.consume(database, PLANS, user_id=user, action="generate", plan=plan, now=now)


async def test_uses_count_up_to_the_limit_then_are_refused_until_midnight_utc(
    database: Database,
) -> None:
    (user,) = await add_users(database, 1)
    taken = [await _consume(database, user) for _ in range(3)]
    assert [(u.used, u.remaining) for u in taken] == [(1, 2), (2, 1), (3, 0)]
    with pytest.raises(DailyLimitReached) as refused:
        await _consume(database, user)
    assert refused.value.status == 429
    assert refused.value.retry_at == datetime(2026, 3, 11, tzinfo=UTC)
    assert refused.value.extra["retry_after"] == 12 * 3600  # NOW is 12:00 UTC
    assert refused.value.extra["limit"] == 3
    tomorrow = await _consume(database, user, now=datetime(2026, 3, 11, 0, 0, 1, tzinfo=UTC))
    assert (tomorrow.used, tomorrow.day.isoformat()) == (1, "2026-03-11")


async def test_the_day_is_the_utc_day_whatever_the_callers_zone(database: Database) -> None:
    (user,) = await add_users(database, 1)
    new_york = timezone(timedelta(hours=-5))
    taken = await _consume(database, user, now=datetime(2026, 3, 10, 20, 30, tzinfo=new_york))
    assert taken.day.isoformat() == "2026-03-11"  # 01:30 UTC
    last_moment = datetime(2026, 3, 10, 23, 59, 59, 500_000, tzinfo=UTC)
    for _ in range(3):
        await _consume(database, user, now=last_moment)
    with pytest.raises(DailyLimitReached) as refused:
        await _consume(database, user, now=last_moment)
    assert refused.value.extra["retry_after"] == 1  # rounded up, never 0


async def test_plans_have_their_own_limits_and_users_their_own_counters(
    database: Database,
) -> None:
    free_user, pro_user = await add_users(database, 2)
    for _ in range(3):
        await _consume(database, free_user)
    pro = [await _consume(database, pro_user, plan="pro") for _ in range(4)]
    assert pro[-1].used == 4
    assert pro[-1].limit == 50
    # An upgrade mid-day lifts the cap at once: the same counter, a higher limit.
    assert (await _consume(database, free_user, plan="pro")).used == 4


async def test_a_zero_limit_refuses_without_counting(database: Database) -> None:
    (user,) = await add_users(database, 1)
    with pytest.raises(DailyLimitReached):
        await usage.consume(database, PLANS, user_id=user, action="upload", plan="free", now=NOW)
    listed = await usage.today(database, PLANS, user_id=user, plan="free", now=NOW)
    assert [(u.action, u.used, u.limit) for u in listed] == [("generate", 0, 3), ("upload", 0, 0)]


async def test_an_unknown_plan_gets_free_limits_and_an_unknown_action_is_a_bug(
    database: Database,
) -> None:
    (user,) = await add_users(database, 1)
    assert (await _consume(database, user, plan="legacy")).limit == 3
    with pytest.raises(UnknownAction):
        await usage.consume(database, PLANS, user_id=user, action="export", plan="free", now=NOW)


async def test_a_released_use_can_be_taken_again(database: Database) -> None:
    (user,) = await add_users(database, 1)
    for _ in range(3):
        taken = await _consume(database, user)
    await usage.release(database, user_id=user, action="generate", day=taken.day)
    assert (await _consume(database, user)).used == 3
    other_day = taken.day - timedelta(days=1)
    await usage.release(database, user_id=user, action="generate", day=other_day)  # nothing there
    listed = await usage.today(database, PLANS, user_id=user, plan="free", now=NOW)
    assert listed[0].used == 3


async def test_two_concurrent_uses_of_the_last_one_let_exactly_one_through(
    database: Database,
) -> None:
    users = await add_users(database, 10)
    for user in users:
        for _ in range(2):
            await _consume(database, user)

    async def attempt(user: str) -> bool:
        try:
            await _consume(database, user)
        except DailyLimitReached:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(user) for user in users for _ in range(2)))
    assert sum(outcomes) == len(users)  # one per user
    for user in users:
        listed = await usage.today(database, PLANS, user_id=user, plan="free", now=NOW)
        assert listed[0].used == 3


async def test_many_concurrent_first_uses_never_pass_the_limit(database: Database) -> None:
    (user,) = await add_users(database, 1)

    async def attempt() -> bool:
        try:
            await _consume(database, user)
        except DailyLimitReached:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt() for _ in range(12)))
    assert sum(outcomes) == 3
