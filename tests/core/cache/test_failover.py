"""A failover cache on two redis-server processes of the test's own, which it stops, pauses
and cuts off. Two caches on one namespace are two processes of one product."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio

from keel.core.cache import FailoverCache, RedisProvider
from keel.core.cache.provider import Journal
from keel.core.resilience import CircuitState
from tests.core.cache.support import failover_cache, until
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

Servers = tuple[RedisServer, RedisServer]
ProxyTo = Callable[[int], Awaitable[tuple[TcpProxy, str]]]
NAMESPACE = "keel:test:cache"


async def raw_get(server: RedisServer, key: str) -> bytes | None:
    """What ``server`` itself holds under a cache key (not what the cache answers)."""
    client = redis.asyncio.Redis.from_url(server.url)
    try:
        value: bytes | None = await client.get(f"{NAMESPACE}:{key}")
        return value
    finally:
        await client.aclose()


@pytest.fixture
async def closing() -> AsyncIterator[list[FailoverCache]]:
    made: list[FailoverCache] = []
    yield made
    for cache in made:
        await cache.aclose()


def open_on(closing: list[FailoverCache], urls: list[str]) -> FailoverCache:
    cache = failover_cache(urls, namespace=NAMESPACE)
    closing.append(cache)
    return cache


def breaker(cache: FailoverCache, label: str) -> CircuitState:
    provider: RedisProvider = next(p for p in cache.providers if p.label == label)
    return provider.breaker.snapshot().state


async def test_reads_and_writes_go_on_when_the_primary_is_stopped(
    servers: Servers, closing: list[FailoverCache]
) -> None:
    primary, secondary = servers
    cache = open_on(closing, [primary.url, secondary.url])
    await cache.set("k", b"v1", ttl_seconds=60)
    primary.stop()
    for _ in range(10):  # enough to open the primary's breaker
        assert await cache.get("k") == b"v1"  # from the secondary
    assert breaker(cache, "primary") is CircuitState.OPEN
    await cache.set("k", b"v2", ttl_seconds=60)
    assert await cache.get("k") == b"v2"
    assert await cache.incr("n", ttl_seconds=60) == 1
    await cache.delete("k")
    assert await cache.get("k") is None
    status = await cache.status()
    assert not status.fallback_active
    # k (set, then deleted) and n; the primary holds no journal of the secondary: unknown.
    assert [p.missed_writes for p in status.providers] == [2, None]


@pytest.mark.parametrize("failure", ["stopped", "paused", "partitioned"])
@pytest.mark.parametrize("change", ["overwrite", "invalidate"])
async def test_no_process_reads_a_replaced_value_once_the_primary_returns(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo, failure: str, change: str
) -> None:
    primary, secondary = servers
    # A reaches the primary through a proxy (cut when partitioned); B reaches it directly.
    proxy, primary_via_proxy = await proxies(primary.port)
    a = open_on(closing, [primary_via_proxy, secondary.url])
    b = open_on(closing, [primary.url, secondary.url])
    await a.set("dashboard:1", b"v1", ttl_seconds=60)
    assert await b.get("dashboard:1") == b"v1"

    # Stopped: it returns empty. Paused (SIGSTOP): it keeps v1, and may still apply a write
    # it had received when it resumes. Partitioned: it keeps v1 and never hears of v2.
    if failure == "stopped":
        primary.stop()
    elif failure == "paused":
        primary.pause()
    else:
        proxy.cut()
    if change == "overwrite":
        await a.set("dashboard:1", b"v2", ttl_seconds=60)
    else:
        await a.delete("dashboard:1")
    expected = b"v2" if change == "overwrite" else None
    if failure == "partitioned":
        # B still reaches the primary, which holds v1, and is told not to believe it.
        assert await raw_get(primary, "dashboard:1") == b"v1"
        assert await b.get("dashboard:1") == expected

    if failure == "stopped":
        primary.start()
    elif failure == "paused":
        primary.resume()
    else:
        proxy.restore()
    # B's breaker on the primary never opened: B trusts the server, not its own history.
    assert breaker(b, "primary") is CircuitState.CLOSED
    for _ in range(20):
        assert await b.get("dashboard:1") == expected
        await asyncio.sleep(0.01)
    # Reconciled in the background (B saw the journal): the primary no longer holds v1.
    await until(lambda: not any(t for t in b._tasks.values() if not t.done()))
    assert await raw_get(primary, "dashboard:1") != b"v1"
    assert await b.get("dashboard:1") == expected
    assert [p.missed_writes for p in (await b.status()).providers] == [0, 0]


async def test_reconciling_repairs_values_and_counters_on_the_returned_primary(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo
) -> None:
    primary, secondary = servers
    proxy, primary_via_proxy = await proxies(primary.port)
    a = open_on(closing, [primary_via_proxy, secondary.url])
    b = open_on(closing, [primary.url, secondary.url])
    await a.set("k1", b"old", ttl_seconds=60)
    await a.set("k2", b"old", ttl_seconds=60)
    for _ in range(2):
        await a.incr("usage:day", ttl_seconds=60)
    proxy.cut()
    await a.set("k1", b"new", ttl_seconds=60)
    await a.delete("k2")
    for _ in range(3):
        assert await a.incr("usage:day", ttl_seconds=60) in (3, 4, 5)
    proxy.restore()

    status = await b.status()
    assert status.providers[0].missed_writes == 3
    assert await raw_get(primary, "k1") == b"old"
    assert await raw_get(primary, "usage:day") == b"2"
    assert await b.reconcile() == 3
    assert await raw_get(primary, "k1") is None  # deleted: the secondary's copy answers
    assert await raw_get(primary, "k2") is None
    assert await raw_get(primary, "usage:day") == b"5"  # raised to the secondary's count
    assert (await b.status()).providers[0].missed_writes == 0
    assert await b.get("k1") == b"new"
    assert await b.get("k2") is None
    assert await b.incr("usage:day", ttl_seconds=60) == 6
    assert await b.reconcile() == 0


async def test_reads_racing_a_reconcile_never_take_the_old_copy(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo
) -> None:
    primary, secondary = servers
    proxy, primary_via_proxy = await proxies(primary.port)
    a = open_on(closing, [primary_via_proxy, secondary.url])
    readers = [open_on(closing, [primary.url, secondary.url]) for _ in range(3)]
    keys = [f"page:{i}" for i in range(50)]
    for key in keys:
        await a.set(key, b"old", ttl_seconds=60)
    proxy.cut()
    for key in keys:
        await a.set(key, b"new", ttl_seconds=60)
    proxy.restore()

    async def read_all() -> set[bytes | None]:
        return {await reader.get(key) for reader in readers for key in keys}

    # One reader repairs the primary while all of them read every key, over and over.
    repaired, *seen = await asyncio.gather(readers[0].reconcile(), *(read_all() for _ in range(10)))
    assert repaired == len(keys)
    assert all(values == {b"new"} for values in seen)
    assert await read_all() == {b"new"}


async def test_a_key_missed_again_while_reconciling_stays_to_repair(servers: Servers) -> None:
    primary, _ = servers
    provider = RedisProvider(primary.url, label="secondary", breaker_name="test_cache_mark")
    journal = Journal("keel:test:cache:~journal:primary", "keel:test:cache:~repaired:primary")
    try:
        await provider.journal(["a", "b"], [journal], 60_000)
        _, seen = await provider.unrepaired(journal, 0)
        assert seen == {b"a": b"1", b"b": b"1"}
        await provider.journal(["b"], [journal], 60_000)  # b missed again meanwhile
        assert await provider.mark_repaired(journal, seen, 60_000) == 1
        _, left = await provider.unrepaired(journal, 0)
        assert left == {b"b": b"2"}
        assert await provider.pending([journal]) == 1
        # Repaired entries stay listed: readers keep off the missing copy until expiry.
        assert await provider.read("a", [journal]) == (None, [(True, False)])
        assert await provider.read("b", [journal]) == (None, [(True, True)])
        assert await provider.read("c", [journal]) == (None, [(False, False)])
    finally:
        await provider.aclose()


async def test_counters_keep_counting_across_a_failover_and_back(
    servers: Servers, closing: list[FailoverCache]
) -> None:
    primary, secondary = servers
    cache = open_on(closing, [primary.url, secondary.url])
    assert [await cache.incr("generations:7", ttl_seconds=60) for _ in range(3)] == [1, 2, 3]
    primary.stop()
    assert [await cache.incr("generations:7", ttl_seconds=60) for _ in range(2)] == [4, 5]
    primary.start()  # empty: it lost its three
    await until(lambda: breaker(cache, "primary") is not CircuitState.OPEN)
    # The primary answers 1, but is listed as behind: the secondary's count stands.
    assert await cache.incr("generations:7", ttl_seconds=60) == 6
    await cache.reconcile()
    assert await cache.incr("generations:7", ttl_seconds=60) == 7
    assert await raw_get(primary, "generations:7") == b"7"


async def test_with_every_provider_down_a_process_answers_from_memory_and_invalidates_later(
    servers: Servers, closing: list[FailoverCache], proxies: ProxyTo
) -> None:
    primary, secondary = servers
    proxy_p, via_p = await proxies(primary.port)
    proxy_s, via_s = await proxies(secondary.port)
    a = open_on(closing, [via_p, via_s])
    b = open_on(closing, [primary.url, secondary.url])
    await a.set("profile:1", b"v1", ttl_seconds=60)
    proxy_p.cut()
    proxy_s.cut()

    await a.set("profile:1", b"v2", ttl_seconds=60)
    await a.set("fresh", b"x", ttl_seconds=60)
    assert await a.get("profile:1") == b"v2"  # its own write, from memory
    assert await a.incr("n", ttl_seconds=60) == 1
    lock = await a.acquire_lock("precompute", ttl_seconds=60)
    assert lock is not None
    assert lock.where == "fallback"
    assert await a.release_lock(lock)
    status = await a.status()
    assert status.fallback_active
    assert status.pending_invalidations == 2
    assert [p.missed_writes for p in status.providers] == [None, None]
    # The window this design leaves: nobody could tell B.
    assert await b.get("profile:1") == b"v1"

    proxy_p.restore()
    proxy_s.restore()

    async def drained() -> None:
        while a._pending or a._fallback_active:
            await a.get("anything")  # any answer starts the replay
            await asyncio.sleep(0.02)

    await asyncio.wait_for(drained(), 5)
    await until(lambda: not any(t for t in a._tasks.values() if not t.done()))
    assert await b.get("profile:1") is None
    assert await a.get("profile:1") is None
    assert await raw_get(primary, "profile:1") is None
    assert await raw_get(secondary, "profile:1") is None


async def test_locks_move_to_the_secondary_then_to_memory(
    servers: Servers, closing: list[FailoverCache]
) -> None:
    primary, secondary = servers
    a = open_on(closing, [primary.url, secondary.url])
    b = open_on(closing, [primary.url, secondary.url])
    held = await a.acquire_lock("discover", ttl_seconds=60)
    assert held is not None
    assert held.where == "primary"
    assert await b.acquire_lock("discover", ttl_seconds=60) is None
    primary.stop()
    # Advisory: with the primary gone the secondary grants it again (no split-brain-proof
    # exclusion is promised; the precompute may run twice, never zero times).
    again = await b.acquire_lock("discover", ttl_seconds=60)
    assert again is not None
    assert again.where == "secondary"
    assert not await a.release_lock(held)  # its server is gone; it would expire
    assert await b.release_lock(again)
    secondary.stop()
    last = await b.acquire_lock("discover", ttl_seconds=60)
    assert last is not None
    assert last.where == "fallback"
    assert await b.release_lock(last)


async def test_rate_limits_fail_over_and_never_raise(
    servers: Servers, closing: list[FailoverCache]
) -> None:
    primary, secondary = servers
    cache = open_on(closing, [primary.url, secondary.url])
    limiter = cache.rate_limiter(namespace="api", window_seconds=60)
    assert [(await limiter.hit({"ip:1": 2})).allowed for _ in range(3)] == [True, True, False]
    primary.stop()
    # The secondary keeps counters of its own: a failover may let one more window through.
    assert [(await limiter.hit({"ip:1": 2})).allowed for _ in range(3)] == [True, True, False]
    secondary.stop()
    assert [(await limiter.hit({"ip:1": 2})).allowed for _ in range(3)] == [True, True, False]


def test_a_failover_cache_needs_distinct_providers() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FailoverCache([], name="x", namespace="x")
    one = RedisProvider("redis://127.0.0.1:1/0", label="primary", breaker_name="test_dupe")
    with pytest.raises(ValueError, match="differ"):
        FailoverCache([one, one], name="x", namespace="x")
    assert "127.0.0.1" not in repr(one)  # a URL may hold a password
