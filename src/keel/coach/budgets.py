"""Per-user daily budgets: tokens for answers and scans for /scan, by plan.

Scans are taken before the scan (one atomic check-and-count). An answer's tokens are known
only afterwards, so a question is let through while today's tokens are below the limit and
its cost is charged once it is answered: the last answer of a day may overshoot by one answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keel.coach import models
from keel.core import usage
from keel.core.replicated import Database
from keel.core.usage import DailyLimitReached, Usage

TOKENS = "tokens"
SCANS = "scans"


@dataclass(frozen=True)
class Limits:
    tokens: int
    scans: int


class Budgets:
    def __init__(self, database: Database, *, free: Limits, pro: Limits) -> None:
        self.database = database
        self.plans = {"free": free, "pro": pro}

    def limits(self, plan: str) -> Limits:
        return self.plans[plan]

    async def check_tokens(self, user_id: int, plan: str, now: datetime) -> Usage:
        """Today's tokens; :class:`DailyLimitReached` once they reach the plan's limit."""
        limit = self.plans[plan].tokens
        async with self.database.reading() as conn:
            used = (await usage.used_today(conn, models.usage, user_id=user_id, now=now)).get(
                TOKENS, 0
            )
        if used >= limit:
            raise DailyLimitReached(action=TOKENS, plan=plan, limit=limit, now=now)
        return Usage(TOKENS, usage.utc_day(now), used, limit)

    async def charge_tokens(self, user_id: int, tokens: int, now: datetime) -> int:
        async with self.database.writing() as conn:
            return await usage.add(
                conn, models.usage, user_id=user_id, action=TOKENS, amount=tokens, now=now
            )

    async def take_scan(self, user_id: int, plan: str, now: datetime) -> Usage:
        async with self.database.writing() as conn:
            return await usage.take(
                conn,
                models.usage,
                user_id=user_id,
                action=SCANS,
                limit=self.plans[plan].scans,
                plan=plan,
                now=now,
            )

    async def release_scan(self, user_id: int, now: datetime) -> None:
        """Give back a scan that could not run (GoPlus down)."""
        async with self.database.writing() as conn:
            await usage.release(
                conn, models.usage, user_id=user_id, action=SCANS, day=usage.utc_day(now)
            )

    async def today(self, user_id: int, plan: str, now: datetime) -> dict[str, Usage]:
        async with self.database.reading() as conn:
            used = await usage.used_today(conn, models.usage, user_id=user_id, now=now)
        limits = self.plans[plan]
        day = usage.utc_day(now)
        return {
            TOKENS: Usage(TOKENS, day, used.get(TOKENS, 0), limits.tokens),
            SCANS: Usage(SCANS, day, used.get(SCANS, 0), limits.scans),
        }
