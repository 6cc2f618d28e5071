"""Daily usage counters: one row per user, UTC day and action.

:func:`take` checks and increments in one statement (an upsert whose update applies only below
the limit), so concurrent requests cannot both take the last unit: the database serialises
them on the counter's row and the loser sees the limit reached. :func:`add` charges what was
only known afterwards (the tokens an answer cost) without a limit. Each product keeps its own
table (:func:`usage_table`) and its own plans; the caller owns the transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Column, Date, Integer, MetaData, String, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db, errors


def usage_table(metadata: MetaData, name: str, user: Column[Any]) -> Table:
    """The counters' table; ``user`` is the product's user column (a primary-key part)."""
    return Table(
        name,
        metadata,
        user,
        Column("day", Date, primary_key=True),
        Column("action", String(20), primary_key=True),
        Column("count", Integer, nullable=False),
    )


class DailyLimitReached(errors.RateLimited):
    """The plan's daily limit for this action is reached; it resets at midnight UTC."""

    code = "daily_limit_reached"

    def __init__(self, *, action: str, plan: str, limit: int, now: datetime) -> None:
        self.action = action
        self.plan = plan
        self.limit = limit
        self.retry_at = next_reset(now)
        self.retry_after = max(1, math.ceil((self.retry_at - now).total_seconds()))
        super().__init__(
            f"The {plan} plan allows {limit} {action} per day; it resets at midnight UTC",
            action=action,
            plan=plan,
            limit=limit,
            retry_after=self.retry_after,  # keel.core.app turns it into the Retry-After header
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


async def take(
    conn: AsyncConnection,
    table: Table,
    *,
    user_id: object,
    action: str,
    limit: int,
    plan: str,
    now: datetime,
    amount: int = 1,
) -> Usage:
    """Take ``amount`` of ``action`` for today, only while the count is below ``limit``;
    :class:`DailyLimitReached` (with the seconds until midnight UTC) otherwise."""
    if limit <= 0:
        raise DailyLimitReached(action=action, plan=plan, limit=limit, now=now)
    day = utc_day(now)
    user = _user_column(table)
    statement = db.insert(conn, table).values(
        {user.name: user_id, "day": day, "action": action, "count": amount}
    )
    taken = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[user, table.c.day, table.c.action],
            set_={"count": table.c.count + amount},
            where=table.c.count < limit,
        ).returning(table.c.count)
    )
    used = taken.scalar()
    if used is None:
        raise DailyLimitReached(action=action, plan=plan, limit=limit, now=now)
    return Usage(action=action, day=day, used=used, limit=limit)


async def add(
    conn: AsyncConnection, table: Table, *, user_id: object, action: str, amount: int, now: datetime
) -> int:
    """Charge ``amount`` to today's ``action`` whatever the limit; the new count."""
    user = _user_column(table)
    statement = db.insert(conn, table).values(
        {user.name: user_id, "day": utc_day(now), "action": action, "count": amount}
    )
    result = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[user, table.c.day, table.c.action],
            set_={"count": table.c.count + amount},
        ).returning(table.c.count)
    )
    return int(result.scalar_one())


async def release(
    conn: AsyncConnection, table: Table, *, user_id: object, action: str, day: date
) -> None:
    """Give back one use taken on ``day`` (e.g. the work it paid for failed)."""
    user = _user_column(table)
    await conn.execute(
        update(table)
        .where(user == user_id, table.c.day == day, table.c.action == action, table.c.count > 0)
        .values(count=table.c.count - 1)
    )


async def used_today(
    conn: AsyncConnection, table: Table, *, user_id: object, now: datetime
) -> dict[str, int]:
    """Today's count of every action the user has used."""
    user = _user_column(table)
    rows = await conn.execute(
        select(table.c.action, table.c.count).where(user == user_id, table.c.day == utc_day(now))
    )
    return {action: count for action, count in rows}


def _user_column(table: Table) -> Column[Any]:
    return next(c for c in table.primary_key.columns if c.name not in ("day", "action"))
