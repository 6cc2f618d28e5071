"""Public roadmaps and the people who make them: publishing, ratings, clones, follows and the
public profile.

Every counter a public page shows (a roadmap's rating sum and count, clones, a profile's
followers) changes in the same transaction as the row that causes it, by an UPDATE that adds
to the stored value: concurrent ratings or follows never lose an increment.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db
from keel.core.errors import Conflict, NotFound, Unprocessable
from keel.core.replicated import Database
from keel.roadmaps import library, models

_HANDLE_CHARS = re.compile(r"[^a-z0-9_-]+")
HANDLE = re.compile(r"^[a-z0-9_-]{2,40}$")


class InvalidRating(Unprocessable):
    code = "invalid_rating"
    title = "A rating is 1 to 5 stars"


class CannotRateOwn(Conflict):
    code = "cannot_rate_own"
    title = "You cannot rate your own roadmap"


class CannotFollowSelf(Conflict):
    code = "cannot_follow_self"
    title = "You cannot follow yourself"


class ProfileNotFound(NotFound):
    code = "profile_not_found"
    title = "Profile not found"


@dataclass(frozen=True)
class Profile:
    user_id: str
    handle: str
    display_name: str
    bio: str
    followers: int
    following: int
    public_roadmaps: int


def handle_base(display_name: str) -> str:
    """A handle from a display name: ASCII letters and digits, '-' for the rest."""
    ascii_name = unicodedata.normalize("NFKD", display_name).encode("ascii", "ignore").decode()
    base = _HANDLE_CHARS.sub("-", ascii_name.lower()).strip("-_")[:30]
    return base if len(base) >= 2 else "learner"


async def ensure_profile(conn: AsyncConnection, user_id: str, display_name: str) -> str:
    """The user's handle, creating their profile on first use (inside the caller's
    transaction)."""
    existing = (
        await conn.execute(
            select(models.profiles.c.handle).where(models.profiles.c.user_id == user_id)
        )
    ).scalar()
    if existing is not None:
        return str(existing)
    base = handle_base(display_name)
    for attempt in range(8):
        handle = base if attempt == 0 else f"{base}-{secrets.token_hex(2)}"
        taken = (
            await conn.execute(
                select(models.profiles.c.user_id).where(models.profiles.c.handle == handle)
            )
        ).first()
        if taken is None:
            break
    else:  # pragma: no cover - eight 16-bit suffixes all taken
        handle = f"{base}-{secrets.token_hex(6)}"
    # Counts start from what exists: follows may predate the profile row.
    follows = models.follows.c
    followers = select(func.count()).where(follows.followee_id == user_id).scalar_subquery()
    following = select(func.count()).where(follows.follower_id == user_id).scalar_subquery()
    inserted = await conn.execute(
        db.insert(conn, models.profiles)
        .values(
            user_id=user_id,
            handle=handle,
            bio="",
            followers=followers,
            following=following,
            public_roadmaps=0,
        )
        .on_conflict_do_nothing()
    )
    if inserted.rowcount == 0:  # a concurrent request created it first
        again = await conn.execute(
            select(models.profiles.c.handle).where(models.profiles.c.user_id == user_id)
        )
        return str(again.scalar_one())
    return handle


async def profile(database: Database, handle: str) -> Profile:
    async with database.reading() as conn:
        row = (
            (
                await conn.execute(
                    select(models.profiles, models.users.c.display_name)
                    .join(models.users, models.users.c.id == models.profiles.c.user_id)
                    .where(models.profiles.c.handle == handle.lower())
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise ProfileNotFound(f"no profile @{handle}")
    return Profile(
        user_id=row["user_id"],
        handle=row["handle"],
        display_name=row["display_name"],
        bio=row["bio"],
        followers=row["followers"],
        following=row["following"],
        public_roadmaps=row["public_roadmaps"],
    )


async def public_roadmaps_of(database: Database, user_id: str) -> list[library.Roadmap]:
    return [r for r in await library.owned_by(database, user_id) if r.public]


async def set_visibility(
    database: Database, roadmap_id: str, owner_id: str, *, public: bool, now: datetime
) -> library.Roadmap:
    """Publish (or unpublish) a ready roadmap. Publishing twice changes nothing."""
    async with database.writing() as conn:
        row = await library.owned_for_update(conn, roadmap_id, owner_id)
        if row["status"] != library.READY:
            raise library.NotReady("only a ready roadmap can be published")
        was_public = row["visibility"] == "public"
        if was_public != public:
            await conn.execute(
                update(models.roadmaps)
                .where(models.roadmaps.c.id == roadmap_id)
                .values(
                    visibility="public" if public else "private",
                    published_at=(row["published_at"] or now) if public else row["published_at"],
                    updated_at=now,
                )
            )
            await conn.execute(
                update(models.profiles)
                .where(models.profiles.c.user_id == owner_id)
                .values(public_roadmaps=models.profiles.c.public_roadmaps + (1 if public else -1))
            )
        roadmap = await library.load(conn, roadmap_id)
    assert roadmap is not None
    return roadmap


async def rate(
    database: Database, roadmap_id: str, user_id: str, stars: int, now: datetime
) -> library.Roadmap:
    """Rate a public roadmap 1..5; rating again replaces the earlier rating."""
    if not 1 <= stars <= 5:
        raise InvalidRating("stars must be 1 to 5")
    async with database.writing() as conn:
        row = (
            (
                await conn.execute(
                    select(models.roadmaps.c.owner_id, models.roadmaps.c.visibility)
                    .where(models.roadmaps.c.id == roadmap_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None or row["visibility"] != "public":
            raise library.RoadmapNotFound(f"no public roadmap {roadmap_id!r}")
        if row["owner_id"] == user_id:
            raise CannotRateOwn("you cannot rate your own roadmap")
        before = (
            await conn.execute(
                select(models.ratings.c.stars).where(
                    models.ratings.c.user_id == user_id,
                    models.ratings.c.roadmap_id == roadmap_id,
                )
            )
        ).scalar()
        if before is None:
            await conn.execute(
                models.ratings.insert().values(
                    user_id=user_id, roadmap_id=roadmap_id, stars=stars, created_at=now
                )
            )
            change = {
                "rating_sum": models.roadmaps.c.rating_sum + stars,
                "rating_count": models.roadmaps.c.rating_count + 1,
            }
        else:
            await conn.execute(
                update(models.ratings)
                .where(
                    models.ratings.c.user_id == user_id,
                    models.ratings.c.roadmap_id == roadmap_id,
                )
                .values(stars=stars, created_at=now)
            )
            change = {"rating_sum": models.roadmaps.c.rating_sum + (stars - int(before))}
        await conn.execute(
            update(models.roadmaps).where(models.roadmaps.c.id == roadmap_id).values(**change)
        )
        roadmap = await library.load(conn, roadmap_id)
    assert roadmap is not None
    return roadmap


async def clone(
    database: Database, roadmap_id: str, user_id: str, now: datetime
) -> library.Roadmap:
    """A private copy of a public (or one's own) ready roadmap, steps and all."""
    async with database.writing() as conn:
        source = await library.load(conn, roadmap_id)
        if source is None or not (source.public or source.owner_id == user_id):
            raise library.RoadmapNotFound(f"no roadmap {roadmap_id!r}")
        if source.status != library.READY:
            raise library.NotReady("only a ready roadmap can be cloned")
        copy = await library.create(
            conn,
            owner_id=user_id,
            title=source.title,
            goal=source.goal,
            source_kind="text",
            source_ref=None,
            now=now,
        )
        await conn.execute(
            update(models.roadmaps)
            .where(models.roadmaps.c.id == copy.id)
            .values(
                status=library.READY,
                progress=100,
                stage="ready",
                provider=source.provider,
                model=source.model,
                cloned_from=source.id,
            )
        )
        await library.insert_steps(
            conn,
            copy.id,
            [library.StepInput(s.title, s.description, s.hours, s.resources) for s in source.steps],
        )
        await library.recount(conn, copy.id)
        if source.owner_id != user_id:
            await conn.execute(
                update(models.roadmaps)
                .where(models.roadmaps.c.id == source.id)
                .values(clone_count=models.roadmaps.c.clone_count + 1)
            )
        cloned = await library.load(conn, copy.id)
    assert cloned is not None
    return cloned


async def count_view(database: Database, roadmap_id: str) -> None:
    async with database.writing() as conn:
        await conn.execute(
            update(models.roadmaps)
            .where(models.roadmaps.c.id == roadmap_id)
            .values(view_count=models.roadmaps.c.view_count + 1)
        )


async def follow(
    database: Database, follower_id: str, handle: str, *, now: datetime, on: bool = True
) -> Profile:
    """Follow (``on``) or unfollow the profile ``handle``; repeating either is a no-op."""
    target = await profile(database, handle)
    if target.user_id == follower_id:
        raise CannotFollowSelf("you cannot follow yourself")
    async with database.writing() as conn:
        if on:
            changed = await conn.execute(
                db.insert(conn, models.follows)
                .values(follower_id=follower_id, followee_id=target.user_id, created_at=now)
                .on_conflict_do_nothing()
            )
        else:
            changed = await conn.execute(
                delete(models.follows).where(
                    models.follows.c.follower_id == follower_id,
                    models.follows.c.followee_id == target.user_id,
                )
            )
        if changed.rowcount == 1:
            step = 1 if on else -1
            await conn.execute(
                update(models.profiles)
                .where(models.profiles.c.user_id == target.user_id)
                .values(followers=models.profiles.c.followers + step)
            )
            await conn.execute(
                update(models.profiles)
                .where(models.profiles.c.user_id == follower_id)
                .values(following=models.profiles.c.following + step)
            )
    return await profile(database, handle)


async def is_following(database: Database, follower_id: str, followee_id: str) -> bool:
    async with database.reading() as conn:
        row = (
            await conn.execute(
                select(models.follows.c.created_at).where(
                    models.follows.c.follower_id == follower_id,
                    models.follows.c.followee_id == followee_id,
                )
            )
        ).first()
    return row is not None


async def my_rating(database: Database, roadmap_id: str, user_id: str) -> int | None:
    async with database.reading() as conn:
        stars = (
            await conn.execute(
                select(models.ratings.c.stars).where(
                    models.ratings.c.user_id == user_id,
                    models.ratings.c.roadmap_id == roadmap_id,
                )
            )
        ).scalar()
    return None if stars is None else int(stars)
