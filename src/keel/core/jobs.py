"""A durable job/outbox table claimed with leases.

Jobs are inserted in the caller's transaction, beside the state change that causes them, so a
job exists exactly when its cause committed. Workers claim a batch by setting a lease
(``locked_until``); a worker that dies simply lets its lease lapse and another worker claims the
job again. Every claim bumps ``attempts``, which doubles as a fencing token: a worker whose lease
lapsed cannot complete a job someone else now holds. On PostgreSQL claims use
``FOR UPDATE SKIP LOCKED`` so many workers never wait on each other; SQLite has one writer and
``BEGIN IMMEDIATE`` (see :mod:`keel.core.db`) makes the claim atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    case,
    event,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.core.clock import Clock
from keel.core.logging import get_logger
from keel.core.types import UTCDateTime

log = get_logger("keel.jobs")

QUEUED, RUNNING, DONE, DEAD = "queued", "running", "done", "dead"

JOBS_CLAIMED = Counter("keel_jobs_claimed_total", "Jobs claimed", ["queue", "kind"])
JOBS_FINISHED = Counter("keel_jobs_finished_total", "Jobs finished", ["queue", "kind", "outcome"])
JOBS_READY = Gauge("keel_jobs_ready", "Jobs ready to run (sampled)", ["queue"])


def jobs_table(metadata: MetaData, name: str) -> Table:
    """The job table for one product (each product owns its data)."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("kind", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("max_attempts", Integer, nullable=False),
        Column("run_after", UTCDateTime, nullable=False),
        Column("locked_until", UTCDateTime, nullable=True),
        Column("locked_by", String(128), nullable=True),
        Column("last_error", Text, nullable=True),
        Column("dedupe_key", String(200), nullable=True, unique=True),
        Column("created_at", UTCDateTime, nullable=False),
        Column("finished_at", UTCDateTime, nullable=True),
        Index(f"ix_{name}_claim", "status", "run_after"),
    )


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int


class RetryLater(Exception):
    """Raised by a handler: run the job again after ``delay``. Like any failure it spends an
    attempt: once the job has had ``max_attempts`` it is buried instead (a job that must never
    give up says so with a large ``max_attempts`` when it is enqueued)."""

    def __init__(self, delay: timedelta, reason: str) -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class GiveUp(Exception):
    """Raised by a handler: the job can never succeed (a refused destination, a vanished
    object); bury it now, whatever attempts are left."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Handler = Callable[[Job], Awaitable[None]]


def default_backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 5 * 2 ** max(0, attempts - 1)))


class JobQueue:
    """Enqueue, claim, finish. One instance per product table."""

    def __init__(
        self, table: Table, sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self.table = table
        self.sessions = sessions
        self.clock = clock
        self.name = table.name
        # Running workers of this process, woken when a transaction that enqueued commits.
        self._listeners: set[Callable[[], None]] = set()

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` after each commit that enqueued a job here; returns the undo."""
        self._listeners.add(wake)
        return lambda: self._listeners.discard(wake)

    def _wake_listeners(self, _session: object) -> None:
        for wake in list(self._listeners):
            wake()

    async def enqueue(
        self,
        session: AsyncSession,
        kind: str,
        payload: Mapping[str, Any],
        *,
        run_after: datetime | None = None,
        dedupe_key: str | None = None,
        max_attempts: int = 10,
    ) -> None:
        """Add a job inside the caller's transaction (commits or rolls back with it); once it
        commits, this process's running workers look for it at once instead of at their next
        poll."""
        now = self.clock.now()
        if self._listeners:
            event.listen(session.sync_session, "after_commit", self._wake_listeners, once=True)
        await session.execute(
            self.table.insert().values(
                kind=kind,
                payload=dict(payload),
                status=QUEUED,
                attempts=0,
                max_attempts=max_attempts,
                run_after=run_after or now,
                dedupe_key=dedupe_key,
                created_at=now,
            )
        )

    async def claim(
        self,
        worker_id: str,
        *,
        lease: timedelta,
        limit: int = 10,
        kinds: Sequence[str] | None = None,
        leases: Mapping[str, timedelta] | None = None,
    ) -> list[Job]:
        """Lease up to ``limit`` ready jobs (including ones whose lease lapsed), oldest first
        whatever their kind; ``leases`` overrides ``lease`` per kind."""
        t = self.table
        now = self.clock.now()
        locked_until: Any = literal(now + lease, UTCDateTime())
        if leases:
            locked_until = case(
                *(
                    (t.c.kind == kind, literal(now + own, UTCDateTime()))
                    for kind, own in leases.items()
                ),
                else_=locked_until,
            )
        ready = or_(
            and_(t.c.status == QUEUED, t.c.run_after <= now),
            and_(t.c.status == RUNNING, t.c.locked_until < now),
        )
        if kinds is not None:
            ready = and_(ready, t.c.kind.in_(list(kinds)))
        pick = (
            select(t.c.id)
            .where(ready)
            .order_by(t.c.run_after, t.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.sessions() as session, session.begin():
            ids = list((await session.execute(pick)).scalars())
            if not ids:
                return []
            rows = await session.execute(
                update(t)
                .where(t.c.id.in_(ids), ready)
                .values(
                    status=RUNNING,
                    attempts=t.c.attempts + 1,
                    locked_until=locked_until,
                    locked_by=worker_id,
                )
                .returning(t.c.id, t.c.kind, t.c.payload, t.c.attempts, t.c.max_attempts)
            )
            jobs = [Job(r.id, r.kind, dict(r.payload), r.attempts, r.max_attempts) for r in rows]
        for job in jobs:
            JOBS_CLAIMED.labels(self.name, job.kind).inc()
        return jobs

    def _held(self, job: Job) -> Any:
        t = self.table
        return and_(t.c.id == job.id, t.c.status == RUNNING, t.c.attempts == job.attempts)

    async def complete(self, job: Job) -> bool:
        """Mark done; False if the lease was lost to another worker meanwhile."""
        return await self._finish(job, DONE, None, "done")

    async def bury(self, job: Job, error: str) -> bool:
        """Give up on the job (dead letter); it stays in the table for inspection."""
        return await self._finish(job, DEAD, error, "dead")

    async def retry(self, job: Job, delay: timedelta, error: str) -> bool:
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(self.table)
                .where(self._held(job))
                .values(
                    status=QUEUED,
                    run_after=self.clock.now() + delay,
                    locked_until=None,
                    locked_by=None,
                    last_error=error[:2000],
                )
            )
        JOBS_FINISHED.labels(self.name, job.kind, "retry").inc()
        return bool(getattr(result, "rowcount", 0))

    async def _finish(self, job: Job, status: str, error: str | None, outcome: str) -> bool:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(self.table)
                .where(self._held(job))
                .values(status=status, finished_at=now, locked_until=None, last_error=error)
            )
        JOBS_FINISHED.labels(self.name, job.kind, outcome).inc()
        return bool(getattr(result, "rowcount", 0))

    async def count_ready(self) -> int:
        t = self.table
        async with self.sessions() as session:
            total = await session.scalar(
                select(func.count()).where(t.c.status == QUEUED, t.c.run_after <= self.clock.now())
            )
        JOBS_READY.labels(self.name).set(total or 0)
        return int(total or 0)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Periodic:
    """A task a worker runs every ``interval`` (expiry sweeps, chain polling)."""

    name: str
    interval: timedelta
    run: Callable[[], Awaitable[None]]


async def run_periodic(task: Periodic, stop: asyncio.Event) -> None:
    """Run ``task`` every ``interval`` until ``stop`` is set; a run that fails is logged and
    the next one comes on time (outside a :class:`Worker` too: a product's own loops)."""
    while not stop.is_set():
        try:
            await task.run()
        except Exception:
            log.exception("periodic_task_failed", task=task.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=task.interval.total_seconds())


class Worker:
    """Runs handlers for claimed jobs and periodic tasks until ``stop`` is set.

    ``lease`` is how long a claimed job stays invisible to other workers; ``leases`` overrides
    it per kind. A crashed worker's jobs come back once their lease lapses, so a kind whose
    handler is short and bounded (an HTTP call with a timeout) should get a short lease; it
    must still outlast the handler, or a live worker's job is claimed twice.
    """

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        periodic: Sequence[Periodic] = (),
        lease: timedelta = timedelta(seconds=60),
        leases: Mapping[str, timedelta] | None = None,
        poll_interval: float = 0.5,
        concurrency: int = 4,
        worker_id: str | None = None,
    ) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.periodic = list(periodic)
        self.lease = lease
        self.leases = {kind: (leases or {}).get(kind, lease) for kind in self.handlers}
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.worker_id = worker_id or new_worker_id()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Poll now instead of after the interval (called when a job was enqueued in-process)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(run_periodic(p, stop)) for p in self.periodic]
        unlisten = self.queue.listen(self.wake)
        try:
            while not stop.is_set():
                try:
                    worked = await self.run_once()
                except Exception:
                    log.exception("worker_poll_failed", queue=self.queue.name)
                    worked = 0
                if worked:
                    continue
                self._wake.clear()
                waits: list[asyncio.Task[Any]] = [
                    asyncio.create_task(stop.wait()),
                    asyncio.create_task(self._wake.wait()),
                ]
                _done, pending = await asyncio.wait(
                    waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        finally:
            unlisten()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim one batch and run it; returns how many jobs ran."""
        jobs = await self.queue.claim(
            self.worker_id,
            lease=self.lease,
            leases=self.leases,
            limit=self.concurrency,
            kinds=list(self.handlers),
        )
        await asyncio.gather(*(self._run_job(job) for job in jobs))
        return len(jobs)

    async def drain(self, max_rounds: int = 100) -> int:
        """Run jobs until none is ready (tests and CLI one-shots)."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_once()
            if not ran:
                break
            total += ran
        return total

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers[job.kind]
        try:
            await handler(job)
        except GiveUp as signal:
            await self.queue.bury(job, signal.reason)
            return
        except RetryLater as signal:
            await self._again(job, signal.delay, signal.reason)
            return
        except Exception as exc:
            log.exception("job_failed", kind=job.kind, job_id=job.id, attempts=job.attempts)
            reason = f"{type(exc).__name__}: {exc}"
            await self._again(job, default_backoff(job.attempts), reason)
            return
        await self.queue.complete(job)

    async def _again(self, job: Job, delay: timedelta, reason: str) -> None:
        """Retry after ``delay``, or bury once the job has spent its attempts."""
        if job.attempts >= job.max_attempts:
            log.warning("job_buried", kind=job.kind, job_id=job.id, attempts=job.attempts)
            await self.queue.bury(job, f"{reason} (after {job.attempts} attempts)")
        else:
            await self.queue.retry(job, delay, reason)
