"""The per-user dashboard cache: a view computed before a write is never served after it, even
when it is stored after the write's invalidation (the reader that raced the writer)."""

from __future__ import annotations

from pathlib import Path

from keel.roadmaps import bootstrap
from keel.roadmaps.settings import RoadmapsSettings
from tests.roadmaps.referrals_billing_support import add_users


async def test_a_view_stored_after_the_invalidation_is_not_served(tmp_path: Path) -> None:
    wired = await bootstrap.open_roadmaps(RoadmapsSettings(), data_dir=str(tmp_path))
    try:
        (user,) = await add_users(wired.database, 1)
        first = await wired.dashboard(user)
        assert first["roadmaps"] == []
        # A reader read the generation, then the database (before a write)...
        generation = await wired.cache.incr(
            bootstrap._dashboard_generation_key(user), ttl_seconds=60, amount=0
        )
        stale = {**first, "roadmaps": [{"id": "gone", "title": "stale"}]}
        # ...the writer commits and invalidates...
        await wired.invalidate_user(user)
        # ...and only then the slow reader stores what it computed.
        await wired.cache.set_json(
            bootstrap._dashboard_key(user, generation), stale, ttl_seconds=60
        )
        assert (await wired.dashboard(user))["roadmaps"] == []
        # Without a write in between, the stored view is served (it is a cache).
        again = await wired.dashboard(user)
        assert again == await wired.dashboard(user)
    finally:
        await wired.close()
