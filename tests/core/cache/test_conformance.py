"""One suite over every cache: in process, on one Redis, on a primary and a secondary. They
behave alike while nothing fails (test_failover.py is about failing)."""

from __future__ import annotations

import asyncio

import pytest

from keel.core.cache import Cache


async def test_a_value_is_read_back_until_it_expires(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("greeting", b"hello", ttl_seconds=0.2)
    assert await cache.get("greeting") == b"hello"
    await cache.set("greeting", b"hello again", ttl_seconds=0.2)
    assert await cache.get("greeting") == b"hello again"
    await asyncio.sleep(0.3)
    assert await cache.get("greeting") is None


async def test_json_values_round_trip(cache: Cache) -> None:
    value = {"steps": [1, 2, 3], "title": "SQL SELECT basics", "ratio": 0.5, "none": None}
    await cache.set_json("roadmap:1", value, ttl_seconds=10)
    assert await cache.get_json("roadmap:1") == value
    assert await cache.get_json("absent") is None
    await cache.set("not-json", b"\xff{", ttl_seconds=10)
    assert await cache.get_json("not-json") is None  # a miss, not an error


async def test_delete_invalidates_every_key_given(cache: Cache) -> None:
    for key in ("a", "b", "c"):
        await cache.set(key, key.encode(), ttl_seconds=10)
    await cache.delete("a", "b", "never-set")
    assert [await cache.get(k) for k in ("a", "b", "c")] == [None, None, b"c"]
    await cache.delete()  # nothing to do


async def test_counters_count_within_their_window(cache: Cache) -> None:
    assert [await cache.incr("usage", ttl_seconds=0.3) for _ in range(3)] == [1, 2, 3]
    assert await cache.incr("usage", ttl_seconds=0.3, amount=5) == 8
    await asyncio.sleep(0.4)  # the window set by the first increment has passed
    assert await cache.incr("usage", ttl_seconds=0.3) == 1


async def test_concurrent_increments_are_all_counted(cache: Cache) -> None:
    counts = await asyncio.gather(*(cache.incr("hits", ttl_seconds=10) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))


async def test_a_lock_is_held_once_until_released_or_expired(cache: Cache) -> None:
    first = await cache.acquire_lock("discover", ttl_seconds=0.3)
    assert first is not None
    assert await cache.acquire_lock("discover", ttl_seconds=0.3) is None
    assert await cache.release_lock(first)
    assert not await cache.release_lock(first)  # already released
    second = await cache.acquire_lock("discover", ttl_seconds=0.2)
    assert second is not None
    await asyncio.sleep(0.3)
    third = await cache.acquire_lock("discover", ttl_seconds=10)  # the second expired
    assert third is not None
    assert not await cache.release_lock(second)  # its token no longer holds the lock
    assert await cache.release_lock(third)


async def test_the_lock_context_says_who_holds_it(cache: Cache) -> None:
    async with cache.lock("precompute", ttl_seconds=10) as held:
        assert held
        async with cache.lock("precompute", ttl_seconds=10) as again:
            assert not again
    async with cache.lock("precompute", ttl_seconds=10) as held:
        assert held  # released on exit


async def test_concurrent_lock_attempts_let_one_through(cache: Cache) -> None:
    locks = await asyncio.gather(*(cache.acquire_lock("once", ttl_seconds=10) for _ in range(20)))
    assert sum(lock is not None for lock in locks) == 1


async def test_the_rate_limiter_allows_its_limit_then_refuses(cache: Cache) -> None:
    limiter = cache.rate_limiter(namespace="api", window_seconds=10)
    verdicts = [await limiter.hit({"client:1": 3}) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[-1].retry_after >= 1
    assert (await limiter.hit({"client:2": 3})).allowed  # another bucket


@pytest.mark.parametrize("key", ["", "~journal:primary", "x" * 513])
async def test_bad_keys_are_refused(cache: Cache, key: str) -> None:
    with pytest.raises(ValueError, match="cache keys"):
        await cache.get(key)
    with pytest.raises(ValueError, match="cache keys"):
        await cache.set(key, b"v", ttl_seconds=1)
    with pytest.raises(ValueError, match="cache keys"):
        await cache.delete("fine", key)
    with pytest.raises(ValueError, match="cache keys"):
        await cache.incr(key, ttl_seconds=1)
    with pytest.raises(ValueError, match="cache keys"):
        await cache.acquire_lock(key, ttl_seconds=1)


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), 10**9])
async def test_bad_ttls_are_refused(cache: Cache, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await cache.set("k", b"v", ttl_seconds=ttl)
    with pytest.raises(ValueError, match="ttl_seconds"):
        await cache.incr("k", ttl_seconds=ttl)
    with pytest.raises(ValueError, match="ttl_seconds"):
        await cache.acquire_lock("k", ttl_seconds=ttl)
    assert await cache.get("k") is None  # nothing was written


async def test_status_names_the_kind(cache: Cache) -> None:
    status = await cache.status()
    assert status.kind == ("memory" if not status.providers else "redis")
    assert not status.fallback_active
    assert status.pending_invalidations == 0
    for provider in status.providers:
        assert provider.breaker.state == "closed"
        assert provider.missed_writes in (None, 0)
