"""Referrals: each user has a code; a user who signs up with it is referred (pending); when they
do the qualifying action (their first roadmap) the referral is completed and both sides are
rewarded (rewarded), in one transaction.

    pending ──complete()──▶ completed ──(same transaction)──▶ rewarded

The referrer's completed count is incremented in the database (an upsert ``RETURNING`` the new
count), never read and written back, so concurrent completions each see their own count. A
milestone badge is a row keyed by (user, badge) inserted with ``ON CONFLICT DO NOTHING`` once the
count reaches its threshold (``>=``, not ``==``): exactly one completion inserts it, however many
race, and a count that skipped past a threshold still earns it. Every step appends to the audit
trail in the transaction that makes it; the trail refuses UPDATE and DELETE (migration 0002) and
this module only ever inserts into it.
"""

from __future__ import annotations

import enum
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db, errors
from keel.core.replicated import Database
from keel.roadmaps import models

# No 0/O, 1/I/L: a code is read aloud and typed by hand.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8  # 31**8 ≈ 8.5e11 codes: a collision is rare, and retried
CODE_ATTEMPTS = 8


class Status(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REWARDED = "rewarded"


# The only transitions: forward, one step at a time.
NEXT: Mapping[Status, Status] = {
    Status.PENDING: Status.COMPLETED,
    Status.COMPLETED: Status.REWARDED,
}
_STAMP = {Status.COMPLETED: "completed_at", Status.REWARDED: "rewarded_at"}


@dataclass(frozen=True)
class Reward:
    trial_days: int  # days of the referral trial (keel.roadmaps.billing.entitlements)
    credits: int


@dataclass(frozen=True)
class Milestone:
    completed: int  # the referrer's completed referrals that earn it
    badge: str
    reward: Reward


REFERRAL_REWARD = Reward(trial_days=3, credits=50)  # to each side of a completed referral
MILESTONES = (
    Milestone(5, "early_adopter", Reward(trial_days=7, credits=0)),
    Milestone(10, "ambassador", Reward(trial_days=30, credits=0)),
)


class ReferralError(errors.KeelError):
    """A referral error."""


class UnknownReferralCode(ReferralError, errors.Unprocessable):
    """No user has this referral code."""

    code = "referral_code_unknown"


class SelfReferral(ReferralError, errors.Unprocessable):
    """A user cannot refer themselves."""

    code = "referral_self"


class ReferralCycle(ReferralError, errors.Unprocessable):
    """The code's owner was referred, directly or not, by this user."""

    code = "referral_cycle"


class AlreadyReferred(ReferralError, errors.Conflict):
    """This user was already referred."""

    code = "referral_exists"


class CodeSpaceExhausted(ReferralError, errors.Unavailable):
    """No free referral code was found; try again."""

    code = "referral_code_exhausted"


@dataclass(frozen=True)
class Referral:
    id: str
    referrer_id: str
    referred_id: str
    code: str
    status: Status
    created_at: datetime
    completed_at: datetime | None
    rewarded_at: datetime | None


@dataclass(frozen=True)
class Completion:
    """A referral just completed and rewarded: the referrer's completed count after it, and the
    badges it earned them (usually none)."""

    referral: Referral
    referrer_completed: int
    badges: tuple[str, ...]


@dataclass(frozen=True)
class Rewards:
    """What a user earned through referrals."""

    user_id: str
    trial_days: int
    credits: int
    referrals_completed: int
    trial_until: datetime | None
    badges: tuple[str, ...]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    referral_id: str | None
    user_id: str
    event: str
    detail: Mapping[str, Any]
    created_at: datetime


def generate_code() -> str:
    """A fresh code from ``secrets`` (never ``random``: codes must not be guessable)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """The code as stored (upper case, no spaces), or None if it cannot be one."""
    code = text.strip().upper()
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


async def get_or_create_code(
    database: Database,
    *,
    user_id: str,
    now: datetime,
    new_code: Callable[[], str] = generate_code,
) -> str:
    """``user_id``'s referral code, made on first use. A code another user holds is retried
    with a new one; :class:`CodeSpaceExhausted` after CODE_ATTEMPTS collisions."""
    t = models.referral_codes
    async with database.reading() as conn:
        existing = (await conn.execute(select(t.c.code).where(t.c.user_id == user_id))).scalar()
    if existing is not None:
        return str(existing)
    async with database.writing() as conn:
        for _ in range(CODE_ATTEMPTS):
            code = new_code()
            inserted = await conn.execute(
                db.insert(conn, t)
                .values(user_id=user_id, code=code, created_at=now)
                .on_conflict_do_nothing()  # on the user (a concurrent call) or the code
                .returning(t.c.code)
            )
            if inserted.first() is not None:
                await _audit(conn, "code_created", user_id, None, {"code": code}, now)
                return code
            mine = (await conn.execute(select(t.c.code).where(t.c.user_id == user_id))).scalar()
            if mine is not None:
                return str(mine)
    raise CodeSpaceExhausted()


async def check_code(database: Database, code: str) -> str:
    """``code`` as stored, when someone holds it; :class:`UnknownReferralCode` otherwise (so a
    sign-up form can refuse a mistyped code before the account exists)."""
    normalised = normalise_code(code)
    if normalised is None:
        raise UnknownReferralCode()
    t = models.referral_codes
    async with database.reading() as conn:
        held = (await conn.execute(select(t.c.user_id).where(t.c.code == normalised))).first()
    if held is None:
        raise UnknownReferralCode()
    return normalised


async def record_signup(
    database: Database, *, referred_id: str, code: str, now: datetime
) -> Referral:
    """``referred_id`` signed up with ``code``: a pending referral. Refuses an unknown code, the
    user's own code, a code whose owner this user referred (a cycle), and a user already
    referred."""
    normalised = normalise_code(code)
    if normalised is None:
        raise UnknownReferralCode()
    codes, r = models.referral_codes, models.referrals
    async with database.writing() as conn:
        owner = (
            await conn.execute(select(codes.c.user_id).where(codes.c.code == normalised))
        ).scalar()
        if owner is None:
            raise UnknownReferralCode()
        if owner == referred_id:
            raise SelfReferral()
        referred = await conn.execute(select(r.c.id).where(r.c.referred_id == referred_id))
        if referred.first() is not None:
            raise AlreadyReferred()
        if await _refers(conn, referred_id, owner):
            raise ReferralCycle()
        referral_id = uuid.uuid4().hex
        inserted = await conn.execute(
            db.insert(conn, r)
            .values(
                id=referral_id,
                referrer_id=owner,
                referred_id=referred_id,
                code=normalised,
                status=Status.PENDING.value,
                created_at=now,
            )
            .on_conflict_do_nothing()
            .returning(*r.c)
        )
        row = inserted.mappings().first()
        if row is None:  # referred by a concurrent sign-up since the check above
            raise AlreadyReferred()
        await _audit(
            conn,
            "signed_up",
            referred_id,
            referral_id,
            {"referrer_id": owner, "code": normalised},
            now,
        )
    return _referral(row)


async def complete(database: Database, *, referred_id: str, now: datetime) -> Completion | None:
    """``referred_id`` did the qualifying action: their pending referral is completed and both
    sides rewarded, in one transaction. None when they have no pending referral (never
    referred, or already rewarded), so calling it on every qualifying action is safe."""
    r = models.referrals
    async with database.writing() as conn:
        completed = await _advance(conn, r.c.referred_id == referred_id, Status.PENDING, now)
        if completed is None:
            return None
        referral_id, referrer_id = completed["id"], completed["referrer_id"]
        await _audit(conn, "completed", referred_id, referral_id, {"referrer_id": referrer_id}, now)
        # Rows locked in user-id order, so completions sharing users cannot deadlock.
        counts = {
            user: await _reward(
                conn,
                user,
                REFERRAL_REWARD,
                now,
                referral_id=referral_id,
                reason="referral",
                completed=1 if user == referrer_id else 0,
            )
            for user in sorted((referrer_id, referred_id))
        }
        referrer_completed = counts[referrer_id]
        badges: list[str] = []
        for milestone in MILESTONES:
            if referrer_completed >= milestone.completed and await _award(
                conn, referrer_id, milestone, now, referral_id=referral_id
            ):
                badges.append(milestone.badge)
        rewarded = await _advance(conn, r.c.id == referral_id, Status.COMPLETED, now)
        assert rewarded is not None  # this transaction holds the row since completing it
        await _audit(conn, "rewarded", referred_id, referral_id, {"referrer_id": referrer_id}, now)
    return Completion(_referral(rewarded), referrer_completed, tuple(badges))


async def rewards_of(database: Database, *, user_id: str) -> Rewards:
    """What ``user_id`` earned (zeros for a user who earned nothing)."""
    t, b = models.rewards, models.badges
    async with database.reading() as conn:
        row = (await conn.execute(select(t).where(t.c.user_id == user_id))).mappings().first()
        held = await conn.execute(
            select(b.c.badge).where(b.c.user_id == user_id).order_by(b.c.awarded_at, b.c.badge)
        )
        badges = tuple(held.scalars())
    if row is None:
        return Rewards(user_id, 0, 0, 0, None, badges)
    return Rewards(
        user_id=user_id,
        trial_days=row["trial_days"],
        credits=row["credits"],
        referrals_completed=row["referrals_completed"],
        trial_until=row["trial_until"],
        badges=badges,
    )


async def referrals_of(database: Database, *, referrer_id: str) -> list[Referral]:
    """The referrals ``referrer_id`` made, newest first."""
    r = models.referrals
    async with database.reading() as conn:
        rows = await conn.execute(
            select(r).where(r.c.referrer_id == referrer_id).order_by(r.c.created_at.desc(), r.c.id)
        )
        return [_referral(row) for row in rows.mappings()]


async def audit_trail(database: Database, *, user_id: str, limit: int = 100) -> list[AuditEntry]:
    """The newest audit entries about ``user_id``, newest first."""
    a = models.referral_audit
    async with database.reading() as conn:
        rows = await conn.execute(
            select(a).where(a.c.user_id == user_id).order_by(a.c.id.desc()).limit(limit)
        )
        return [
            AuditEntry(
                id=row["id"],
                referral_id=row["referral_id"],
                user_id=row["user_id"],
                event=row["event"],
                detail=row["detail"],
                created_at=row["created_at"],
            )
            for row in rows.mappings()
        ]


async def _refers(conn: AsyncConnection, ancestor: str, user: str) -> bool:
    """Whether ``ancestor`` referred ``user``, directly or through a chain of referrals."""
    r = models.referrals
    chain = select(r.c.referrer_id.label("user_id")).where(r.c.referred_id == user)
    chain_cte = chain.cte("chain", recursive=True)
    # UNION (not UNION ALL) ends the walk even on a cycle this check exists to prevent.
    chain_cte = chain_cte.union(
        select(r.c.referrer_id).join(chain_cte, r.c.referred_id == chain_cte.c.user_id)
    )
    found = await conn.execute(select(chain_cte.c.user_id).where(chain_cte.c.user_id == ancestor))
    return found.first() is not None


async def _advance(
    conn: AsyncConnection, which: ColumnElement[bool], current: Status, now: datetime
) -> RowMapping | None:
    """Move the referral matching ``which`` from ``current`` one step on; None if it is not in
    ``current`` (the WHERE re-checks the status under the row lock, so two racing calls cannot
    both move it)."""
    target = NEXT[current]
    r = models.referrals
    moved = await conn.execute(
        update(r)
        .where(which, r.c.status == current.value)
        .values({"status": target.value, _STAMP[target]: now})
        .returning(*r.c)
    )
    return moved.mappings().first()


async def _reward(
    conn: AsyncConnection,
    user_id: str,
    reward: Reward,
    now: datetime,
    *,
    referral_id: str,
    reason: str,
    completed: int = 0,
) -> int:
    """Add ``reward`` (and ``completed`` referrals) to ``user_id``'s totals by increments in SQL;
    their completed count after it. The trial is extended from its end, or from now if over."""
    t = models.rewards
    statement = db.insert(conn, t).values(
        user_id=user_id,
        trial_days=reward.trial_days,
        credits=reward.credits,
        referrals_completed=completed,
        trial_until=None,
    )
    added = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[t.c.user_id],
            set_={
                "trial_days": t.c.trial_days + statement.excluded.trial_days,
                "credits": t.c.credits + statement.excluded.credits,
                "referrals_completed": t.c.referrals_completed
                + statement.excluded.referrals_completed,
            },
        ).returning(t.c.referrals_completed, t.c.trial_until)
    )
    total, trial_until = added.one()
    if reward.trial_days:
        # The upsert holds the row's lock until commit: this read-then-write cannot interleave.
        start = max(trial_until or now, now)
        await conn.execute(
            update(t)
            .where(t.c.user_id == user_id)
            .values(trial_until=start + timedelta(days=reward.trial_days))
        )
    detail = {"reason": reason, "trial_days": reward.trial_days, "credits": reward.credits}
    await _audit(conn, "reward_granted", user_id, referral_id, detail, now)
    return int(total)


async def _award(
    conn: AsyncConnection, user_id: str, milestone: Milestone, now: datetime, *, referral_id: str
) -> bool:
    """Give ``milestone``'s badge and reward unless ``user_id`` holds the badge already."""
    b = models.badges
    inserted = await conn.execute(
        db.insert(conn, b)
        .values(user_id=user_id, badge=milestone.badge, awarded_at=now)
        .on_conflict_do_nothing()
        .returning(b.c.badge)
    )
    if inserted.first() is None:
        return False
    detail = {"badge": milestone.badge, "at": milestone.completed}
    await _audit(conn, "badge_awarded", user_id, referral_id, detail, now)
    await _reward(
        conn, user_id, milestone.reward, now, referral_id=referral_id, reason=milestone.badge
    )
    return True


async def _audit(
    conn: AsyncConnection,
    event: str,
    user_id: str,
    referral_id: str | None,
    detail: Mapping[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        models.referral_audit.insert().values(
            referral_id=referral_id,
            user_id=user_id,
            event=event,
            detail=dict(detail),
            created_at=now,
        )
    )


def _referral(row: RowMapping) -> Referral:
    return Referral(
        id=row["id"],
        referrer_id=row["referrer_id"],
        referred_id=row["referred_id"],
        code=row["code"],
        status=Status(row["status"]),
        created_at=row["created_at"],
        completed_at=row["completed_at"],
        rewarded_at=row["rewarded_at"],
    )
