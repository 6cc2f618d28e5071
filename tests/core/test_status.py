"""The status page and its JSON: breakers of a registry by prefix, caches, the overall
verdict, escaping, and what the routes do with requests they do not serve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from keel.core import pages, status
from keel.core.app import PROBLEM_JSON, RequestContextMiddleware, install_problem_handlers
from keel.core.cache import FailoverCache, MemoryCache, ProviderPolicy, RedisProvider
from keel.core.resilience import BreakerRegistry, CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    pass


async def fail(breaker: CircuitBreaker) -> None:
    async def boom() -> None:
        raise Boom

    with pytest.raises(Boom):
        await breaker.call(boom)


async def ok() -> None:
    return None


@pytest.fixture
def registry() -> BreakerRegistry:
    return BreakerRegistry()


@pytest.fixture
async def client(registry: BreakerRegistry) -> AsyncIterator[httpx.AsyncClient]:
    cache = MemoryCache(name="pages")
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, app_name="test")
    app.include_router(
        status.router(
            lambda: status.read(breakers="shop", caches=[cache], registry=registry), name="shop"
        )
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http
    await cache.aclose()


async def test_read_lists_breakers_by_prefix_and_says_degraded_when_one_is_not_closed(
    registry: BreakerRegistry,
) -> None:
    clock = Clock()
    rpc = CircuitBreaker("shop_rpc", minimum_calls=2, clock=clock, registry=registry)
    other = CircuitBreaker("other_product", clock=clock, registry=registry)
    cache = MemoryCache(name="shop")
    found = await status.read(breakers="shop", caches=[cache], registry=registry)
    assert [b.name for b in found.breakers] == ["shop_rpc"]
    assert found.overall == "ok"
    assert [c.name for c in found.caches] == ["shop"]
    assert [b.name for b in registry.breakers()] == ["other_product", "shop_rpc"]
    del other
    await rpc.call(ok)
    await fail(rpc)
    assert rpc.state is CircuitState.OPEN
    assert (await status.read(breakers="shop", registry=registry)).overall == "degraded"


async def test_the_json_reports_each_breakers_window_and_rates(
    client: httpx.AsyncClient, registry: BreakerRegistry
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "shop_payments",
        window_calls=30,
        minimum_calls=3,
        open_seconds=20,
        clock=clock,
        registry=registry,
    )
    for _ in range(2):
        await breaker.call(ok)
    await fail(breaker)
    response = await client.get("/api/status")
    assert response.status_code == 200
    body = response.json()
    assert body["overall"] == "ok"
    [reported] = body["breakers"]
    assert reported["name"] == "shop_payments"
    assert reported["state"] == "closed"
    assert (reported["window_type"], reported["window_size"], reported["calls"]) == ("count", 30, 3)
    assert reported["failure_rate"] == 0.3333
    assert reported["slow_call_rate_threshold"] is None
    assert body["caches"] == [
        {
            "name": "pages",
            "kind": "memory",
            "providers": [],
            "fallback_entries": 0,
            "fallback_active": False,
            "pending_invalidations": 0,
        }
    ]
    await fail(breaker)
    clock.now += 5
    reported = (await client.get("/api/status")).json()["breakers"][0]
    assert reported["state"] == "open"
    assert reported["half_open_in_seconds"] == 15.0


async def test_the_page_shows_states_under_the_pages_policy(
    client: httpx.AsyncClient, registry: BreakerRegistry
) -> None:
    clock = Clock()
    opened = CircuitBreaker("shop_open", minimum_calls=1, clock=clock, registry=registry)
    await fail(opened)
    fine = CircuitBreaker("shop_fine", slow_call_seconds=1, clock=clock, registry=registry)
    response = await client.get("/status")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == pages.CSP
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert 'class="state state-degraded">degraded' in html
    assert 'id="breaker-shop_open"' in html
    assert "probes in 30.0 s" in html
    assert 'id="breaker-shop_fine"' in html
    assert "slow 0.0 %" in html
    assert fine.state is CircuitState.CLOSED  # the registry holds breakers weakly: keep it


async def test_names_are_escaped_on_the_page(
    client: httpx.AsyncClient, registry: BreakerRegistry
) -> None:
    # Names can come from outside (a tracker's host from a torrent file).
    hostile = CircuitBreaker("shop_tracker:<script>alert(1)</script>", registry=registry)
    html = (await client.get("/status")).text
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert hostile.name in {b.name for b in registry.breakers()}


@pytest.mark.parametrize("path", ["/status", "/api/status"])
async def test_only_get_is_served(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={"state": "closed"})
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["allow"] == "GET"
    assert response.json()["code"] == "method_not_allowed"


async def test_unknown_query_parameters_change_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/status", params={"name": "../../etc", "prefix": ""})
    assert response.status_code == 200
    assert response.json()["breakers"] == []


async def test_a_cache_whose_redis_is_gone_shows_degraded_with_its_providers() -> None:
    # Port 1 on loopback: nothing listens, connections are refused at once.
    policy = ProviderPolicy(window_calls=4, minimum_calls=2)
    provider = RedisProvider(
        "redis://127.0.0.1:1/0",
        label="primary",
        breaker_name="statustest_cache:primary",
        policy=policy,
    )
    cache = FailoverCache([provider], name="statustest", namespace="keel:statustest")
    try:
        for _ in range(2):
            assert await cache.get("k") is None  # a miss, never an error
        found = await status.read(breakers="statustest", caches=[cache])
        assert found.overall == "degraded"
        assert found.breakers == ()  # the cache's own breaker is shown with its cache
        [shown] = found.caches
        assert shown.fallback_active
        [p] = shown.providers
        assert (p.label, p.breaker.state, p.missed_writes) == ("primary", "open", None)
        body = status.as_json(found)
        assert body["caches"][0]["providers"][0]["breaker"]["name"] == "statustest_cache:primary"
    finally:
        await cache.aclose()
