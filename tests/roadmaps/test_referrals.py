"""Referral codes, sign-ups, completion with rewards and milestones, and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError

from keel.core.replicated import Database
from keel.roadmaps import models, referrals
from keel.roadmaps.referrals import (
    ALPHABET,
    CODE_LENGTH,
    AlreadyReferred,
    CodeSpaceExhausted,
    ReferralCycle,
    SelfReferral,
    Status,
    UnknownReferralCode,
)
from tests.roadmaps.referrals_billing_support import NOW, add_users


async def _refer(database: Database, referrer: str, referred: str) -> referrals.Referral:
    code = await referrals.get_or_create_code(database, user_id=referrer, now=NOW)
    return await referrals.record_signup(database, referred_id=referred, code=code, now=NOW)


async def _events(database: Database, referral_id: str) -> list[str]:
    a = models.referral_audit
    async with database.reading() as conn:
        rows = await conn.execute(
            select(a.c.event).where(a.c.referral_id == referral_id).order_by(a.c.id)
        )
        return list(rows.scalars())


def test_codes_come_from_the_readable_alphabet_and_differ() -> None:
    codes = {referrals.generate_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert not set("01OIL") & set(ALPHABET)


def test_a_typed_code_is_normalised_and_nonsense_is_not_a_code() -> None:
    assert referrals.normalise_code(" abcd2345 ") == "ABCD2345"
    for typed in ("", "ABCD234", "ABCD23456", "ABCD234O", "ABCD-234", "ÅBCD2345"):
        assert referrals.normalise_code(typed) is None


async def test_a_user_keeps_one_code(database: Database) -> None:
    (user,) = await add_users(database, 1)
    first = await referrals.get_or_create_code(database, user_id=user, now=NOW)
    again = await referrals.get_or_create_code(database, user_id=user, now=NOW)
    assert first == again


async def test_a_code_another_user_holds_is_retried_with_a_new_one(database: Database) -> None:
    taken_by, user = await add_users(database, 2)
    taken = await referrals.get_or_create_code(database, user_id=taken_by, now=NOW)
    offered: Iterator[str] = iter([taken, taken, "ZZZZ2222"])
    code = await referrals.get_or_create_code(
        database, user_id=user, now=NOW, new_code=lambda: next(offered)
    )
    assert code == "ZZZZ2222"


async def test_codes_that_keep_colliding_give_up_without_writing(database: Database) -> None:
    taken_by, user = await add_users(database, 2)
    taken = await referrals.get_or_create_code(database, user_id=taken_by, now=NOW)
    with pytest.raises(CodeSpaceExhausted):
        await referrals.get_or_create_code(database, user_id=user, now=NOW, new_code=lambda: taken)
    async with database.reading() as conn:
        count = await conn.scalar(select(func.count()).select_from(models.referral_codes))
    assert count == 1


async def test_signup_with_a_code_is_pending(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    referral = await _refer(database, referrer, referred)
    assert (referral.referrer_id, referral.referred_id) == (referrer, referred)
    assert referral.status is Status.PENDING
    assert await _events(database, referral.id) == ["signed_up"]


async def test_a_code_is_accepted_however_it_is_typed(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    code = await referrals.get_or_create_code(database, user_id=referrer, now=NOW)
    referral = await referrals.record_signup(
        database, referred_id=referred, code=f"  {code.lower()} ", now=NOW
    )
    assert referral.code == code


async def test_self_unknown_repeat_and_cyclic_referrals_are_refused(database: Database) -> None:
    a, b, c, d = await add_users(database, 4)
    code_a = await referrals.get_or_create_code(database, user_id=a, now=NOW)
    with pytest.raises(SelfReferral):
        await referrals.record_signup(database, referred_id=a, code=code_a, now=NOW)
    with pytest.raises(UnknownReferralCode):
        await referrals.record_signup(database, referred_id=b, code="ZZZZ2222", now=NOW)
    with pytest.raises(UnknownReferralCode):
        await referrals.record_signup(database, referred_id=b, code="not a code", now=NOW)
    await _refer(database, a, b)
    with pytest.raises(AlreadyReferred):
        await _refer(database, c, b)  # b was referred by a already
    with pytest.raises(AlreadyReferred):
        await _refer(database, a, b)
    await _refer(database, b, c)
    with pytest.raises(ReferralCycle):
        await _refer(database, c, a)  # a -> b -> c -> a
    with pytest.raises(ReferralCycle):
        await _refer(database, b, a)
    await _refer(database, c, d)
    async with database.reading() as conn:
        count = await conn.scalar(select(func.count()).select_from(models.referrals))
    assert count == 3


async def test_completion_rewards_both_sides_in_one_step(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    referral = await _refer(database, referrer, referred)
    later = NOW + timedelta(days=2)
    done = await referrals.complete(database, referred_id=referred, now=later)
    assert done is not None
    assert done.referral.status is Status.REWARDED
    assert done.referral.completed_at == done.referral.rewarded_at == later
    assert (done.referrer_completed, done.badges) == (1, ())
    for user in (referrer, referred):
        got = await referrals.rewards_of(database, user_id=user)
        assert (got.trial_days, got.credits) == (3, 50)
        assert got.trial_until == later + timedelta(days=3)
    assert (await referrals.rewards_of(database, user_id=referrer)).referrals_completed == 1
    assert (await referrals.rewards_of(database, user_id=referred)).referrals_completed == 0
    assert await _events(database, referral.id) == [
        "signed_up",
        "completed",
        "reward_granted",
        "reward_granted",
        "rewarded",
    ]


async def test_completing_again_or_without_a_referral_does_nothing(database: Database) -> None:
    referrer, referred, loner = await add_users(database, 3)
    await _refer(database, referrer, referred)
    assert await referrals.complete(database, referred_id=referred, now=NOW) is not None
    assert await referrals.complete(database, referred_id=referred, now=NOW) is None
    assert await referrals.complete(database, referred_id=loner, now=NOW) is None
    assert await referrals.complete(database, referred_id=referrer, now=NOW) is None
    assert (await referrals.rewards_of(database, user_id=referrer)).credits == 50
    assert (await referrals.rewards_of(database, user_id=loner)).credits == 0


async def test_milestones_at_five_and_ten_are_awarded_once(database: Database) -> None:
    referrer, *referred = await add_users(database, 13)
    earned: list[tuple[int, tuple[str, ...]]] = []
    for minutes, user in enumerate(referred):
        await _refer(database, referrer, user)
        done = await referrals.complete(
            database, referred_id=user, now=NOW + timedelta(minutes=minutes)
        )
        assert done is not None
        earned.append((done.referrer_completed, done.badges))
    assert [badges for _, badges in earned if badges] == [("early_adopter",), ("ambassador",)]
    assert [n for n, badges in earned if badges] == [5, 10]
    got = await referrals.rewards_of(database, user_id=referrer)
    assert got.badges == ("early_adopter", "ambassador")
    assert got.referrals_completed == 12
    assert got.credits == 12 * 50
    assert got.trial_days == 12 * 3 + 7 + 30
    assert got.trial_until == NOW + timedelta(days=12 * 3 + 7 + 30)


async def test_a_count_that_skipped_a_threshold_still_earns_its_badge(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    async with database.writing() as conn:  # e.g. referrals imported from before badges
        await conn.execute(
            models.rewards.insert().values(
                user_id=referrer, trial_days=0, credits=0, referrals_completed=11
            )
        )
    await _refer(database, referrer, referred)
    done = await referrals.complete(database, referred_id=referred, now=NOW)
    assert done is not None
    assert done.badges == ("early_adopter", "ambassador")


async def test_the_referrer_sees_their_referrals_and_trail(database: Database) -> None:
    referrer, first, second = await add_users(database, 3)
    await _refer(database, referrer, first)
    await _refer(database, referrer, second)
    await referrals.complete(database, referred_id=first, now=NOW)
    made = await referrals.referrals_of(database, referrer_id=referrer)
    assert sorted((r.referred_id, r.status) for r in made) == sorted(
        [(first, Status.REWARDED), (second, Status.PENDING)]
    )
    trail = await referrals.audit_trail(database, user_id=referrer)
    assert [e.event for e in trail] == ["reward_granted", "code_created"]
    assert trail[0].detail == {"reason": "referral", "trial_days": 3, "credits": 50}


async def test_the_audit_trail_refuses_updates_and_deletes(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    await _refer(database, referrer, referred)
    a = models.referral_audit
    for statement in (update(a).values(event="forged"), delete(a)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.writing() as conn:
                await conn.execute(statement)
    async with database.reading() as conn:
        assert await conn.scalar(select(func.count()).select_from(a)) == 2


async def test_a_deleted_account_leaves_the_trail_whole(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    await _refer(database, referrer, referred)
    await referrals.complete(database, referred_id=referred, now=NOW)
    async with database.writing() as conn:
        await conn.execute(delete(models.users).where(models.users.c.id == referred))
    async with database.reading() as conn:
        count = await conn.scalar(select(func.count()).select_from(models.referral_audit))
    assert count == 6  # code_created, signed_up, completed, 2 x reward_granted, rewarded
