"""Caches under test: the in-process one, a failover cache on the shared test Redis pair,
and Redis servers of a test's own that it may stop, pause or put behind a proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from keel.core.cache import Cache, MemoryCache
from tests.conftest import need_service
from tests.core.cache.support import on_shared
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy


@pytest.fixture(params=["memory", "redis", "failover"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    """Every kind of cache: in process, on the shared Redis, on the shared pair."""
    if request.param == "memory":
        memory = MemoryCache(name="test")
        yield memory
        await memory.aclose()
        return
    async with on_shared(1 if request.param == "redis" else 2) as made:
        yield made


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """Two redis-server processes of this test's own (primary, secondary)."""
    try:
        pair = (RedisServer(tmp_path / "primary"), RedisServer(tmp_path / "secondary"))
    except FileNotFoundError:
        need_service("the redis-server binary")
    for server in pair:
        server.start()
    yield pair
    for server in pair:
        server.stop()


@pytest.fixture
async def proxies() -> AsyncIterator[Callable[[int], Awaitable[tuple[TcpProxy, str]]]]:
    """``await proxy_to(port)``: a started proxy in front of a local Redis, and its URL."""
    made: list[TcpProxy] = []

    async def proxy_to(port: int) -> tuple[TcpProxy, str]:
        proxy = TcpProxy(port)
        made.append(proxy)
        return proxy, f"redis://127.0.0.1:{await proxy.start()}/0"

    yield proxy_to
    for proxy in made:
        await proxy.aclose()
