from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import MetaData, select

from keel.core import db
from keel.core.clock import FrozenClock
from keel.core.jobs import DEAD, DONE, GiveUp, Job, JobQueue, RetryLater, Worker, jobs_table

metadata = MetaData()
table = jobs_table(metadata, "test_jobs")


@pytest.fixture
async def queue(db_url: str) -> AsyncIterator[JobQueue]:
    engine = db.create_engine(db_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield JobQueue(table, db.session_factory(engine), FrozenClock())
    await engine.dispose()


async def _enqueue(queue: JobQueue, count: int, kind: str = "work") -> None:
    async with db.transaction(queue.sessions) as session:
        for i in range(count):
            await queue.enqueue(session, kind, {"n": i})


async def test_concurrent_workers_never_claim_the_same_job(queue: JobQueue) -> None:
    await _enqueue(queue, 200)
    claimed: list[int] = []

    async def worker(name: str) -> None:
        while jobs := await queue.claim(name, lease=timedelta(minutes=1), limit=5):
            claimed.extend(job.id for job in jobs)

    await asyncio.gather(*(worker(f"w{i}") for i in range(8)))
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


async def test_a_job_in_a_rolled_back_transaction_never_exists(queue: JobQueue) -> None:
    async def failing_change() -> None:
        async with db.transaction(queue.sessions) as session:
            await queue.enqueue(session, "work", {})
            raise RuntimeError("state change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert await queue.claim("w", lease=timedelta(minutes=1)) == []


async def test_a_lapsed_lease_is_claimed_again_and_the_old_holder_cannot_finish(
    queue: JobQueue,
) -> None:
    await _enqueue(queue, 1)
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    [first] = await queue.claim("crashed", lease=timedelta(seconds=30))
    assert await queue.claim("other", lease=timedelta(seconds=30)) == []
    clock.advance(timedelta(seconds=31))
    [again] = await queue.claim("other", lease=timedelta(seconds=30))
    assert again.id == first.id
    assert again.attempts == 2
    assert not await queue.complete(first)  # fenced off: its lease is gone
    assert await queue.complete(again)


async def test_a_job_that_gives_up_is_buried_at_once(queue: JobQueue) -> None:
    await _enqueue(queue, 1, kind="flaky")
    calls: list[int] = []

    async def flaky(job: Job) -> None:
        calls.append(job.attempts)
        if job.attempts < 2:
            raise RetryLater(timedelta(0), "not yet")
        raise GiveUp("give up")

    worker = Worker(queue, {"flaky": flaky})
    await worker.drain()
    assert calls == [1, 2]
    async with queue.sessions() as session:
        status, error = (await session.execute(select(table.c.status, table.c.last_error))).one()
    assert (status, error) == (DEAD, "give up")


@pytest.mark.parametrize("failure", ["retry-later", "exception"])
async def test_every_failure_spends_an_attempt_until_max_attempts(
    queue: JobQueue, failure: str
) -> None:
    async with queue.sessions() as session, session.begin():
        await queue.enqueue(session, "stubborn", {}, max_attempts=3)
    calls: list[int] = []

    async def stubborn(job: Job) -> None:
        calls.append(job.attempts)
        if failure == "retry-later":
            raise RetryLater(timedelta(0), "not yet")
        raise RuntimeError("broken")

    await Worker(queue, {"stubborn": stubborn}).drain()
    # Retries with a zero delay run at once; the exception's backoff needs the clock moved.
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        await Worker(queue, {"stubborn": stubborn}).drain()
    assert calls == [1, 2, 3]
    async with queue.sessions() as session:
        status, error = (await session.execute(select(table.c.status, table.c.last_error))).one()
    assert status == DEAD
    assert error.endswith("(after 3 attempts)")


async def test_worker_completes_successful_jobs(queue: JobQueue) -> None:
    await _enqueue(queue, 3)
    seen: list[int] = []

    async def work(job: Job) -> None:
        seen.append(job.payload["n"])

    assert await Worker(queue, {"work": work}).drain() == 3
    assert sorted(seen) == [0, 1, 2]
    async with queue.sessions() as session:
        statuses = set((await session.execute(select(table.c.status))).scalars())
    assert statuses == {DONE}


async def test_a_crashed_workers_jobs_come_back_after_their_own_kinds_lease(
    queue: JobQueue,
) -> None:
    await _enqueue(queue, 1, kind="fast")
    await _enqueue(queue, 1, kind="slow")
    started = asyncio.Event()
    running: list[str] = []

    async def hang(job: Job) -> None:
        running.append(job.kind)
        if len(running) == 2:
            started.set()
        await asyncio.Event().wait()  # until the "crash" below

    worker = Worker(
        queue,
        {"fast": hang, "slow": hang},
        lease=timedelta(seconds=60),
        leases={"fast": timedelta(seconds=5)},
    )
    task = asyncio.create_task(worker.run_once())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()  # the worker dies holding both jobs: nothing is completed
    with pytest.raises(asyncio.CancelledError):
        await task
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(seconds=4))
    assert await queue.claim("other", lease=timedelta(seconds=30)) == []
    clock.advance(timedelta(seconds=2))
    assert [j.kind for j in await queue.claim("other", lease=timedelta(hours=1))] == ["fast"]
    clock.advance(timedelta(seconds=55))
    assert [j.kind for j in await queue.claim("other", lease=timedelta(hours=1))] == ["slow"]


async def test_per_kind_leases_keep_oldest_first_across_kinds(queue: JobQueue) -> None:
    clock = queue.clock
    assert isinstance(clock, FrozenClock)
    await _enqueue(queue, 1, kind="slow")
    clock.advance(timedelta(seconds=1))
    await _enqueue(queue, 3, kind="fast")
    order: list[str] = []

    async def record(job: Job) -> None:
        order.append(job.kind)

    worker = Worker(
        queue,
        {"fast": record, "slow": record},
        leases={"fast": timedelta(seconds=5)},
        concurrency=1,
    )
    assert await worker.drain() == 4
    # A short lease is no priority: the older job of the other kind goes first.
    assert order == ["slow", "fast", "fast", "fast"]


async def test_a_committed_enqueue_wakes_a_running_worker_at_once(queue: JobQueue) -> None:
    ran = asyncio.Event()

    async def work(job: Job) -> None:
        ran.set()

    # A poll interval of an hour: only the wake-up can make the job run within the test.
    worker = Worker(queue, {"work": work}, poll_interval=3600)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.2)  # the worker has polled once and is waiting
        woken = asyncio.Event()
        queue.listen(woken.set)

        async def rolled_back() -> None:
            async with db.transaction(queue.sessions) as session:
                await queue.enqueue(session, "work", {})
                raise RuntimeError("rolled back: nothing to wake for")

        with pytest.raises(RuntimeError):
            await rolled_back()
        assert not woken.is_set()
        await _enqueue(queue, 1)
        await asyncio.wait_for(ran.wait(), timeout=5)
    finally:
        stop.set()
        await running
    assert queue._listeners == {woken.set}  # the stopped worker no longer listens
