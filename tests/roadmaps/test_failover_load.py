"""roadmaps under load while its Redis primary dies and returns: every request answers (the
dashboard cache and the rate limits fail over to the secondary), and once the primary is back
nobody reads a dashboard from before a write made while it was away."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path

import pytest

from tests.conftest import need_service
from tests.redis_server import RedisServer
from tests.roadmaps.test_accounts import open_site
from tests.roadmaps.test_roadmaps_api import API, generate, sign_up

pytestmark = pytest.mark.slow


def done_on_dashboard(html: str) -> int:
    found = re.search(r"(\d+) of \d+ steps", html)
    assert found is not None, html[:400]
    return int(found.group(1))


async def test_stopping_the_redis_primary_mid_load_fails_no_request(tmp_path: Path) -> None:
    try:
        primary, secondary = RedisServer(tmp_path / "p"), RedisServer(tmp_path / "s")
    except FileNotFoundError:
        need_service("the redis-server binary")
    primary.start()
    secondary.start()
    try:
        async with open_site(
            tmp_path,
            redis_url=primary.url,
            redis_secondary_url=secondary.url,
            rate_limit_api=100_000,
        ) as site:
            ann = await sign_up(site, "ann@example.org", "Ann")
            roadmap = await generate(site, ann, "Learn Rust")
            steps = [s["id"] for s in roadmap["steps"]]
            statuses: list[int] = []
            stop = asyncio.Event()

            async def reader() -> None:
                while not stop.is_set():
                    path = random.choice(
                        ["/roadmaps/dashboard", f"{API}/roadmaps", f"{API}/discover"]
                    )
                    statuses.append((await site.http.get(path)).status_code)

            async def marker() -> None:
                while not stop.is_set():
                    step = random.choice(steps)
                    reply = await site.http.put(
                        f"{API}/roadmaps/{roadmap['id']}/steps/{step}/progress",
                        json={"status": random.choice(["done", "learning"])},
                        headers=ann,
                    )
                    statuses.append(reply.status_code)

            workers = [asyncio.create_task(reader()) for _ in range(12)]
            workers += [asyncio.create_task(marker()) for _ in range(2)]
            await asyncio.sleep(1.0)
            primary.stop()  # mid-load
            await asyncio.sleep(2.0)
            # While it is away: a write the dashboard must show once the primary returns.
            last = steps[-1]
            marked = await site.http.put(
                f"{API}/roadmaps/{roadmap['id']}/steps/{last}/progress",
                json={"status": "done"},
                headers=ann,
            )
            assert marked.status_code == 200
            primary.start()
            await asyncio.sleep(2.0)
            stop.set()
            await asyncio.gather(*workers)

            assert len(statuses) > 100
            assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
            truth = (await site.http.get(f"{API}/roadmaps/{roadmap['id']}")).json()
            dashboard = await site.http.get("/roadmaps/dashboard")
            assert done_on_dashboard(dashboard.text) == truth["my_progress"]["done"]
    finally:
        primary.stop()
        secondary.stop()
