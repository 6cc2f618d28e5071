"""/watch: tokens a user follows, re-scanned on a schedule, with an alert when the risk moves.

Each watch keeps the last report it alerted on (or started with). The checker takes the watches
due (not checked for ``interval``), scans each afresh, compares with the kept report and, when
something a holder cares about changed (``keel.coach.risk.diff``), sends the alert and keeps
the new report. A failed scan leaves the report as it was and tries again next interval.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import delete, func, or_, select, update

from keel.coach import models
from keel.coach.risk import RiskError, RiskRadar, RiskReport, Token, diff, format_alert
from keel.core import db
from keel.core.replicated import Database

log = structlog.get_logger("keel.coach.watching")

BATCH: Final = 50  # watches checked per pass; the next pass takes the rest

Alert = Callable[[int, str], Awaitable[None]]  # (chat id, Telegram HTML)


@dataclass(frozen=True)
class Watch:
    chain: str
    address: str
    checked_at: datetime | None


class Watches:
    def __init__(self, database: Database, radar: RiskRadar, *, interval: timedelta) -> None:
        self.database = database
        self.radar = radar
        self.interval = interval

    async def count(self, user_id: int) -> int:
        async with self.database.reading() as conn:
            total = await conn.execute(
                select(func.count()).where(models.watches.c.user_id == user_id)
            )
        return int(total.scalar_one())

    async def of(self, user_id: int) -> list[Watch]:
        w = models.watches
        async with self.database.reading() as conn:
            rows = await conn.execute(
                select(w.c.chain, w.c.address, w.c.checked_at)
                .where(w.c.user_id == user_id)
                .order_by(w.c.created_at)
            )
        return [Watch(r.chain, r.address, r.checked_at) for r in rows]

    async def add(
        self, user_id: int, chat_id: int, token: Token, report: RiskReport, now: datetime
    ) -> bool:
        """Watch ``token`` from ``report`` on; False when it was watched already."""
        w = models.watches
        async with self.database.writing() as conn:
            inserted = await conn.execute(
                db.insert(conn, w)
                .values(
                    user_id=user_id,
                    chain=token.chain,
                    address=token.address,
                    chat_id=chat_id,
                    report=report.to_json(),
                    checked_at=now,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=[w.c.user_id, w.c.chain, w.c.address])
            )
        return bool(inserted.rowcount)

    async def remove(self, user_id: int, token: Token) -> bool:
        w = models.watches
        async with self.database.writing() as conn:
            removed = await conn.execute(
                delete(w).where(
                    w.c.user_id == user_id, w.c.chain == token.chain, w.c.address == token.address
                )
            )
        return bool(removed.rowcount)

    async def check_due(self, now: datetime, alert: Alert) -> int:
        """Check the watches due at ``now``; the number of alerts sent."""
        w = models.watches
        async with self.database.reading() as conn:
            due = (
                await conn.execute(
                    select(w.c.user_id, w.c.chain, w.c.address, w.c.chat_id, w.c.report)
                    .where(or_(w.c.checked_at.is_(None), w.c.checked_at <= now - self.interval))
                    .order_by(w.c.checked_at)
                    .limit(BATCH)
                )
            ).all()
        sent = 0
        for row in due:
            key = (w.c.user_id == row.user_id, w.c.chain == row.chain, w.c.address == row.address)
            try:
                report, score = await self.radar.scan(row.chain, row.address, fresh=True)
            except RiskError as exc:
                log.info("watch_scan_failed", chain=row.chain, error=exc.detail)
                async with self.database.writing() as conn:
                    await conn.execute(update(w).where(*key).values(checked_at=now))
                continue
            old = _stored(row.report)
            changes = diff(old, report)
            if changes:
                await alert(row.chat_id, format_alert(report, changes, score))
                sent += 1
            async with self.database.writing() as conn:
                values: dict[str, object] = {"checked_at": now}
                if changes or old is None:
                    values["report"] = report.to_json()
                await conn.execute(update(w).where(*key).values(**values))
        return sent


def _stored(data: object) -> RiskReport | None:
    if not isinstance(data, dict):
        return None
    try:
        return RiskReport.from_json(data)
    except RiskError:
        return None
