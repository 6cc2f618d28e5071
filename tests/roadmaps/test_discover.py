"""/discover: what each list holds, and what a request costs before and after precompute."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from keel.core import db
from keel.core.clock import FrozenClock
from keel.core.replicated import Database
from keel.roadmaps import community, discover
from tests.roadmaps.conftest import NOW, MakeUser
from tests.roadmaps.test_library import ready_roadmap


@contextmanager
def counting(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}:
            statements.append(statement)

    engine = database.primary.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", seen)


async def populate(database: Database, make_user: MakeUser) -> dict[str, str]:
    ann, bob, cy, dee = [await make_user(n) for n in ("Ann", "Bob", "Cy", "Dee")]
    ids = {}
    for owner, title in ((ann, "SQL"), (ann, "Rust"), (bob, "Go"), (cy, "Private")):
        ids[title] = (await ready_roadmap(database, owner, title)).id
    for title in ("SQL", "Rust", "Go"):
        await community.set_visibility(
            database, ids[title], owner_of(title, ann, bob), public=True, now=NOW
        )
    for rater, stars in ((bob, 5), (cy, 4), (dee, 4)):
        await community.rate(database, ids["SQL"], rater, stars, NOW)
    for rater in (bob, cy, dee):
        await community.rate(database, ids["Rust"], rater, 2, NOW)
    await community.follow(database, bob, "ann", now=NOW)
    return ids


def owner_of(title: str, ann: str, bob: str) -> str:
    return bob if title == "Go" else ann


async def test_the_lists_hold_public_ready_roadmaps_only(
    database: Database, make_user: MakeUser
) -> None:
    ids = await populate(database, make_user)
    page = await discover.compute(database, NOW)
    assert page.public_count == 3
    assert ids["Private"] not in {c.id for c in page.recently_added}
    assert [c.id for c in page.highest_rated] == [ids["SQL"]]  # Rust is rated 2.0
    assert page.highest_rated[0].rating == "4.3"
    assert page.top_creators[0].handle == "ann"
    assert {c.id for c in page.trending} == {ids["SQL"], ids["Rust"], ids["Go"]}
    later = await discover.compute(database, NOW + timedelta(days=31))
    assert later.trending == ()
    assert discover.DiscoverPage.from_json(page.to_json()) == page


async def test_requests_cost_no_query_once_precomputed(
    database: Database, make_user: MakeUser
) -> None:
    await populate(database, make_user)
    clock = FrozenClock(NOW)
    service = discover.Discover(database, clock, interval=timedelta(minutes=5))
    with counting(database) as naive:
        for _ in range(5):
            await discover.compute(database, clock.now())
    assert len(naive) >= 5 * 6
    assert await service.refresh()
    with counting(database) as served:
        pages = [await service.page() for _ in range(50)]
    assert served == []
    assert all(p == pages[0] for p in pages)

    # Another process sees the stored result with one read, and a stale result is still
    # served (within the TTL) instead of being recomputed by a request.
    other = discover.Discover(database, clock, interval=timedelta(minutes=5))
    clock.advance(timedelta(minutes=7))
    with counting(database) as stale:
        assert (await other.page()).computed_at == NOW
        assert (await other.page()).computed_at == NOW
    assert len(stale) == 1
    # ... and revalidates in the background (stale-while-revalidate), under the lease.
    await other.revalidated()
    assert (await other.page()).computed_at == clock.now()


async def test_one_refresh_at_a_time_and_one_computation_per_process(
    database: Database, make_user: MakeUser
) -> None:
    await populate(database, make_user)
    clock = FrozenClock(NOW)
    first = discover.Discover(database, clock)
    second = discover.Discover(database, clock)
    assert await first._take_lease()
    assert not await second.refresh()  # the lease is held
    clock.advance(timedelta(minutes=6))
    assert await second.refresh()  # the holder's lease expired
    # With nothing stored, concurrent requests share one computation.
    fresh = discover.Discover(database, FrozenClock(NOW + timedelta(days=1)))
    with counting(database) as statements:
        pages = await asyncio.gather(*(fresh.page() for _ in range(20)))
    assert len({p.computed_at for p in pages}) == 1
    assert sum("FROM roadmaps_profiles JOIN" in s for s in statements) == 1


def test_the_ttl_is_at_least_twice_the_interval() -> None:
    with pytest.raises(ValueError, match="twice"):
        discover.Discover(
            Database(db.create_engine("sqlite+aiosqlite://")),  # never connected
            FrozenClock(NOW),
            interval=timedelta(minutes=5),
            ttl=timedelta(minutes=5),
        )
