"""bittorrented's request limits: search (JSON, files, the page), Torznab and uploads, per
API key when a valid one is sent, else per client address; 429 problem+json with headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from keel.bittorrented.app import create_app
from keel.bittorrented.settings import BittorrentedSettings
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW

KEY = "s3cret-key"
Client = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def client_from(db_url: str) -> AsyncIterator[Client]:
    """Clients of one app, each calling from the address it is given."""
    settings = BittorrentedSettings(
        database_url=db_url,
        api_key=KEY,
        run_workers=False,
        rate_limit_search=3,
        rate_limit_torznab=2,
        rate_limit_uploads=2,
    )
    product = create_app(settings, clock=FrozenClock(NOW))

    @asynccontextmanager
    async def client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        app: FastAPI = product.app
        transport = httpx.ASGITransport(app=app, client=(address, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as c:
            yield c

    async with product.lifespan():
        yield client


def assert_refused(reply: httpx.Response, limit: int) -> None:
    assert reply.status_code == 429, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["code"] == "rate_limited"
    assert reply.headers["X-RateLimit-Limit"] == str(limit)
    assert reply.headers["X-RateLimit-Remaining"] == "0"
    assert int(reply.headers["Retry-After"]) >= 1


async def test_searching_past_the_limit_answers_429_with_headers(client_from: Client) -> None:
    async with client_from("10.0.0.1") as c:
        replies = [
            await c.get("/api/search", params={"q": "ubuntu"}),
            await c.get("/api/files", params={"q": "iso"}),
            await c.get("/", params={"q": "ubuntu"}),  # the page shares the search budget
        ]
        assert [r.status_code for r in replies] == [200, 200, 200]
        assert [r.headers["X-RateLimit-Remaining"] for r in replies] == ["2", "1", "0"]
        assert {r.headers["X-RateLimit-Limit"] for r in replies} == {"3"}
        assert_refused(await c.get("/api/search", params={"q": "ubuntu"}), 3)
        assert_refused(await c.get("/"), 3)
    async with client_from("10.0.0.2") as other:
        assert (await other.get("/api/search", params={"q": "ubuntu"})).status_code == 200


async def test_an_ipv6_client_is_its_slash_64(client_from: Client) -> None:
    async with client_from("2001:db8:1:2::1") as c:
        for _ in range(3):
            assert (await c.get("/api/search")).status_code == 200
    async with client_from("2001:db8:1:2:ffff::9") as same_network:
        assert_refused(await same_network.get("/api/search"), 3)
    async with client_from("2001:db8:1:3::1") as next_network:
        assert (await next_network.get("/api/search")).status_code == 200


async def test_a_valid_api_key_has_its_own_budget_and_a_wrong_one_counts_as_the_address(
    client_from: Client,
) -> None:
    async with client_from("10.0.0.3") as c:
        for _ in range(3):
            assert (await c.get("/api/search", headers={"x-api-key": "wrong"})).status_code == 200
        assert_refused(await c.get("/api/search"), 3)
        keyed = await c.get("/api/search", headers={"x-api-key": KEY})
        assert keyed.status_code == 200
        assert keyed.headers["X-RateLimit-Remaining"] == "2"


async def test_torznab_is_limited(client_from: Client) -> None:
    async with client_from("10.0.0.4") as c:
        params = {"t": "search", "q": "ubuntu", "apikey": KEY}
        for _ in range(2):
            reply = await c.get("/torznab/api", params=params)
            assert reply.status_code == 200
            assert "X-RateLimit-Remaining" in reply.headers
        assert_refused(await c.get("/torznab/api", params=params), 2)


async def test_uploads_are_limited_before_the_key_is_checked(client_from: Client) -> None:
    async with client_from("10.0.0.5") as c:
        magnet = {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20}
        guesses = [
            await c.post("/api/magnets", json=magnet, headers={"x-api-key": f"guess{i}"})
            for i in range(2)
        ]
        assert [r.status_code for r in guesses] == [401, 401]
        assert guesses[0].headers["X-RateLimit-Remaining"] == "1"
        assert_refused(
            await c.post("/api/torrents", content=b"x", headers={"x-api-key": "guess3"}), 2
        )
