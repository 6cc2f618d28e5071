"""The in-process cache's bounds and expiry, on a clock the test moves."""

from __future__ import annotations

import pytest

from keel.core.cache import MemoryCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_the_least_recently_used_value_goes_past_max_entries() -> None:
    cache = MemoryCache(max_entries=3, clock=Clock())
    for key in ("a", "b", "c"):
        await cache.set(key, b"1", ttl_seconds=60)
    assert await cache.get("a") == b"1"  # a is now the most recently used
    await cache.set("d", b"1", ttl_seconds=60)
    assert [await cache.get(k) for k in ("a", "b", "c", "d")] == [b"1", None, b"1", b"1"]
    assert len(cache) == 3


async def test_values_are_bounded_by_bytes_too() -> None:
    cache = MemoryCache(max_bytes=100, clock=Clock())
    await cache.set("a", b"x" * 40, ttl_seconds=60)
    await cache.set("b", b"x" * 40, ttl_seconds=60)
    await cache.set("c", b"x" * 40, ttl_seconds=60)  # 123 bytes with the keys: a goes
    assert await cache.get("a") is None
    assert await cache.get("c") is not None
    await cache.set("huge", b"x" * 200, ttl_seconds=60)  # never fits: not stored
    assert await cache.get("huge") is None
    assert await cache.get("c") is not None  # and it evicted nothing


async def test_values_and_counters_expire_on_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    await cache.set("v", b"1", ttl_seconds=10)
    assert await cache.incr("n", ttl_seconds=10) == 1
    clock.now += 9
    assert await cache.incr("n", ttl_seconds=10) == 2  # keeps the first increment's expiry
    assert await cache.get("v") == b"1"
    clock.now += 1
    assert await cache.get("v") is None
    assert await cache.incr("n", ttl_seconds=10) == 1
    assert len(cache) == 1


async def test_locks_survive_eviction_and_expire_on_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(max_entries=1, clock=clock)
    lock = await cache.acquire_lock("job", ttl_seconds=5)
    assert lock is not None
    for key in ("a", "b"):
        await cache.set(key, b"1", ttl_seconds=60)
    assert await cache.acquire_lock("job", ttl_seconds=5) is None
    clock.now += 5
    assert await cache.acquire_lock("job", ttl_seconds=5) is not None
    assert not await cache.release_lock(lock)


async def test_incrementing_a_value_that_is_no_counter_is_a_bug() -> None:
    cache = MemoryCache()
    await cache.set("text", b"hello", ttl_seconds=60)
    with pytest.raises(ValueError, match="invalid literal"):
        await cache.incr("text", ttl_seconds=60)


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryCache(max_entries=0)
    with pytest.raises(ValueError, match="at least 1"):
        MemoryCache(max_bytes=0)
