"""/discover, precomputed: featured, trending (30 days), highest rated, top creators and
recently added public roadmaps, computed by a periodic job and served from the stored result.

The original ran its six queries on every cache miss with no lock, and kept the result for
exactly its refresh interval, so every expiry was a stampede. Here:

* a refresh runs under a lease held in the database (one process refreshes; the others keep
  serving the previous result: stale-while-revalidate);
* a result is served while younger than ``ttl`` (at least twice the refresh interval), so a
  late or failed refresh never empties the page;
* only when there is no usable result at all (first start, or the job stopped for longer than
  the TTL) does a request compute it, once per process (a shared in-flight task), the others
  awaiting the same result.

A request costs no query when this process holds a fresh copy, and one primary-key read when
another process refreshed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db
from keel.core.clock import Clock
from keel.core.logging import get_logger
from keel.core.replicated import Database
from keel.roadmaps import models

log = get_logger("keel.roadmaps.discover")

SNAPSHOT_KEY = "discover:v1"
LOCK_KEY = "discover:lock"
TRENDING_DAYS = 30
MIN_RATINGS = 3
MIN_RATING = 3.5


@dataclass(frozen=True)
class Card:
    id: str
    title: str
    owner_handle: str
    owner_name: str
    steps: int
    hours: str
    rating: str | None
    rating_count: int
    clones: int
    views: int
    published_at: str


@dataclass(frozen=True)
class Creator:
    handle: str
    name: str
    followers: int
    public_roadmaps: int


@dataclass(frozen=True)
class DiscoverPage:
    featured: tuple[Card, ...]
    trending: tuple[Card, ...]
    highest_rated: tuple[Card, ...]
    top_creators: tuple[Creator, ...]
    recently_added: tuple[Card, ...]
    public_count: int
    computed_at: datetime

    @functools.cached_property
    def encoded(self) -> bytes:
        """The JSON body, encoded once per computation (every request sends the same)."""
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        def cards(items: tuple[Card, ...]) -> list[dict[str, Any]]:
            return [card.__dict__ for card in items]

        return {
            "featured": cards(self.featured),
            "trending": cards(self.trending),
            "highest_rated": cards(self.highest_rated),
            "top_creators": [c.__dict__ for c in self.top_creators],
            "recently_added": cards(self.recently_added),
            "public_count": self.public_count,
            "computed_at": self.computed_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DiscoverPage:
        def cards(key: str) -> tuple[Card, ...]:
            return tuple(Card(**item) for item in data[key])

        return cls(
            featured=cards("featured"),
            trending=cards("trending"),
            highest_rated=cards("highest_rated"),
            top_creators=tuple(Creator(**c) for c in data["top_creators"]),
            recently_added=cards("recently_added"),
            public_count=int(data["public_count"]),
            computed_at=datetime.fromisoformat(data["computed_at"]),
        )


async def compute(database: Database, now: datetime) -> DiscoverPage:
    """Run the queries: what every request used to cost."""
    r, p, u = models.roadmaps.c, models.profiles.c, models.users.c
    base = (
        select(
            r.id,
            r.title,
            r.rating_sum,
            r.rating_count,
            r.clone_count,
            r.view_count,
            r.published_at,
            p.handle,
            u.display_name,
            r.step_count,
            r.total_hours,
        )
        .join(models.users, u.id == r.owner_id)
        .join(models.profiles, p.user_id == r.owner_id)
        .where(r.visibility == "public", r.status == "ready")
    )
    popularity = r.clone_count * 5 + r.rating_count * 3 + r.view_count
    since = now - timedelta(days=TRENDING_DAYS)
    async with database.reading() as conn:
        featured = await _cards(
            conn, base.where(r.rating_count >= 1).order_by(popularity.desc(), r.id).limit(6)
        )
        trending = await _cards(
            conn, base.where(r.published_at >= since).order_by(popularity.desc(), r.id).limit(10)
        )
        highest = await _cards(
            conn,
            base.where(
                r.rating_count >= MIN_RATINGS,
                r.rating_sum >= r.rating_count * MIN_RATING,
            )
            .order_by((r.rating_sum * 1.0 / r.rating_count).desc(), r.rating_count.desc(), r.id)
            .limit(10),
        )
        creators = (
            (
                await conn.execute(
                    select(p.handle, u.display_name, p.followers, p.public_roadmaps)
                    .join(models.users, u.id == p.user_id)
                    .where(or_(p.followers > 0, p.public_roadmaps > 0))
                    .order_by(p.followers.desc(), p.public_roadmaps.desc(), p.handle)
                    .limit(10)
                )
            )
            .mappings()
            .all()
        )
        recent = await _cards(conn, base.order_by(r.published_at.desc(), r.id).limit(12))
        count = (
            await conn.execute(
                select(func.count()).where(and_(r.visibility == "public", r.status == "ready"))
            )
        ).scalar_one()
    return DiscoverPage(
        featured=featured,
        trending=trending,
        highest_rated=highest,
        top_creators=tuple(
            Creator(c["handle"], c["display_name"], c["followers"], c["public_roadmaps"])
            for c in creators
        ),
        recently_added=recent,
        public_count=int(count),
        computed_at=now,
    )


async def _cards(conn: AsyncConnection, query: Any) -> tuple[Card, ...]:
    rows = (await conn.execute(query)).mappings().all()
    return tuple(
        Card(
            id=row["id"],
            title=row["title"],
            owner_handle=row["handle"],
            owner_name=row["display_name"],
            steps=int(row["step_count"]),
            hours=str(row["total_hours"]),
            rating=(
                f"{row['rating_sum'] / row['rating_count']:.1f}" if row["rating_count"] else None
            ),
            rating_count=row["rating_count"],
            clones=row["clone_count"],
            views=row["view_count"],
            published_at=row["published_at"].isoformat() if row["published_at"] else "",
        )
        for row in rows
    )


class Discover:
    """The precomputed page for one process: refresh on a schedule, serve what is stored."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        *,
        interval: timedelta = timedelta(minutes=5),
        ttl: timedelta | None = None,
        precompute: bool = True,
    ) -> None:
        self.database = database
        # Off: every request runs the queries (the original's cold path; the benchmark's
        # baseline).
        self.precompute = precompute
        self.clock = clock
        self.interval = interval
        self.ttl = ttl if ttl is not None else interval * 2
        if self.ttl < interval * 2:
            raise ValueError("the TTL must be at least twice the refresh interval")
        self._copy: DiscoverPage | None = None
        self._inflight: asyncio.Task[DiscoverPage] | None = None
        self._revalidating: asyncio.Task[None] | None = None
        self._checked_at = datetime.min.replace(tzinfo=UTC)
        self._holder = uuid.uuid4().hex

    def _fresh(self, page: DiscoverPage | None, within: timedelta) -> bool:
        return page is not None and self.clock.now() - page.computed_at < within

    async def page(self) -> DiscoverPage:
        """What /discover shows. No query while this process's copy is younger than the
        refresh interval; past it, one read (another process may have refreshed) and, when the
        stored result is stale too, a background refresh under the lease while the stale
        result is served; a computation in the request only when nothing younger than the TTL
        exists anywhere."""
        if not self.precompute:
            return await compute(self.database, self.clock.now())
        if self._fresh(self._copy, self.interval):
            assert self._copy is not None
            return self._copy
        now = self.clock.now()
        if self._fresh(self._copy, self.ttl) and now - self._checked_at < self.interval / 10:
            assert self._copy is not None
            return self._copy  # stale, but the store was read moments ago
        stored = await self._load()
        self._checked_at = now
        if stored is not None and (
            self._copy is None or stored.computed_at > self._copy.computed_at
        ):
            self._copy = stored
        if self._fresh(self._copy, self.ttl):
            assert self._copy is not None
            if self._revalidating is None or self._revalidating.done():
                self._revalidating = asyncio.create_task(self._revalidate())
            return self._copy
        return await self._singleflight()

    async def _revalidate(self) -> None:
        try:
            await self.refresh()
        except Exception:
            log.warning("discover_revalidate_failed", exc_info=True)

    async def revalidated(self) -> None:
        """Wait for a background revalidation started by :meth:`page`, if any."""
        if self._revalidating is not None:
            await self._revalidating

    async def _singleflight(self) -> DiscoverPage:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._compute_and_store())
        return await asyncio.shield(self._inflight)

    async def refresh(self) -> bool:
        """The periodic job: recompute under the lease, or leave it to the process holding it.
        True when this process refreshed."""
        if not await self._take_lease():
            return False
        try:
            await self._singleflight()
        finally:
            with contextlib.suppress(Exception):
                await self._release_lease()
        return True

    async def _compute_and_store(self) -> DiscoverPage:
        page = await compute(self.database, self.clock.now())
        try:
            async with self.database.writing() as conn:
                row = db.insert(conn, models.discover_snapshots).values(
                    key=SNAPSHOT_KEY, payload=page.to_json(), computed_at=page.computed_at
                )
                await conn.execute(
                    row.on_conflict_do_update(
                        index_elements=["key"],
                        set_={"payload": page.to_json(), "computed_at": page.computed_at},
                    )
                )
        except Exception:
            # Serving the page matters more than sharing it (the primary may be down: the
            # replica still answers the queries).
            log.warning("discover_store_failed", exc_info=True)
        self._copy = page
        return page

    async def _load(self) -> DiscoverPage | None:
        async with self.database.reading() as conn:
            row = (
                (
                    await conn.execute(
                        select(models.discover_snapshots.c.payload).where(
                            models.discover_snapshots.c.key == SNAPSHOT_KEY
                        )
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return None
        try:
            return DiscoverPage.from_json(row["payload"])
        except (KeyError, TypeError, ValueError):
            log.warning("discover_snapshot_unreadable")
            return None

    async def _take_lease(self) -> bool:
        """A lease row (``payload.holder``, ``computed_at`` = expiry) taken only when free or
        expired; the refresh must finish within one interval or another process may start."""
        now = self.clock.now()
        expires = now + self.interval
        payload = {"holder": self._holder}
        async with self.database.writing() as conn:
            row = db.insert(conn, models.discover_snapshots).values(
                key=LOCK_KEY, payload=payload, computed_at=expires
            )
            taken = await conn.execute(
                row.on_conflict_do_update(
                    index_elements=["key"],
                    set_={"payload": payload, "computed_at": expires},
                    where=models.discover_snapshots.c.computed_at <= now,
                )
            )
            return taken.rowcount == 1

    async def _release_lease(self) -> None:
        async with self.database.writing() as conn:
            await conn.execute(
                update(models.discover_snapshots)
                .where(
                    models.discover_snapshots.c.key == LOCK_KEY,
                    models.discover_snapshots.c.payload["holder"].as_string() == self._holder,
                )
                .values(computed_at=self.clock.now())
            )
