"""Daily usage limits by plan, on keel.core.usage's counters (one per user, UTC day and
action; the check and the increment are one statement)."""

from __future__ import annotations

from datetime import date, datetime

from keel.core import usage as counters
from keel.core.replicated import Database
from keel.core.usage import DailyLimitReached, Usage, next_reset, utc_day
from keel.roadmaps import models
from keel.roadmaps.billing.plans import FREE, Plans


async def consume(
    database: Database, plans: Plans, *, user_id: str, action: str, plan: str, now: datetime
) -> Usage:
    """Take one use of ``action`` for today (UTC); :class:`DailyLimitReached` (429, with the
    seconds until midnight UTC) when the plan's limit is used up. One transaction."""
    limit = plans.daily_limit(plan, action)
    async with database.writing() as conn:
        return await counters.take(
            conn, models.usage, user_id=user_id, action=action, limit=limit, plan=plan, now=now
        )


async def release(database: Database, *, user_id: str, action: str, day: date) -> None:
    """Give back one use taken on ``day`` (e.g. the generation it paid for failed)."""
    async with database.writing() as conn:
        await counters.release(conn, models.usage, user_id=user_id, action=action, day=day)


async def today(
    database: Database, plans: Plans, *, user_id: str, plan: str, now: datetime
) -> list[Usage]:
    """Today's use of every action the plan limits, in the settings' order."""
    async with database.reading() as conn:
        used = await counters.used_today(conn, models.usage, user_id=user_id, now=now)
    actions = plans.daily_limits.get(plan, plans.daily_limits[FREE])
    day = utc_day(now)
    return [
        Usage(action=a, day=day, used=used.get(a, 0), limit=plans.daily_limit(plan, a))
        for a in actions
    ]


__all__ = ["DailyLimitReached", "Usage", "consume", "next_reset", "release", "today", "utc_day"]
