"""roadmaps' database from its settings: a streaming replica only beside a PostgreSQL primary,
and the statement timeout on every session of both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from keel.roadmaps import bootstrap
from keel.roadmaps.app import create_app
from keel.roadmaps.settings import RoadmapsSettings
from tests import pg_cluster

ALICE = {"email": "alice@example.org", "password": "correct horse battery staple"}
BOB = {"email": "bob@example.org", "password": "correct horse battery staple"}


def test_a_replica_beside_the_embedded_database_is_refused_at_boot() -> None:
    with pytest.raises(ValidationError, match="replica_url needs PostgreSQL"):
        RoadmapsSettings(replica_url="postgresql+asyncpg://postgres@127.0.0.1:5434/roadmaps")


async def test_the_replica_and_the_statement_timeout_are_wired(tmp_path: Path) -> None:
    async with pg_cluster.replicated_database() as replicated:
        settings = RoadmapsSettings(
            database_url=replicated.primary_url,
            replica_url=replicated.replica_url,
            statement_timeout_ms=1500,
        )
        wired = await bootstrap.open_roadmaps(settings, data_dir=str(tmp_path))
        try:
            assert wired.database.replica is not None
            async with wired.database.reading() as conn:
                on_primary = await conn.scalar(text("SHOW statement_timeout"))
            async with wired.database.replica.connect() as conn:
                on_replica = await conn.scalar(text("SHOW statement_timeout"))
        finally:
            await wired.database.dispose()
    assert on_primary == on_replica == "1500ms"


async def test_with_the_primary_down_signed_in_reads_go_on_and_writes_get_503s(
    tmp_path: Path,
) -> None:
    async with pg_cluster.replicated_database() as replicated:
        settings = RoadmapsSettings(
            database_url=replicated.primary_url, replica_url=replicated.replica_url
        )
        product = create_app(settings, data_dir=str(tmp_path))
        transport = httpx.ASGITransport(app=product.app)
        async with (
            product.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            signed_up = await client.post("/api/accounts/signup", json=ALICE)
            assert signed_up.status_code == 201
            await pg_cluster.wait_replayed(replicated)
            async with pg_cluster.primary_stopped("fast"):
                me = await client.get("/api/accounts/me")
                ready = await product.ready()
                refused = await client.post(
                    "/api/accounts/logout-everywhere",
                    headers={"X-CSRF-Token": signed_up.json()["csrf_token"]},
                )
                # A sign-up, whose rate limit is counted in the primary too.
                client.cookies.clear()
                signup = await client.post("/api/accounts/signup", json=BOB)
    assert me.status_code == 200
    assert me.json()["user"]["email"] == ALICE["email"]
    assert ready
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["code"] == "primary_unavailable"
    assert signup.status_code == 503
    assert signup.json()["code"] == "primary_unavailable"


async def test_with_the_primary_down_roadmap_pages_answer_and_generation_gets_a_503(
    tmp_path: Path,
) -> None:
    async with pg_cluster.replicated_database() as replicated:
        settings = RoadmapsSettings(
            database_url=replicated.primary_url, replica_url=replicated.replica_url
        )
        product = create_app(settings, data_dir=str(tmp_path))
        transport = httpx.ASGITransport(app=product.app)
        async with (
            product.lifespan(),
            httpx.AsyncClient(transport=transport, base_url="http://test") as alice,
            httpx.AsyncClient(transport=transport, base_url="http://test") as bob,
        ):
            signed = (await alice.post("/api/accounts/signup", json=ALICE)).json()
            csrf = {"X-CSRF-Token": signed["csrf_token"]}
            made = await alice.post("/api/roadmaps", json={"goal": "Learn SQL"}, headers=csrf)
            assert made.status_code == 202
            roadmap_id = made.json()["id"]
            for _ in range(100):
                status = (await alice.get(f"/api/roadmaps/{roadmap_id}/status")).json()
                if status["status"] == "ready":
                    break
                await asyncio.sleep(0.05)
            published = await alice.post(f"/api/roadmaps/{roadmap_id}/publish", headers=csrf)
            assert published.status_code == 200
            assert (await alice.get("/dashboard")).status_code == 200  # the referral code exists
            await bob.post("/api/accounts/signup", json=BOB)
            await pg_cluster.wait_replayed(replicated)
            async with pg_cluster.primary_stopped("fast"):
                answers = {
                    path: (await client.get(path)).status_code
                    for client, path in (
                        (alice, f"/api/roadmaps/{roadmap_id}"),
                        (alice, "/api/roadmaps"),
                        (alice, "/api/me/activity"),
                        (bob, f"/r/{roadmap_id}"),  # a public view, not counted meanwhile
                        (bob, "/discover"),
                        (bob, "/api/discover"),
                        (bob, "/u/alice"),
                    )
                }
                refused = await alice.post("/api/roadmaps", json={"goal": "Learn Go"}, headers=csrf)
    assert set(answers.values()) == {200}, answers
    assert refused.status_code == 503
    assert refused.json()["code"] == "primary_unavailable"
    assert int(refused.headers["retry-after"]) >= 1
