"""Wire roadmaps once: the database (migrated), the server secret, the clock, accounts."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core import crypto, db, idempotency, migrations
from keel.core.cache import Cache, open_cache
from keel.core.clock import Clock, SystemClock
from keel.core.errors import Unavailable
from keel.core.identity import Accounts, FileMailer, IdentityTables, LoginLimits, Mailer, SmtpMailer
from keel.core.jobs import JobQueue, Periodic, Worker
from keel.core.loadshed import LoadShedder
from keel.core.logging import get_logger
from keel.core.ratelimit import RateLimiter, SqlRateLimiter
from keel.core.replicated import Database
from keel.roadmaps import (
    community,
    generating,
    generation,
    library,
    models,
    progress,
    referrals,
    usage,
)
from keel.roadmaps.billing.entitlements import Entitlement, entitlement
from keel.roadmaps.billing.lemonsqueezy import LemonSqueezyApi
from keel.roadmaps.billing.plans import GracePeriods, Plans
from keel.roadmaps.discover import Discover
from keel.roadmaps.generating import GenerationJob
from keel.roadmaps.generation.topics import load_catalogue
from keel.roadmaps.live import ProgressBus
from keel.roadmaps.settings import RoadmapsSettings

log = get_logger("keel.roadmaps")

MIGRATIONS = "keel.roadmaps:migrations"
VERSION_TABLE = "roadmaps_alembic_version"
SERVER_KEY_FILE = "roadmaps-server.key"
GENERATE = "generate"  # the usage action a generation takes
DASHBOARD_TTL = timedelta(seconds=60)
IDEMPOTENCY_TTL = timedelta(days=1)


def _dashboard_key(user_id: str, generation: int) -> str:
    return f"roadmaps:dashboard:v2:{user_id}:{generation}"


def _dashboard_generation_key(user_id: str) -> str:
    return f"roadmaps:dashboard-generation:v2:{user_id}"


# The generation counter outlives every view stored under it by far (views live a minute).
DASHBOARD_GENERATION_TTL = timedelta(days=1)


def database_url(configured: str, data_dir: str = "var") -> str:
    return configured or f"sqlite+aiosqlite:///{data_dir}/roadmaps.db"


async def open_database(url: str, *, statement_timeout_ms: int = 0) -> AsyncEngine:
    """An engine on ``url`` with the schema migrated to head. The migrations run on an engine of
    their own, without the statement timeout: a migration may rightly outlast any request."""
    migrating = db.create_engine(url, pool_size=1)
    try:
        await migrations.upgrade(migrating, MIGRATIONS, VERSION_TABLE)
    finally:
        await migrating.dispose()
    return db.create_engine(url, statement_timeout_ms=statement_timeout_ms)


def open_replicated(settings: RoadmapsSettings, primary: AsyncEngine) -> Database:
    """The primary with the streaming replica, when one is configured."""
    replica = (
        db.create_engine(settings.replica_url, statement_timeout_ms=settings.statement_timeout_ms)
        if settings.replica_url
        else None
    )
    return Database(primary, replica, name="roadmaps")


def server_secret(settings: RoadmapsSettings, data_dir: str) -> bytes:
    if settings.server_secret is not None:
        return crypto.parse_key(settings.server_secret.get_secret_value())
    return crypto.parse_key(crypto.shared_key_file(Path(data_dir) / SERVER_KEY_FILE))


@dataclass
class Roadmaps:
    """What the app, the workers and the CLI work with."""

    settings: RoadmapsSettings
    database: Database
    secret: bytes
    clock: Clock
    accounts: Accounts
    queue: JobQueue
    generator: generation.Generator
    bus: ProgressBus
    discover: Discover
    shedder: LoadShedder
    plans: Plans
    grace: GracePeriods
    http: httpx.AsyncClient
    cache: Cache
    limiter: RateLimiter
    billing_source: LemonSqueezyApi | None = None
    worker: Worker | None = None

    async def plan_of(self, user_id: str) -> Entitlement:
        return await entitlement(
            self.database,
            self.plans,
            self.grace,
            user_id=user_id,
            now=self.clock.now(),
            source=self.billing_source,
        )

    async def usage_check(self, user_id: str) -> None:
        """Take one of today's generations, or refuse with 429 past the plan's limit."""
        held = await self.plan_of(user_id)
        await usage.consume(
            self.database,
            self.plans,
            user_id=user_id,
            action=GENERATE,
            plan=held.plan,
            now=self.clock.now(),
        )

    async def generate(
        self, user_id: str, source: generating.Source, idempotency_key: str | None = None
    ) -> generating.Started:
        """Take one of today's generations and start one; a replayed request gives its use
        back (the first request paid for the roadmap)."""
        await self.usage_check(user_id)
        now = self.clock.now()
        try:
            started = await generating.start(
                self.database,
                self.queue,
                owner_id=user_id,
                source=source,
                now=now,
                idempotency_key=idempotency_key,
                wake=self.wake_workers,
            )
        except Exception:
            await self._give_back(user_id, now)
            raise
        if started.replayed:
            await self._give_back(user_id, now)
        await self.invalidate_user(user_id)
        return started

    async def _give_back(self, user_id: str, day_of: datetime) -> None:
        with contextlib.suppress(Exception):  # the primary may be what failed
            await usage.release(
                self.database, user_id=user_id, action=GENERATE, day=usage.utc_day(day_of)
            )

    async def referred(self, user_id: str, code: str) -> None:
        """A new account signed up with ``code`` (already checked): a pending referral. A code
        that stopped working since the check (a race) loses the referral, not the account."""
        try:
            await referrals.record_signup(
                self.database, referred_id=user_id, code=code, now=self.clock.now()
            )
        except referrals.ReferralError as exc:
            log.warning("referral_not_recorded", user_id=user_id, reason=exc.code)

    async def _generated(self, roadmap: library.Roadmap) -> None:
        # A first roadmap is what completes a referral (a no-op for everyone else).
        await referrals.complete(self.database, referred_id=roadmap.owner_id, now=self.clock.now())
        await self.invalidate_user(roadmap.owner_id)

    async def _failed(self, roadmap: library.Roadmap) -> None:
        # A generation that failed does not count against the day's limit.
        await self._give_back(roadmap.owner_id, roadmap.created_at)
        await self.invalidate_user(roadmap.owner_id)

    async def published(self, user_id: str) -> None:
        """A roadmap went public or private: refresh /discover now (under its lease, so
        many publishes at once cost one computation) rather than at the next interval."""
        await self.invalidate_user(user_id)
        try:
            await self.discover.refresh()
        except Exception:
            log.warning("discover_refresh_after_publish_failed", exc_info=True)

    async def invalidate_user(self, user_id: str) -> None:
        """Retire the user's cached dashboard (in the shared cache: every process sees it).

        A delete would race a reader that read the database before the write and stores its
        view after the delete: stale for a minute. Views are kept under the user's
        generation instead, read before the database; a write moves the generation on after
        it commits, so a view computed before it is stored where nobody looks any more.
        The counter is atomic and survives a Redis failover (keel.core.cache)."""
        await self.cache.incr(
            _dashboard_generation_key(user_id),
            ttl_seconds=DASHBOARD_GENERATION_TTL.total_seconds(),
        )

    async def dashboard(self, user_id: str) -> dict[str, Any]:
        """What the dashboard shows, as JSON-able values, cached per user for a minute in the
        shared cache and dropped on every write that changes it."""
        generation = await self.cache.incr(
            _dashboard_generation_key(user_id),
            ttl_seconds=DASHBOARD_GENERATION_TTL.total_seconds(),
            amount=0,  # read it (before the database)
        )
        key = _dashboard_key(user_id, generation)
        cached = await self.cache.get_json(key)
        if isinstance(cached, dict):
            return cached
        now = self.clock.now()
        roadmaps = await library.owned_by(self.database, user_id)
        done = await progress.done_counts(self.database, user_id, [r.id for r in roadmaps])
        seen = await progress.activity(self.database, user_id, now.date())
        view = {
            "roadmaps": [
                {
                    "id": r.id,
                    "title": r.title,
                    "status": r.status,
                    "progress": r.progress,
                    "step_count": r.step_count,
                    "total_hours": str(r.total_hours),
                    "public": r.public,
                    "done": done.get(r.id, 0),
                }
                for r in roadmaps
            ],
            "activity": {
                "current_streak": seen.current_streak,
                "longest_streak": seen.longest_streak,
                "total_steps_done": seen.total_steps_done,
                "total_hours": f"{seen.total_minutes / 60:.1f}",
                # Rows are weekdays, Monday first: the first column is padded to its weekday.
                "pad": seen.days[0].day.weekday(),
                "days": [
                    {
                        "day": d.day.isoformat(),
                        "level": d.level,
                        "steps": d.steps_done,
                        "minutes": d.minutes,
                    }
                    for d in seen.days
                ],
            },
            "referral_code": await self.referral_code(user_id),
        }
        if view["referral_code"] is not None:  # complete views only
            await self.cache.set_json(key, view, ttl_seconds=DASHBOARD_TTL.total_seconds())
        return view

    async def close(self) -> None:
        await self.http.aclose()
        await self.limiter.aclose()
        await self.cache.aclose()
        await self.database.dispose()

    def wake_workers(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def build_worker(self) -> Worker:
        """The in-process worker: generation jobs and the /discover refresh."""
        job = GenerationJob(
            self.database,
            self.clock,
            self.generator,
            self.bus,
            on_ready=self._generated,
            on_failed=self._failed,
            pace_s=self.settings.generation_pace_ms / 1000,
        )
        self.worker = Worker(
            self.queue,
            {generating.KIND: job},
            periodic=[
                Periodic(
                    "discover-refresh",
                    timedelta(seconds=self.settings.discover_interval_seconds),
                    self._refresh_discover,
                ),
                Periodic("idempotency-purge", timedelta(hours=1), self._purge_idempotency),
            ],
            leases={generating.KIND: timedelta(minutes=5)},
            concurrency=self.settings.generation_concurrency,
        )
        return self.worker

    async def _purge_idempotency(self) -> None:
        """Forget idempotency keys after a day: clients retry within minutes."""
        async with self.database.writing() as conn:
            await idempotency.purge(
                conn, models.idempotency, older_than=self.clock.now() - IDEMPOTENCY_TTL
            )

    async def _refresh_discover(self) -> None:
        await self.discover.refresh()

    async def count_view(self, roadmap_id: str) -> None:
        """One more view; skipped while the primary is down (the page is still a read)."""
        with contextlib.suppress(Unavailable):
            await community.count_view(self.database, roadmap_id)

    async def referral_code(self, user_id: str) -> str | None:
        """The user's code, made on first need; None while it cannot be made (the primary is
        down), so the pages showing it still answer from the replica."""
        try:
            return await referrals.get_or_create_code(
                self.database, user_id=user_id, now=self.clock.now()
            )
        except Unavailable:
            return None

    async def owner(self, user_id: str) -> community.Profile:
        """The public face of a roadmap's owner (their profile, created on first need)."""
        async with self.database.reading() as conn:
            name = (
                await conn.execute(
                    select(models.users.c.display_name).where(models.users.c.id == user_id)
                )
            ).scalar_one()
            handle = (
                await conn.execute(
                    select(models.profiles.c.handle).where(models.profiles.c.user_id == user_id)
                )
            ).scalar()
        if handle is None:
            async with self.database.writing() as conn:
                handle = await community.ensure_profile(conn, user_id, name)
        return await community.profile(self.database, str(handle))


def mailer(settings: RoadmapsSettings, data_dir: str) -> Mailer:
    if settings.mailer == "smtp":
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        return SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
        )
    return FileMailer(Path(data_dir) / "outbox" / "roadmaps", sender=settings.mail_from)


def open_accounts(
    settings: RoadmapsSettings, database: Database, secret: bytes, clock: Clock, data_dir: str
) -> Accounts:
    """Accounts on roadmaps' identity tables; failed logins counted in its own database, so
    every process sees them without Redis (low rate, security-relevant: SqlRateLimiter)."""
    limits = LoginLimits()
    limiter = SqlRateLimiter(
        models.rate_limits,
        db.session_factory(database.primary),
        clock,
        window_seconds=limits.window_seconds,
    )
    return Accounts(
        database,
        IdentityTables(users=models.users, sessions=models.sessions),
        prefix="roadmaps",
        server_secret=secret,
        clock=clock,
        mailer=mailer(settings, data_dir),
        limiter=limiter,
        limits=limits,
    )


async def open_roadmaps(
    settings: RoadmapsSettings,
    *,
    data_dir: str = "var",
    clock: Clock | None = None,
    shedder: LoadShedder | None = None,
) -> Roadmaps:
    engine = await open_database(
        database_url(settings.database_url, data_dir),
        statement_timeout_ms=settings.statement_timeout_ms,
    )
    database = open_replicated(settings, engine)
    secret = server_secret(settings, data_dir)
    clock = clock or SystemClock()
    # Parsing the catalogue takes most of a second: off the event loop, before any request.
    await asyncio.to_thread(load_catalogue)
    http = httpx.AsyncClient()
    cache = open_cache(
        name="roadmaps", primary_url=settings.redis_url, secondary_url=settings.redis_secondary_url
    )
    return Roadmaps(
        settings=settings,
        database=database,
        secret=secret,
        clock=clock,
        accounts=open_accounts(settings, database, secret, clock, data_dir),
        queue=JobQueue(models.jobs, db.session_factory(database.primary), clock),
        generator=generation.build_generator(settings, http),
        bus=ProgressBus(),
        discover=Discover(
            database,
            clock,
            interval=timedelta(seconds=settings.discover_interval_seconds),
            ttl=timedelta(seconds=settings.discover_ttl_seconds),
            precompute=settings.discover_precompute,
        ),
        shedder=shedder or LoadShedder("roadmaps"),
        plans=Plans.from_settings(settings),
        grace=GracePeriods.from_settings(settings),
        http=http,
        cache=cache,
        limiter=cache.rate_limiter(
            namespace="roadmaps", window_seconds=settings.rate_limit_window_seconds
        ),
        billing_source=LemonSqueezyApi.from_settings(settings, http),
    )
