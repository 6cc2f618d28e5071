"""The failover cache under load while its primary dies and returns, and in front of a slow
primary (a proxy that adds latency): no operation fails, breakers open within their window,
then calls skip the sick server and come back to it through half-open probes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from prometheus_client import REGISTRY

from keel.core.cache import FailoverCache, ProviderPolicy
from keel.core.resilience import CircuitState
from tests.core.cache.support import failover_cache, until
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

CLOSED, HALF_OPEN, OPEN = CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN
Servers = tuple[RedisServer, RedisServer]
ProxyTo = Callable[[int], Awaitable[tuple[TcpProxy, str]]]


@pytest.fixture
async def closing() -> AsyncIterator[list[FailoverCache]]:
    made: list[FailoverCache] = []
    yield made
    for cache in made:
        await cache.aclose()


def state(cache: FailoverCache, label: str) -> CircuitState:
    return next(p for p in cache.providers if p.label == label).breaker.snapshot().state


def answered(cache: FailoverCache, label: str) -> float:
    """Calls the provider answered (its breaker counts them)."""
    name = next(p for p in cache.providers if p.label == label).breaker.name
    labels = {"name": name, "outcome": "success"}
    return REGISTRY.get_sample_value("keel_circuit_calls_total", labels) or 0.0


class Load:
    """``workers`` tasks doing reads, writes, counters and invalidations without pause,
    keeping every exception they get."""

    def __init__(self, cache: FailoverCache, workers: int) -> None:
        self.cache = cache
        self.errors: list[BaseException] = []
        self.operations = 0
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._work(i)) for i in range(workers)]

    async def _work(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            key, draw = f"page:{rng.randrange(40)}", rng.random()
            try:
                if draw < 0.6:
                    await self.cache.get(key)
                elif draw < 0.8:
                    await self.cache.set(key, b"rendered", ttl_seconds=60)
                elif draw < 0.9:
                    await self.cache.incr(f"usage:{rng.randrange(4)}", ttl_seconds=60)
                else:
                    await self.cache.delete(key)
            except Exception as exc:
                self.errors.append(exc)
            self.operations += 1
            await asyncio.sleep(0)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def test_stopping_the_primary_mid_load_fails_no_operation(
    servers: Servers, closing: list[FailoverCache]
) -> None:
    primary, secondary = servers
    transitions: list[tuple[str, CircuitState, CircuitState]] = []
    cache = failover_cache([primary.url, secondary.url], transitions=transitions)
    closing.append(cache)
    load = Load(cache, workers=32)
    try:
        await until(lambda: load.operations > 200)

        # In a thread: blocking the event loop would make every call in flight look slow.
        await asyncio.to_thread(primary.stop)
        await until(lambda: state(cache, "primary") is OPEN)
        during = load.operations
        await until(lambda: load.operations > during + 200)  # served by the secondary meanwhile
        await asyncio.to_thread(primary.start)
        await until(lambda: state(cache, "primary") is CLOSED)
        back = answered(cache, "primary")
        await until(lambda: answered(cache, "primary") > back + 100)  # traffic is back on it
    finally:
        await load.stop()

    assert load.errors == []
    mine = [(old, new) for label, old, new in transitions if label == "primary"]
    assert mine[0] == (CLOSED, OPEN)
    assert mine[-2:] == [(OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]  # closed by its probes
    assert all(label == "primary" for label, _, _ in transitions)  # the secondary held


async def test_a_slow_primary_opens_its_breaker_within_the_window(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo
) -> None:
    primary, secondary = servers
    proxy, via_proxy = await proxies(primary.port)
    policy = ProviderPolicy(
        slow_call_seconds=0.1,
        slow_call_rate_threshold=0.8,
        call_timeout_seconds=2.0,
        window_calls=10,
        minimum_calls=5,
        open_seconds=60,
    )
    cache = failover_cache([via_proxy, secondary.url], policy=policy)
    closing.append(cache)
    await cache.set("k", b"v", ttl_seconds=60)
    for _ in range(10):
        assert await cache.get("k") == b"v"
    assert state(cache, "primary") is CLOSED

    proxy.latency_seconds = 0.2  # slow, yet within the call timeout: answers still arrive
    slow_calls = 0
    while state(cache, "primary") is CLOSED:
        assert await cache.get("k") == b"v"
        slow_calls += 1
        assert slow_calls <= 8, "8 slow calls of the last 10 must open it"
    assert state(cache, "primary") is OPEN

    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(20):
        assert await cache.get("k") == b"v"  # from the secondary, without waiting
    assert loop.time() - started < 20 * 0.2 / 4  # a quarter of what twenty slow calls take


async def test_a_primary_slower_than_the_call_timeout_is_cut_short_then_skipped(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo
) -> None:
    primary, secondary = servers
    proxy, via_proxy = await proxies(primary.port)
    policy = ProviderPolicy(call_timeout_seconds=0.15, window_calls=10, minimum_calls=5)
    cache = failover_cache([via_proxy, secondary.url], policy=policy)
    closing.append(cache)
    await cache.set("k", b"v", ttl_seconds=60)
    proxy.latency_seconds = 5.0
    loop = asyncio.get_running_loop()
    calls = 0
    while state(cache, "primary") is CLOSED:
        started = loop.time()
        assert await cache.get("k") == b"v"
        assert loop.time() - started < 1.0  # cancelled at 0.15 s, not after 5
        calls += 1
    assert calls == 4  # with the set before, 4 failures in 5 calls: opens at the minimum
    snapshot = next(p for p in cache.providers if p.label == "primary").breaker.snapshot()
    assert snapshot.state is OPEN
    assert snapshot.half_open_in_seconds is not None
