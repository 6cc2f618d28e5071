"""Daily usage limits by plan: one counter per user, UTC day and action.

The check and the increment are one statement (an upsert whose update applies only below the
limit), so concurrent requests cannot both take the last use: the database serialises them on
the counter's row and the loser sees the limit reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select, update

from keel.core import db, errors
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.billing.plans import FREE, Plans


class DailyLimitReached(errors.RateLimited):
    """The plan's daily limit for this action is reached; it resets at midnight UTC."""

    code = "daily_limit_reached"

    def __init__(self, *, action: str, plan: str, limit: int, now: datetime) -> None:
        self.action = action
        self.plan = plan
        self.limit = limit
        self.retry_at = next_reset(now)
        retry_after = max(1, math.ceil((self.retry_at - now).total_seconds()))
        super().__init__(
            f"The {plan} plan allows {limit} {action} per day; it resets at midnight UTC",
            action=action,
            plan=plan,
            limit=limit,
            retry_after=retry_after,  # keel.core.app turns it into the Retry-After header
            retry_at=self.retry_at.isoformat(),
        )


@dataclass(frozen=True)
class Usage:
    """Uses of ``action`` on ``day`` (UTC) against the plan's ``limit``."""

    action: str
    day: date
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def next_reset(now: datetime) -> datetime:
    """The next midnight UTC after ``now``."""
    return datetime.combine(utc_day(now) + timedelta(days=1), time(0), tzinfo=UTC)


async def consume(
    database: Database, plans: Plans, *, user_id: str, action: str, plan: str, now: datetime
) -> Usage:
    """Take one use of ``action`` for today (UTC); :class:`DailyLimitReached` (429, with the
    seconds until midnight UTC) when the plan's limit is used up. One transaction."""
    limit = plans.daily_limit(plan, action)
    if limit <= 0:
        raise DailyLimitReached(action=action, plan=plan, limit=limit, now=now)
    day = utc_day(now)
    t = models.usage
    async with database.writing() as conn:
        statement = db.insert(conn, t).values(user_id=user_id, day=day, action=action, count=1)
        taken = await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[t.c.user_id, t.c.day, t.c.action],
                set_={"count": t.c.count + 1},
                where=t.c.count < limit,
            ).returning(t.c.count)
        )
        used = taken.scalar()
    if used is None:
        raise DailyLimitReached(action=action, plan=plan, limit=limit, now=now)
    return Usage(action=action, day=day, used=used, limit=limit)


async def release(database: Database, *, user_id: str, action: str, day: date) -> None:
    """Give back one use taken on ``day`` (e.g. the generation it paid for failed)."""
    t = models.usage
    async with database.writing() as conn:
        await conn.execute(
            update(t)
            .where(t.c.user_id == user_id, t.c.day == day, t.c.action == action, t.c.count > 0)
            .values(count=t.c.count - 1)
        )


async def today(
    database: Database, plans: Plans, *, user_id: str, plan: str, now: datetime
) -> list[Usage]:
    """Today's use of every action the plan limits, in the settings' order."""
    day = utc_day(now)
    t = models.usage
    async with database.reading() as conn:
        rows = await conn.execute(
            select(t.c.action, t.c.count).where(t.c.user_id == user_id, t.c.day == day)
        )
        used = {action: count for action, count in rows}
    actions = plans.daily_limits.get(plan, plans.daily_limits[FREE])
    return [
        Usage(action=a, day=day, used=used.get(a, 0), limit=plans.daily_limit(plan, a))
        for a in actions
    ]
