"""The in-process cache's bounds and expiry, on a clock the test moves, and a stateful
model of it."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

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


KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f"])


class MemoryCacheMachine(RuleBasedStateMachine):
    """The in-process cache against a model: an ordered dict of (value, expiry), most
    recently used last, trimmed from the front past ``max_entries``."""

    MAX = 4

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = Clock()
        self.cache = MemoryCache(max_entries=self.MAX, clock=self.clock)
        self.model: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def teardown(self) -> None:
        self.loop.close()

    def _live(self, key: str) -> bytes | None:
        entry = self.model.get(key)
        if entry is None or entry[1] <= self.clock.now:
            self.model.pop(key, None)
            return None
        self.model.move_to_end(key)
        return entry[0]

    def _put(self, key: str, value: bytes, expires: float) -> None:
        self.model.pop(key, None)
        self.model[key] = (value, expires)
        while len(self.model) > self.MAX:
            self.model.popitem(last=False)

    @rule(key=KEYS, value=st.binary(max_size=8), ttl=st.sampled_from([1.0, 5.0]))
    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.loop.run_until_complete(self.cache.set(key, value, ttl_seconds=ttl))
        self._put(key, value, self.clock.now + ttl)

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        assert self.loop.run_until_complete(self.cache.get(key)) == self._live(key)

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.loop.run_until_complete(self.cache.delete(key))
        self.model.pop(key, None)

    @rule(key=st.sampled_from(["n1", "n2"]), amount=st.integers(1, 3))
    def incr(self, key: str, amount: int) -> None:
        got = self.loop.run_until_complete(self.cache.incr(key, ttl_seconds=5, amount=amount))
        current = self._live(key)
        expires = self.model[key][1] if current is not None else self.clock.now + 5
        count = int(current) + amount if current is not None else amount
        self._put(key, str(count).encode(), expires)
        assert got == count

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @invariant()
    def stays_bounded(self) -> None:
        assert len(self.cache) <= self.MAX


TestMemoryCacheMachine = MemoryCacheMachine.TestCase
TestMemoryCacheMachine.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
