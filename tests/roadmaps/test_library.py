"""Roadmaps from creation to ready, edits, publishing, ratings, clones, follows, progress."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from keel.core.replicated import Database
from keel.roadmaps import community, library, progress
from tests.roadmaps.conftest import NOW, MakeUser

STEPS = [
    library.StepInput("Install", "<p>Get the tools</p>", Decimal("1.5")),
    library.StepInput(
        "Basics",
        "<p>SELECT</p>",
        Decimal("4"),
        (library.Resource("Docs", "https://x.org", "docs"),),
    ),
    library.StepInput("Joins", "<p>JOIN</p>", Decimal("6.25")),
]


async def ready_roadmap(database: Database, owner: str, title: str = "SQL") -> library.Roadmap:
    async with database.writing() as conn:
        roadmap = await library.create(
            conn,
            owner_id=owner,
            title=title,
            goal="learn sql",
            source_kind="text",
            source_ref=None,
            now=NOW,
        )
    await library.report_progress(database, roadmap.id, 40, "writing", NOW)
    assert await library.fill(
        database,
        roadmap.id,
        title=title,
        steps=STEPS,
        provider="offline",
        model="catalogue",
        now=NOW,
    )
    return await library.get(database, roadmap.id, owner)


async def test_a_roadmap_is_filled_once_and_counts_its_steps(
    database: Database, make_user: MakeUser
) -> None:
    ann = await make_user("Ann")
    roadmap = await ready_roadmap(database, ann)
    assert roadmap.status == "ready"
    assert roadmap.progress == 100
    assert [s.title for s in roadmap.steps] == ["Install", "Basics", "Joins"]
    assert roadmap.step_count == 3
    assert roadmap.total_hours == Decimal("11.75")
    assert roadmap.steps[1].resources == (library.Resource("Docs", "https://x.org", "docs"),)
    # A second run of the same job (a crash after commit) changes nothing.
    assert not await library.fill(
        database, roadmap.id, title="x", steps=STEPS, provider="o", model="m", now=NOW
    )
    assert (await library.get(database, roadmap.id, ann)).step_count == 3


async def test_private_roadmaps_are_invisible_to_others(
    database: Database, make_user: MakeUser
) -> None:
    ann, bob = await make_user("Ann"), await make_user("Bob")
    roadmap = await ready_roadmap(database, ann)
    with pytest.raises(library.RoadmapNotFound):
        await library.get(database, roadmap.id, bob)
    with pytest.raises(library.RoadmapNotFound):
        await library.get(database, roadmap.id, None)
    with pytest.raises(library.RoadmapNotFound):
        await community.set_visibility(database, roadmap.id, bob, public=True, now=NOW)


async def test_editing_keeps_progress_on_steps_that_survive(
    database: Database, make_user: MakeUser
) -> None:
    ann = await make_user("Ann")
    roadmap = await ready_roadmap(database, ann)
    basics = roadmap.steps[1]
    await progress.mark(database, ann, roadmap.id, basics.id, "done", minutes=30, now=NOW)
    edited = await library.edit(
        database,
        roadmap.id,
        ann,
        title="SQL, reordered",
        steps=[STEPS[1], library.StepInput("Window functions", "<p>OVER</p>", Decimal("3"))],
        now=NOW,
    )
    assert [s.title for s in edited.steps] == ["Basics", "Window functions"]
    assert edited.steps[0].id == basics.id
    assert edited.total_hours == Decimal("7")
    mine = await progress.of_roadmap(database, ann, edited)
    assert mine.done == 1
    assert mine.total == 2
    assert mine.percent == 50


async def test_publish_rate_clone_follow(database: Database, make_user: MakeUser) -> None:
    ann, bob, cy = await make_user("Ann"), await make_user("Bob"), await make_user("Cy")
    roadmap = await ready_roadmap(database, ann)
    published = await community.set_visibility(database, roadmap.id, ann, public=True, now=NOW)
    assert published.public
    assert published.published_at == NOW
    await community.set_visibility(database, roadmap.id, ann, public=True, now=NOW)
    assert (await community.profile(database, "ann")).public_roadmaps == 1

    with pytest.raises(community.CannotRateOwn):
        await community.rate(database, roadmap.id, ann, 5, NOW)
    with pytest.raises(community.InvalidRating):
        await community.rate(database, roadmap.id, bob, 6, NOW)
    await community.rate(database, roadmap.id, bob, 5, NOW)
    await community.rate(database, roadmap.id, bob, 3, NOW)  # replaces
    rated = await community.rate(database, roadmap.id, cy, 4, NOW)
    assert (rated.rating_sum, rated.rating_count, rated.rating) == (7, 2, Decimal("3.5"))

    copy = await community.clone(database, roadmap.id, bob, NOW)
    assert copy.owner_id == bob
    assert not copy.public
    assert copy.cloned_from == roadmap.id
    assert [s.title for s in copy.steps] == [s.title for s in roadmap.steps]
    assert {s.id for s in copy.steps}.isdisjoint({s.id for s in roadmap.steps})
    assert (await library.get(database, roadmap.id, None)).clone_count == 1

    await community.follow(database, bob, "ann", now=NOW)
    await community.follow(database, bob, "ann", now=NOW)
    annp = await community.follow(database, cy, "ann", now=NOW)
    assert annp.followers == 2
    assert (await community.profile(database, "bob")).following == 1
    with pytest.raises(community.CannotFollowSelf):
        await community.follow(database, ann, "ann", now=NOW)
    assert (await community.follow(database, bob, "ann", now=NOW, on=False)).followers == 1


async def test_progress_builds_the_heatmap_and_streaks(
    database: Database, make_user: MakeUser
) -> None:
    ann = await make_user("Ann")
    roadmap = await ready_roadmap(database, ann)
    first, second, third = roadmap.steps
    for days_ago, step in ((3, first), (1, second), (0, third)):
        await progress.mark(
            database,
            ann,
            roadmap.id,
            step.id,
            "done",
            minutes=20,
            now=NOW - timedelta(days=days_ago),
        )
    # Marking done again adds minutes, not another step.
    await progress.mark(database, ann, roadmap.id, third.id, "done", minutes=10, now=NOW)
    seen = await progress.activity(database, ann, NOW.date(), days=7)
    assert [d.steps_done for d in seen.days] == [0, 0, 0, 1, 0, 1, 1]
    assert seen.days[-1].minutes == 30
    assert (seen.current_streak, seen.longest_streak) == (2, 2)
    assert seen.total_steps_done == 3
    with pytest.raises(progress.InvalidProgress):
        await progress.mark(database, ann, roadmap.id, first.id, "finished", now=NOW)
    with pytest.raises(progress.InvalidProgress):
        await progress.mark(database, ann, roadmap.id, "nope", "done", now=NOW)
