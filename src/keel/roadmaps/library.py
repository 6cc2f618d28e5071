"""Roadmaps and their steps: created from a goal, filled by generation, edited by their owner.

A roadmap starts ``generating`` with a job queued in the same transaction; the generation job
reports progress on the row (the SSE stream and the polling fallback both read it) and ends it
``ready`` with its steps, or ``failed`` with a reason. Only the owner sees a private roadmap;
a public one is readable by anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.generation.request import GOAL_MAX_CHARS

SourceKind = Literal["text", "url", "pdf"]
Status = Literal["generating", "ready", "failed"]
GENERATING, READY, FAILED = "generating", "ready", "failed"
MAX_GOAL_CHARS = GOAL_MAX_CHARS  # what a generator accepts
MAX_STEPS = 60


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Resource:
    title: str
    url: str
    kind: str


@dataclass(frozen=True)
class Step:
    id: str
    position: int
    title: str
    description: str  # sanitised HTML
    hours: Decimal
    resources: tuple[Resource, ...]


@dataclass(frozen=True)
class Roadmap:
    id: str
    owner_id: str
    title: str
    goal: str
    source_kind: str
    source_ref: str | None
    status: str
    progress: int
    stage: str
    error: str | None
    provider: str
    model: str
    visibility: str
    published_at: datetime | None
    cloned_from: str | None
    rating_sum: int
    rating_count: int
    clone_count: int
    view_count: int
    step_count: int
    total_hours: Decimal
    created_at: datetime
    updated_at: datetime
    steps: tuple[Step, ...] = ()

    @property
    def public(self) -> bool:
        return self.visibility == "public"

    @property
    def rating(self) -> Decimal | None:
        """Mean stars to one decimal place, or None before the first rating."""
        if not self.rating_count:
            return None
        return (Decimal(self.rating_sum) / Decimal(self.rating_count)).quantize(Decimal("0.1"))


@dataclass(frozen=True)
class StepInput:
    """A step as generation or the editor supplies it (description already sanitised)."""

    title: str
    description: str
    hours: Decimal
    resources: tuple[Resource, ...] = ()


class RoadmapNotFound(NotFound):
    code = "roadmap_not_found"
    title = "Roadmap not found"


class NotYourRoadmap(Forbidden):
    code = "not_your_roadmap"
    title = "Only the roadmap's owner may change it"


class NotReady(Conflict):
    code = "roadmap_not_ready"
    title = "The roadmap is still generating or has failed"


class InvalidStep(Unprocessable):
    code = "invalid_step"
    title = "Invalid step"


def _roadmap(row: RowMapping, steps: Sequence[Step] = ()) -> Roadmap:
    return Roadmap(
        id=row["id"],
        owner_id=row["owner_id"],
        title=row["title"],
        goal=row["goal"],
        source_kind=row["source_kind"],
        source_ref=row["source_ref"],
        status=row["status"],
        progress=row["progress"],
        stage=row["stage"],
        error=row["error"],
        provider=row["provider"],
        model=row["model"],
        visibility=row["visibility"],
        published_at=row["published_at"],
        cloned_from=row["cloned_from"],
        rating_sum=row["rating_sum"],
        rating_count=row["rating_count"],
        clone_count=row["clone_count"],
        view_count=row["view_count"],
        step_count=row["step_count"],
        total_hours=Decimal(row["total_hours"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        steps=tuple(steps),
    )


def _step(row: RowMapping) -> Step:
    resources = tuple(
        Resource(str(r.get("title", "")), str(r.get("url", "")), str(r.get("kind", "")))
        for r in row["resources"] or ()
        if isinstance(r, dict)
    )
    return Step(
        id=row["id"],
        position=row["position"],
        title=row["title"],
        description=row["description"],
        hours=Decimal(row["hours"]),
        resources=resources,
    )


def _resources_json(resources: Sequence[Resource]) -> list[dict[str, Any]]:
    return [{"title": r.title, "url": r.url, "kind": r.kind} for r in resources]


async def create(
    conn: AsyncConnection,
    *,
    owner_id: str,
    title: str,
    goal: str,
    source_kind: SourceKind,
    source_ref: str | None,
    now: datetime,
) -> Roadmap:
    """A new roadmap in ``generating`` inside the caller's transaction (which also queues the
    job that fills it)."""
    values: dict[str, Any] = {
        "id": new_id(),
        "owner_id": owner_id,
        "title": title[:200],
        "goal": goal[:MAX_GOAL_CHARS],
        "source_kind": source_kind,
        "source_ref": source_ref,
        "status": GENERATING,
        "progress": 0,
        "stage": "queued",
        "error": None,
        "provider": "",
        "model": "",
        "visibility": "private",
        "published_at": None,
        "cloned_from": None,
        "rating_sum": 0,
        "rating_count": 0,
        "clone_count": 0,
        "view_count": 0,
        "step_count": 0,
        "total_hours": Decimal(0),
        "created_at": now,
        "updated_at": now,
    }
    await conn.execute(models.roadmaps.insert().values(**values))
    return Roadmap(**values)


async def report_progress(
    database: Database, roadmap_id: str, percent: int, stage: str, now: datetime
) -> None:
    """Record how far generation is; progress only moves forward."""
    async with database.writing() as conn:
        await conn.execute(
            update(models.roadmaps)
            .where(
                models.roadmaps.c.id == roadmap_id,
                models.roadmaps.c.status == GENERATING,
                models.roadmaps.c.progress <= percent,
            )
            .values(progress=max(0, min(percent, 99)), stage=stage[:80], updated_at=now)
        )


async def fill(
    database: Database,
    roadmap_id: str,
    *,
    title: str,
    steps: Sequence[StepInput],
    provider: str,
    model: str,
    now: datetime,
) -> bool:
    """Store generated steps and mark the roadmap ready, once: False when it was no longer
    generating (a second run of the same job after a crash)."""
    async with database.writing() as conn:
        done = await conn.execute(
            update(models.roadmaps)
            .where(models.roadmaps.c.id == roadmap_id, models.roadmaps.c.status == GENERATING)
            .values(
                status=READY,
                progress=100,
                stage="ready",
                title=title[:200],
                provider=provider[:40],
                model=model[:120],
                updated_at=now,
            )
        )
        if done.rowcount != 1:
            return False
        await insert_steps(conn, roadmap_id, steps)
        await recount(conn, roadmap_id)
    return True


async def insert_steps(
    conn: AsyncConnection, roadmap_id: str, steps: Sequence[StepInput], start: int = 0
) -> None:
    if not steps:
        return
    await conn.execute(
        models.steps.insert(),
        [
            {
                "id": new_id(),
                "roadmap_id": roadmap_id,
                "position": start + index,
                "title": step.title[:200],
                "description": step.description,
                "hours": step.hours,
                "resources": _resources_json(step.resources),
            }
            for index, step in enumerate(steps)
        ],
    )


async def recount(conn: AsyncConnection, roadmap_id: str) -> None:
    """Refresh the roadmap's step count and total hours from its steps (Decimal sums in Python:
    SQLite keeps the hours as exact text)."""
    hours = (
        (
            await conn.execute(
                select(models.steps.c.hours).where(models.steps.c.roadmap_id == roadmap_id)
            )
        )
        .scalars()
        .all()
    )
    await conn.execute(
        update(models.roadmaps)
        .where(models.roadmaps.c.id == roadmap_id)
        .values(step_count=len(hours), total_hours=sum((Decimal(h) for h in hours), Decimal(0)))
    )


async def fail(database: Database, roadmap_id: str, reason: str, now: datetime) -> None:
    async with database.writing() as conn:
        await conn.execute(
            update(models.roadmaps)
            .where(models.roadmaps.c.id == roadmap_id, models.roadmaps.c.status == GENERATING)
            .values(status=FAILED, stage="failed", error=reason[:500], updated_at=now)
        )


async def load(conn: AsyncConnection, roadmap_id: str) -> Roadmap | None:
    row = (
        (await conn.execute(select(models.roadmaps).where(models.roadmaps.c.id == roadmap_id)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    steps = (
        (
            await conn.execute(
                select(models.steps)
                .where(models.steps.c.roadmap_id == roadmap_id)
                .order_by(models.steps.c.position)
            )
        )
        .mappings()
        .all()
    )
    return _roadmap(row, [_step(s) for s in steps])


async def get(database: Database, roadmap_id: str, viewer_id: str | None) -> Roadmap:
    """The roadmap if ``viewer_id`` may see it: its owner always, anyone once public."""
    async with database.reading() as conn:
        roadmap = await load(conn, roadmap_id)
    if roadmap is None or not (roadmap.public or roadmap.owner_id == viewer_id):
        raise RoadmapNotFound(f"no roadmap {roadmap_id!r}")
    return roadmap


async def status(database: Database, roadmap_id: str, viewer_id: str | None) -> Roadmap:
    """The roadmap's row without its steps (what the progress stream polls)."""
    async with database.reading() as conn:
        row = (
            (await conn.execute(select(models.roadmaps).where(models.roadmaps.c.id == roadmap_id)))
            .mappings()
            .first()
        )
    if row is None or not (row["visibility"] == "public" or row["owner_id"] == viewer_id):
        raise RoadmapNotFound(f"no roadmap {roadmap_id!r}")
    return _roadmap(row)


async def owned_by(database: Database, owner_id: str, limit: int = 100) -> list[Roadmap]:
    async with database.reading() as conn:
        rows = (
            (
                await conn.execute(
                    select(models.roadmaps)
                    .where(models.roadmaps.c.owner_id == owner_id)
                    .order_by(models.roadmaps.c.created_at.desc())
                    .limit(limit)
                )
            )
            .mappings()
            .all()
        )
    return [_roadmap(row) for row in rows]


async def step_counts(database: Database, roadmap_ids: Sequence[str]) -> dict[str, int]:
    if not roadmap_ids:
        return {}
    async with database.reading() as conn:
        rows = await conn.execute(
            select(models.steps.c.roadmap_id, func.count())
            .where(models.steps.c.roadmap_id.in_(list(roadmap_ids)))
            .group_by(models.steps.c.roadmap_id)
        )
        return {roadmap_id: int(count) for roadmap_id, count in rows}


async def owned_for_update(conn: AsyncConnection, roadmap_id: str, owner_id: str) -> RowMapping:
    row = (
        (
            await conn.execute(
                select(models.roadmaps).where(models.roadmaps.c.id == roadmap_id).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise RoadmapNotFound(f"no roadmap {roadmap_id!r}")
    if row["owner_id"] != owner_id:
        # A private roadmap is not revealed to others; a public one says who may edit it.
        if row["visibility"] != "public":
            raise RoadmapNotFound(f"no roadmap {roadmap_id!r}")
        raise NotYourRoadmap("only the owner may change this roadmap")
    return row


async def edit(
    database: Database,
    roadmap_id: str,
    owner_id: str,
    *,
    title: str,
    steps: Sequence[StepInput],
    now: datetime,
) -> Roadmap:
    """Replace the title and the steps (the editor saves the whole list: reorder, add, remove,
    change). Progress on steps whose title survives is kept by matching titles."""
    if not steps:
        raise InvalidStep("a roadmap needs at least one step")
    if len(steps) > MAX_STEPS:
        raise InvalidStep(f"a roadmap has at most {MAX_STEPS} steps")
    async with database.writing() as conn:
        row = await owned_for_update(conn, roadmap_id, owner_id)
        if row["status"] != READY:
            raise NotReady("only a ready roadmap can be edited")
        old = (
            (
                await conn.execute(
                    select(models.steps.c.id, models.steps.c.title).where(
                        models.steps.c.roadmap_id == roadmap_id
                    )
                )
            )
            .mappings()
            .all()
        )
        by_title = {r["title"]: r["id"] for r in old}
        kept: set[str] = set()
        await conn.execute(
            update(models.roadmaps)
            .where(models.roadmaps.c.id == roadmap_id)
            .values(title=title[:200], updated_at=now)
        )
        # Positions are unique per roadmap: move the survivors out of the way first.
        await conn.execute(
            update(models.steps)
            .where(models.steps.c.roadmap_id == roadmap_id)
            .values(position=models.steps.c.position + 100_000)
        )
        fresh: list[tuple[int, StepInput]] = []
        for position, step in enumerate(steps):
            step_id = by_title.get(step.title)
            if step_id is not None and step_id not in kept:
                kept.add(step_id)
                await conn.execute(
                    update(models.steps)
                    .where(models.steps.c.id == step_id)
                    .values(
                        position=position,
                        description=step.description,
                        hours=step.hours,
                        resources=_resources_json(step.resources),
                    )
                )
            else:
                fresh.append((position, step))
        gone = [r["id"] for r in old if r["id"] not in kept]
        if gone:
            await conn.execute(delete(models.steps).where(models.steps.c.id.in_(gone)))
        for position, step in fresh:
            await insert_steps(conn, roadmap_id, [step], start=position)
        await recount(conn, roadmap_id)
        roadmap = await load(conn, roadmap_id)
    assert roadmap is not None
    return roadmap


async def remove(database: Database, roadmap_id: str, owner_id: str) -> None:
    async with database.writing() as conn:
        row = await owned_for_update(conn, roadmap_id, owner_id)
        if row["visibility"] == "public":
            await conn.execute(
                update(models.profiles)
                .where(models.profiles.c.user_id == owner_id)
                .values(public_roadmaps=models.profiles.c.public_roadmaps - 1)
            )
        await conn.execute(delete(models.roadmaps).where(models.roadmaps.c.id == roadmap_id))
