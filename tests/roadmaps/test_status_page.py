"""roadmaps serves its status (breakers and cache) at /status and /api/status, boots with a
Redis that is down, and refuses Redis settings that cannot work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from keel.core.app import PROBLEM_JSON
from keel.roadmaps.app import create_app
from keel.roadmaps.bootstrap import Roadmaps
from keel.roadmaps.settings import RoadmapsSettings


@asynccontextmanager
async def serving(
    settings: RoadmapsSettings, data_dir: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    product = create_app(settings, data_dir=str(data_dir))
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, product.app


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    async with serving(RoadmapsSettings(), tmp_path) as both:
        yield both


async def test_the_embedded_default_reports_its_memory_cache(
    embedded: tuple[httpx.AsyncClient, FastAPI],
) -> None:
    client, app = embedded
    body = (await client.get("/api/status")).json()
    assert body["overall"] == "ok"
    [cache] = body["caches"]
    assert (cache["name"], cache["kind"], cache["providers"]) == ("roadmaps", "memory", [])
    page = await client.get("/status")
    assert page.status_code == 200
    assert "roadmaps status" in page.text
    assert app.url_path_for("roadmaps-status") == "/status"


async def test_a_redis_that_is_down_degrades_the_status_and_fails_nothing(
    tmp_path: Path,
) -> None:
    # Port 1 on loopback: nothing listens; every connection is refused at once.
    settings = RoadmapsSettings(
        redis_url="redis://127.0.0.1:1/0", redis_secondary_url="redis://127.0.0.1:1/1"
    )
    async with serving(settings, tmp_path) as (client, app):
        wired: Roadmaps = app.state.roadmaps
        for _ in range(25):  # the providers' minimum calls
            await wired.cache.set("dashboard:1", b"{}", ttl_seconds=60)
        assert await wired.cache.get("dashboard:1") == b"{}"  # this process's memory
        body = (await client.get("/api/status")).json()
        assert body["overall"] == "degraded"
        [cache] = body["caches"]
        assert cache["fallback_active"]
        assert [p["breaker"]["state"] for p in cache["providers"]] == ["open", "open"]
        assert "redis://" not in (await client.get("/status")).text  # no hosts shown


@pytest.mark.parametrize("path", ["/status", "/api/status"])
async def test_the_status_routes_refuse_other_methods(
    embedded: tuple[httpx.AsyncClient, FastAPI], path: str
) -> None:
    response = await embedded[0].delete(path)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"redis_secondary_url": "redis://127.0.0.1:6380/0"}, "needs redis_url"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis://"),
        ({"redis_url": "redis://a", "redis_secondary_url": "127.0.0.1:6380"}, "redis://"),
    ],
)
def test_redis_settings_that_cannot_work_fail_at_boot(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RoadmapsSettings(**fields)  # type: ignore[arg-type]
