"""The generation job: turn a queued roadmap's goal (and syllabus) into steps.

``start`` records the roadmap and queues its job in one transaction, so a roadmap in
``generating`` always has a job that will finish it. The job reports progress on the row (the
SSE stream reads it), and ends by filling the roadmap, once, or failing it with a reason a
person can act on. A provider that is down is retried with backoff; the job's last attempt
fails the roadmap instead of leaving it generating forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from keel.core import html, idempotency, sqlsniff
from keel.core.clock import Clock
from keel.core.idempotency import Outcome
from keel.core.jobs import Job, JobQueue, RetryLater
from keel.core.logging import get_logger
from keel.core.replicated import Database
from keel.roadmaps import generation, library, models
from keel.roadmaps.live import ProgressBus
from keel.roadmaps.syllabus import SyllabusText

log = get_logger("keel.roadmaps.generating")

KIND = "generate"
MAX_ATTEMPTS = 4
MAX_SYLLABUS_CHARS = 50_000


@dataclass(frozen=True)
class Source:
    """What a roadmap is generated from: the goal, and the syllabus text when one was given
    (a page's or a PDF's text, extracted before queueing)."""

    goal: str
    kind: library.SourceKind
    ref: str | None = None
    syllabus: str | None = None
    level: str | None = None
    hours_per_week: int | None = None


def goal_from(text: SyllabusText, fallback: str) -> str:
    """What a syllabus is about, for the roadmap's goal: its first line, else ``fallback``."""
    for line in text.text.splitlines():
        line = line.lstrip("- ").strip()
        if len(line) >= 3:
            return line[:200]
    return fallback


def from_syllabus(
    text: SyllabusText,
    *,
    goal: str = "",
    level: str | None = None,
    hours_per_week: int | None = None,
) -> Source:
    """A source for a fetched page or an uploaded PDF; the person's own goal wins when given."""
    return Source(
        goal=goal.strip() or goal_from(text, text.source),
        kind="pdf" if text.kind == "pdf" else "url",
        ref=text.source[:2048],
        syllabus=text.text,
        level=level,
        hours_per_week=hours_per_week,
    )


def title_from(goal: str) -> str:
    """A provisional title (generation replaces it): the goal on one line, shortened."""
    text = " ".join(goal.split())
    return text[:80] + ("…" if len(text) > 80 else "")


@dataclass(frozen=True)
class Started:
    roadmap: library.Roadmap
    replayed: bool  # an earlier request with the same idempotency key created it


async def start(
    database: Database,
    queue: JobQueue,
    *,
    owner_id: str,
    source: Source,
    now: datetime,
    idempotency_key: str | None = None,
    wake: Callable[[], None] | None = None,
) -> Started:
    """Record the roadmap and queue its job in one transaction. With ``idempotency_key`` a
    retried request (after a 503, a timeout, a dropped reply) gets the roadmap the first one
    created, whether or not the client heard about it, and nothing is created twice."""
    # Logged when it looks like an attack, never refused: "SQL SELECT basics" is a topic.
    sqlsniff.sniff(source.goal, field="roadmaps.goal")

    async def create(conn: AsyncConnection) -> Outcome:
        roadmap = await library.create(
            conn,
            owner_id=owner_id,
            title=title_from(source.goal),
            goal=source.goal,
            source_kind=source.kind,
            source_ref=source.ref,
            now=now,
        )
        await queue.enqueue(
            AsyncSession(bind=conn),
            KIND,
            {
                "roadmap_id": roadmap.id,
                "syllabus": (source.syllabus or "")[:MAX_SYLLABUS_CHARS] or None,
                "level": source.level,
                "hours_per_week": source.hours_per_week,
            },
            max_attempts=MAX_ATTEMPTS,
            dedupe_key=f"generate:{roadmap.id}",
        )
        return Outcome(status=202, body={"roadmap_id": roadmap.id})

    async with database.writing() as conn:
        if idempotency_key is None:
            outcome = await create(conn)
        else:
            key = idempotency.key_for(f"roadmaps.generate:{owner_id}", idempotency_key)
            outcome = await idempotency.run_once(conn, models.idempotency, key, create, now=now)
        roadmap = await library.load(conn, str(outcome.body["roadmap_id"]))
    if roadmap is None:  # replayed, and deleted since: say so rather than create another
        raise library.RoadmapNotFound("the roadmap this request created was deleted")
    if wake is not None and not outcome.replayed:
        wake()
    return Started(roadmap, outcome.replayed)


class GenerationJob:
    """The handler the worker runs for ``generate`` jobs."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        generator: generation.Generator,
        bus: ProgressBus,
        *,
        on_ready: Callable[[library.Roadmap], Awaitable[None]] | None = None,
        on_failed: Callable[[library.Roadmap], Awaitable[None]] | None = None,
        pace_s: float = 0.0,
    ) -> None:
        self.database = database
        self.clock = clock
        self.generator = generator
        self.bus = bus
        self.on_ready = on_ready
        self.on_failed = on_failed
        self.pace_s = pace_s

    async def __call__(self, job: Job) -> None:
        roadmap_id = str(job.payload["roadmap_id"])
        async with self.database.reading() as conn:
            roadmap = await library.load(conn, roadmap_id)
        if roadmap is None or roadmap.status != library.GENERATING:
            return  # deleted meanwhile, or finished by an earlier run of this job
        request = generation.GenerationRequest(
            goal=roadmap.goal,
            syllabus=job.payload.get("syllabus"),
            level=job.payload.get("level"),
            hours_per_week=job.payload.get("hours_per_week"),
        )

        async def progress(update: generation.Progress) -> None:
            await library.report_progress(
                self.database, roadmap_id, update.percent, update.stage, self.clock.now()
            )
            self.bus.publish(roadmap_id)
            if self.pace_s:
                await asyncio.sleep(self.pace_s)

        try:
            draft = await self.generator.generate(request, progress)
        except generation.ProviderUnavailable as exc:
            if job.attempts >= job.max_attempts:
                await self._fail(roadmap, "The generator is unavailable; try again later.")
                return
            raise RetryLater(timedelta(seconds=5 * 2**job.attempts), str(exc)) from exc
        except generation.GenerationError as exc:
            await self._fail(roadmap, str(exc))
            return
        steps = [
            library.StepInput(
                title=step.title,
                description=html.rich_text(step.description),
                hours=step.hours,
                resources=tuple(
                    library.Resource(r.title, str(r.url), r.kind) for r in step.resources
                ),
            )
            for step in draft.steps
        ]
        filled = await library.fill(
            self.database,
            roadmap_id,
            title=draft.title,
            steps=steps,
            provider=draft.provider,
            model=draft.model,
            now=self.clock.now(),
        )
        if filled and self.on_ready is not None:
            # Before the stream hears "ready": what readiness brings (a referral's reward) is
            # in place by the time the page reloads.
            await self.on_ready(roadmap)
        self.bus.publish(roadmap_id)

    async def _fail(self, roadmap: library.Roadmap, reason: str) -> None:
        await library.fail(self.database, roadmap.id, reason, self.clock.now())
        self.bus.publish(roadmap.id)
        if self.on_failed is not None:
            await self.on_failed(roadmap)
