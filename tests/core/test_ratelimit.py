"""Rate limiters' behaviour, one suite over every store: memory and Redis (the ``limits``
moving window, on real time) and the database (the sliding-window counter, on SQLite and
PostgreSQL, on a clock the test moves)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData

from keel.core import db
from keel.core.clock import FrozenClock
from keel.core.ratelimit import (
    LimiterUnavailable,
    RateLimiter,
    RateLimitStore,
    SqlRateLimiter,
    WindowLimiter,
    open_limiter,
    rate_limit_table,
)
from tests.conftest import scratch_database, scratch_redis
from tests.core.cache.support import on_shared

WINDOW = 2  # seconds: short, since the window stores run on real time


@dataclass
class Subject:
    """A limiter and the time it counts by: real time, or a clock the test moves."""

    limiter: RateLimiter
    clock: FrozenClock | None = None

    def now(self) -> float:
        return self.clock.now().timestamp() if self.clock else time.time()

    async def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.clock:
            self.clock.advance(timedelta(seconds=seconds))
        else:
            await asyncio.sleep(seconds)

    async def wait_until(self, moment: float) -> None:
        await self.wait(moment - self.now())


@pytest.fixture(params=["memory", "redis", "failover", "sqlite", "postgresql"])
async def subject(request: pytest.FixtureRequest, tmp_path: object) -> AsyncIterator[Subject]:
    if request.param == "failover":  # keel.core.cache: the primary and secondary test Redis
        async with on_shared(2) as cache:
            yield Subject(cache.rate_limiter(namespace="test", window_seconds=WINDOW))
        return
    if request.param == "memory":
        limiter = WindowLimiter.in_memory(window_seconds=WINDOW)
        yield Subject(limiter)
        await limiter.aclose()
        return
    if request.param == "redis":
        async with scratch_redis() as store:
            limiter = WindowLimiter.on_redis(
                store.redis_url, namespace=store.key_prefix, window_seconds=WINDOW
            )
            yield Subject(limiter)
            await limiter.aclose()
        return
    async with scratch_database(request.param, tmp_path) as url:
        engine = db.create_engine(url)
        metadata = MetaData()
        table = rate_limit_table(metadata, "test_rate_limits")
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        # Mid-second, so that whole-second rounding of reset times shows if it is wrong.
        clock = FrozenClock(datetime(2026, 1, 1, 0, 0, 0, 300_000, tzinfo=UTC))
        sessions = db.session_factory(engine)
        yield Subject(SqlRateLimiter(table, sessions, clock, window_seconds=WINDOW), clock)
        await engine.dispose()


async def test_a_bucket_allows_its_limit_then_refuses_with_a_retry_time(subject: Subject) -> None:
    verdicts = [await subject.limiter.hit({"a": 3}) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts] == [2, 1, 0, 0]
    assert {v.limit for v in verdicts} == {3}
    refused = verdicts[-1]
    assert 1 <= refused.retry_after <= WINDOW + 1
    assert refused.reset_at >= subject.now()
    assert refused.headers() == {
        "X-RateLimit-Limit": "3",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(refused.reset_at),
    }


async def test_a_window_boundary_does_not_let_a_second_burst_through(subject: Subject) -> None:
    # One request just after a boundary of the fixed grid (so a fixed window, whether on the
    # grid or started by its first hit, opens here), the rest of the limit just before the
    # next boundary, then a second burst just after it: a fixed window would count that in
    # a fresh window and allow all 5.
    await subject.wait((WINDOW + 0.05 - subject.now() % WINDOW) % WINDOW)
    boundary = subject.now() - subject.now() % WINDOW + WINDOW
    assert (await subject.limiter.hit({"b": 5})).allowed
    await subject.wait_until(boundary - 0.3)
    assert all([(await subject.limiter.hit({"b": 5})).allowed for _ in range(4)])
    await subject.wait_until(boundary + 0.15)
    second = [(await subject.limiter.hit({"b": 5})).allowed for _ in range(5)]
    assert sum(second) <= 1  # at most the slot of the first request, a full window old
    # Once the bursts have left every window that counts them, the full limit is back.
    await subject.wait_until(boundary + 2 * WINDOW + 0.2)
    assert all([(await subject.limiter.hit({"b": 5})).allowed for _ in range(5)])


async def test_refused_requests_do_not_extend_the_lock_out(subject: Subject) -> None:
    for _ in range(3):
        assert (await subject.limiter.hit({"c": 3})).allowed
    first_refusal = await subject.limiter.hit({"c": 3})
    assert not first_refusal.allowed
    # Hammer the closed bucket until just before the time it announced (a whole second,
    # rounded up: the slot frees within the second before it).
    while subject.now() < first_refusal.reset_at - 1.3:
        again = await subject.limiter.hit({"c": 3})
        assert not again.allowed
        assert again.reset_at <= first_refusal.reset_at
        await subject.wait(0.1)
    await subject.wait_until(first_refusal.reset_at + 0.05)
    assert (await subject.limiter.hit({"c": 3})).allowed


async def test_a_refusal_by_one_bucket_charges_none_of_the_others(subject: Subject) -> None:
    both = {"key:1": 2, "business:1:test": 100}
    assert all([(await subject.limiter.hit(both)).allowed for _ in range(2)])
    for _ in range(10):
        refused = await subject.limiter.hit(both)
        assert not refused.allowed
        assert refused.limit == 2  # the verdict names the bucket that refused
    # The business bucket was charged for the two allowed requests only.
    alone = await subject.limiter.hit({"business:1:test": 100})
    assert alone.allowed
    assert alone.remaining == 100 - 3


async def test_the_tightest_bucket_speaks_for_an_allowed_request(subject: Subject) -> None:
    verdict = await subject.limiter.hit({"wide": 50, "narrow": 4})
    assert verdict.allowed
    assert (verdict.limit, verdict.remaining) == (4, 3)


async def test_concurrent_requests_get_exactly_the_limit(subject: Subject) -> None:
    # Open the store's connections first, so that the race below is between requests, not
    # between cold connects racing a 0.5 s connect timeout on a busy 2-core host (that
    # timeout has its own test: test_an_unreachable_redis_raises_limiter_unavailable).
    for attempt in range(3):
        try:
            await asyncio.gather(*(subject.limiter.hit({"warm": 1000}) for _ in range(40)))
            break
        except LimiterUnavailable:
            if attempt == 2:
                raise
    verdicts = await asyncio.gather(*(subject.limiter.hit({"race": 10}) for _ in range(40)))
    assert sum(v.allowed for v in verdicts) == 10


async def test_redis_counters_outlive_the_limiter_that_wrote_them(
    redis_store: RateLimitStore,
) -> None:
    def build() -> RateLimiter:
        clock = FrozenClock()
        # The database is never reached on a redis store; open_limiter still takes its parts.
        engine = db.create_engine("sqlite+aiosqlite://")
        return open_limiter(
            redis_store,
            namespace="test",
            window_seconds=60,
            table=rate_limit_table(MetaData(), "unused"),
            sessions=db.session_factory(engine),
            clock=clock,
        )

    first = build()
    assert all([(await first.hit({"k": 3})).allowed for _ in range(3)])
    await first.aclose()
    restarted = build()
    assert not (await restarted.hit({"k": 3})).allowed
    await restarted.aclose()


async def test_an_unreachable_redis_raises_limiter_unavailable() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    limiter = WindowLimiter.on_redis(
        "redis://127.0.0.1:1/0", namespace=f"t-{uuid.uuid4().hex}", window_seconds=60
    )
    with pytest.raises(LimiterUnavailable):
        await limiter.hit({"k": 3})
    await limiter.aclose()


async def test_an_unreachable_database_raises_limiter_unavailable() -> None:
    engine = db.create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/postgres")
    table = rate_limit_table(MetaData(), "test_rate_limits")
    limiter = SqlRateLimiter(table, db.session_factory(engine), FrozenClock(), window_seconds=60)
    with pytest.raises(LimiterUnavailable):
        await limiter.hit({"k": 3})
    await engine.dispose()
