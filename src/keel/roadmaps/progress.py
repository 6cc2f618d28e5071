"""A learner's progress: each step done, learning or skipped, time spent, and the daily
activity that the heatmap and streaks are drawn from.

Activity is counted per UTC day when it happens (a step turning ``done``, minutes logged), in
the same transaction as the progress change, so the heatmap reads one small table and never
re-derives history from step rows that may later be edited away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from sqlalchemy import func, select

from keel.core import db
from keel.core.errors import Unprocessable
from keel.core.replicated import Database
from keel.roadmaps import library, models

StepStatus = Literal["done", "learning", "skip"]
STATUSES: tuple[str, ...] = ("done", "learning", "skip")
MAX_MINUTES_PER_MARK = 24 * 60
HEATMAP_DAYS = 365


class InvalidProgress(Unprocessable):
    code = "invalid_progress"
    title = "Invalid progress"


@dataclass(frozen=True)
class StepProgress:
    step_id: str
    status: str
    minutes: int


@dataclass(frozen=True)
class RoadmapProgress:
    roadmap_id: str
    total: int
    done: int
    learning: int
    skipped: int
    minutes: int
    steps: dict[str, StepProgress]

    @property
    def percent(self) -> int:
        """Share of the steps not skipped that are done."""
        counted = self.total - self.skipped
        return 100 if counted <= 0 else round(100 * self.done / counted)


@dataclass(frozen=True)
class Day:
    day: date
    steps_done: int
    minutes: int

    @property
    def level(self) -> int:
        """Heatmap shade 0..4."""
        score = self.steps_done * 2 + self.minutes // 30
        return 0 if score == 0 else 1 if score <= 1 else 2 if score <= 3 else 3 if score <= 6 else 4


@dataclass(frozen=True)
class Activity:
    days: tuple[Day, ...]  # every day of the window, oldest first, zeros included
    current_streak: int
    longest_streak: int
    total_minutes: int
    total_steps_done: int


async def mark(
    database: Database,
    user_id: str,
    roadmap_id: str,
    step_id: str,
    status: str,
    *,
    minutes: int = 0,
    now: datetime,
) -> StepProgress:
    """Set ``step_id``'s status for ``user_id`` and add ``minutes`` spent on it. Anyone who can
    see the roadmap tracks their own progress on it."""
    if status not in STATUSES:
        raise InvalidProgress(f"status must be one of {', '.join(STATUSES)}")
    if not 0 <= minutes <= MAX_MINUTES_PER_MARK:
        raise InvalidProgress(f"minutes must be between 0 and {MAX_MINUTES_PER_MARK}")
    roadmap = await library.status(database, roadmap_id, user_id)
    today = now.date()
    async with database.writing() as conn:
        step = (
            await conn.execute(
                select(models.steps.c.id).where(
                    models.steps.c.id == step_id, models.steps.c.roadmap_id == roadmap.id
                )
            )
        ).first()
        if step is None:
            raise InvalidProgress("no such step on this roadmap")
        before = (
            (
                await conn.execute(
                    select(models.progress.c.status, models.progress.c.minutes)
                    .where(
                        models.progress.c.user_id == user_id,
                        models.progress.c.step_id == step_id,
                    )
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        total = (before["minutes"] if before else 0) + minutes
        upsert = db.insert(conn, models.progress).values(
            user_id=user_id,
            step_id=step_id,
            roadmap_id=roadmap.id,
            status=status,
            minutes=total,
            updated_at=now,
        )
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=["user_id", "step_id"],
                set_={"status": status, "minutes": total, "updated_at": now},
            )
        )
        newly_done = status == "done" and (before is None or before["status"] != "done")
        if newly_done or minutes:
            day = db.insert(conn, models.activity).values(
                user_id=user_id, day=today, steps_done=int(newly_done), minutes=minutes
            )
            await conn.execute(
                day.on_conflict_do_update(
                    index_elements=["user_id", "day"],
                    set_={
                        "steps_done": models.activity.c.steps_done + int(newly_done),
                        "minutes": models.activity.c.minutes + minutes,
                    },
                )
            )
    return StepProgress(step_id=step_id, status=status, minutes=total)


async def of_roadmap(database: Database, user_id: str, roadmap: library.Roadmap) -> RoadmapProgress:
    async with database.reading() as conn:
        rows = (
            (
                await conn.execute(
                    select(
                        models.progress.c.step_id,
                        models.progress.c.status,
                        models.progress.c.minutes,
                    ).where(
                        models.progress.c.user_id == user_id,
                        models.progress.c.roadmap_id == roadmap.id,
                    )
                )
            )
            .mappings()
            .all()
        )
    step_ids = {step.id for step in roadmap.steps}
    steps = {
        r["step_id"]: StepProgress(r["step_id"], r["status"], r["minutes"])
        for r in rows
        if r["step_id"] in step_ids
    }
    return _summary(roadmap.id, len(roadmap.steps), steps)


def _summary(roadmap_id: str, total: int, steps: dict[str, StepProgress]) -> RoadmapProgress:
    values = list(steps.values())
    return RoadmapProgress(
        roadmap_id=roadmap_id,
        total=total,
        done=sum(p.status == "done" for p in values),
        learning=sum(p.status == "learning" for p in values),
        skipped=sum(p.status == "skip" for p in values),
        minutes=sum(p.minutes for p in values),
        steps=steps,
    )


async def done_counts(
    database: Database, user_id: str, roadmap_ids: Sequence[str]
) -> dict[str, int]:
    """Steps done per roadmap (the dashboard's progress bars) in one query."""
    if not roadmap_ids:
        return {}
    async with database.reading() as conn:
        rows = await conn.execute(
            select(models.progress.c.roadmap_id, func.count())
            .where(
                models.progress.c.user_id == user_id,
                models.progress.c.roadmap_id.in_(list(roadmap_ids)),
                models.progress.c.status == "done",
            )
            .group_by(models.progress.c.roadmap_id)
        )
        return {roadmap_id: int(count) for roadmap_id, count in rows}


async def activity(
    database: Database, user_id: str, today: date, days: int = HEATMAP_DAYS
) -> Activity:
    """The last ``days`` days of activity ending ``today``, with streaks.

    The current streak counts back from today, or from yesterday when nothing happened yet
    today (a streak is not broken until a whole day passes without activity)."""
    async with database.reading() as conn:
        rows = (
            (
                await conn.execute(
                    select(models.activity)
                    .where(models.activity.c.user_id == user_id)
                    .order_by(models.activity.c.day)
                )
            )
            .mappings()
            .all()
        )
    by_day = {r["day"]: Day(r["day"], r["steps_done"], r["minutes"]) for r in rows}
    return summarise(by_day, today, days)


def summarise(by_day: dict[date, Day], today: date, days: int = HEATMAP_DAYS) -> Activity:
    """Heatmap window and streaks from the days with activity (pure, for property tests)."""
    start = today - timedelta(days=days - 1)
    window = tuple(
        by_day.get(start + timedelta(days=i), Day(start + timedelta(days=i), 0, 0))
        for i in range(days)
    )
    active = sorted(d for d, v in by_day.items() if (v.steps_done or v.minutes) and d <= today)
    longest = run = 0
    previous: date | None = None
    for day in active:
        run = run + 1 if previous is not None and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    current = 0
    active_set = set(active)
    cursor = today if today in active_set else today - timedelta(days=1)
    while cursor in active_set:
        current += 1
        cursor -= timedelta(days=1)
    return Activity(
        days=window,
        current_streak=current,
        longest_streak=longest,
        total_minutes=sum(v.minutes for v in by_day.values()),
        total_steps_done=sum(v.steps_done for v in by_day.values()),
    )
