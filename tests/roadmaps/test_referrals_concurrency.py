"""Races are tested, not argued: 50 referrals of one referrer completing at once award each
milestone exactly once (PostgreSQL with 50 connections, and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from keel.core.replicated import Database
from keel.roadmaps import models, referrals
from keel.roadmaps.referrals import AlreadyReferred, Status
from tests.roadmaps.referrals_billing_support import NOW, add_users, migrated

CONCURRENT = 50


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    async with migrated(db_url, pool_size=CONCURRENT // 2) as database:  # 50 connections
        yield database


async def _count(database: Database, table: object, *where: object) -> int:
    async with database.reading() as conn:
        count = await conn.scalar(select(func.count()).select_from(table).where(*where))  # type: ignore[arg-type]
    return int(count or 0)


async def test_fifty_concurrent_completions_award_each_milestone_once(database: Database) -> None:
    referrer, *referred = await add_users(database, CONCURRENT + 1)
    code = await referrals.get_or_create_code(database, user_id=referrer, now=NOW)
    for user in referred:
        await referrals.record_signup(database, referred_id=user, code=code, now=NOW)

    done = await asyncio.gather(
        *(referrals.complete(database, referred_id=user, now=NOW) for user in referred)
    )

    assert all(d is not None for d in done)
    counts = sorted(d.referrer_completed for d in done if d is not None)
    assert counts == list(range(1, CONCURRENT + 1))  # each saw its own increment
    awarded = [(d.referrer_completed, d.badges) for d in done if d is not None and d.badges]
    assert sorted(awarded) == [(5, ("early_adopter",)), (10, ("ambassador",))]

    b, r = models.badges, models.referrals
    assert await _count(database, b, b.c.badge == "early_adopter") == 1
    assert await _count(database, b, b.c.badge == "ambassador") == 1
    assert await _count(database, r, r.c.status == Status.REWARDED.value) == CONCURRENT
    got = await referrals.rewards_of(database, user_id=referrer)
    assert got.referrals_completed == CONCURRENT
    assert got.credits == CONCURRENT * 50
    assert got.trial_days == CONCURRENT * 3 + 7 + 30
    for user in referred:
        mine = await referrals.rewards_of(database, user_id=user)
        assert (mine.trial_days, mine.credits, mine.referrals_completed) == (3, 50, 0)
    a = models.referral_audit
    assert await _count(database, a, a.c.event == "rewarded") == CONCURRENT
    assert await _count(database, a, a.c.event == "badge_awarded") == 2
    assert await _count(database, a, a.c.event == "reward_granted") == 2 * CONCURRENT + 2


async def test_one_referral_completed_twice_at_once_is_rewarded_once(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    code = await referrals.get_or_create_code(database, user_id=referrer, now=NOW)
    await referrals.record_signup(database, referred_id=referred, code=code, now=NOW)

    done = await asyncio.gather(
        *(referrals.complete(database, referred_id=referred, now=NOW) for _ in range(8))
    )

    assert sum(d is not None for d in done) == 1
    for user in (referrer, referred):
        got = await referrals.rewards_of(database, user_id=user)
        assert (got.trial_days, got.credits) == (3, 50)
    a = models.referral_audit
    assert await _count(database, a, a.c.event == "completed") == 1


async def test_concurrent_code_requests_give_one_code(database: Database) -> None:
    (user,) = await add_users(database, 1)
    codes = await asyncio.gather(
        *(referrals.get_or_create_code(database, user_id=user, now=NOW) for _ in range(10))
    )
    assert len(set(codes)) == 1
    assert await _count(database, models.referral_codes) == 1


async def test_concurrent_signups_of_one_user_make_one_referral(database: Database) -> None:
    *referrers, referred = await add_users(database, 6)
    codes = [await referrals.get_or_create_code(database, user_id=u, now=NOW) for u in referrers]

    async def sign_up(code: str) -> bool:
        try:
            await referrals.record_signup(database, referred_id=referred, code=code, now=NOW)
        except AlreadyReferred:
            return False
        return True

    outcomes = await asyncio.gather(*(sign_up(code) for code in codes))
    assert sum(outcomes) == 1
    assert await _count(database, models.referrals) == 1
