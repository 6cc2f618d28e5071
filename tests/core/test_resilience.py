"""Circuit breaker state machine (fake clock) and retry with backoff (fake sleep)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

import keel.core.resilience as resilience
from keel.core.errors import Unavailable
from keel.core.resilience import (
    ALLOWED_TRANSITIONS,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    retry,
)

CLOSED, HALF_OPEN, OPEN = CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    pass


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise Boom("down")


_names = iter(range(10**9))


def make(clock: FakeClock, **kwargs: Any) -> CircuitBreaker:
    # Unique names keep the shared Prometheus series of different tests apart.
    name = kwargs.pop("name", f"test-{next(_names)}")
    return CircuitBreaker(name, clock=clock, **kwargs)


async def run(breaker: CircuitBreaker, fn: Callable[[], Awaitable[str]]) -> str:
    """Call through the breaker; return "ok", "fail" or "rejected"."""
    try:
        return await breaker.call(fn)
    except CircuitOpen:
        return "rejected"
    except Boom:
        return "fail"


def calls(name: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "keel_circuit_calls_total", {"name": name, "outcome": outcome}
    )
    return value or 0.0


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value("keel_circuit_state", {"name": name})


async def trip(breaker: CircuitBreaker) -> None:
    while breaker.state is not OPEN:
        await run(breaker, boom)


# --------------------------------------------------------------------------- closed → open


async def test_opens_at_failure_rate_threshold() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=4, failure_rate_threshold=0.5)
    assert b.state is CLOSED
    assert gauge(b.name) == 0
    for fn in (ok, ok, boom):
        await run(b, fn)
    assert b.state is CLOSED  # 3 calls < minimum_calls
    await run(b, boom)  # 2/4 failures = 50% ≥ threshold
    assert b.state is OPEN
    assert gauge(b.name) == 2


async def test_stays_closed_below_threshold() -> None:
    b = make(FakeClock(), minimum_calls=4, failure_rate_threshold=0.5)
    for fn in (ok, ok, ok, boom, ok, boom, ok):
        await run(b, fn)
    assert b.state is CLOSED


async def test_minimum_calls_respected() -> None:
    b = make(FakeClock(), minimum_calls=5)
    for _ in range(4):
        assert await run(b, boom) == "fail"
    assert b.state is CLOSED  # 100% failures, but only 4 calls
    await run(b, boom)
    assert b.state is OPEN


async def test_old_outcomes_drop_out_of_window() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=4, window_seconds=10)
    for _ in range(3):
        await run(b, boom)
    clock.advance(10.5)  # the three failures age out
    await run(b, boom)
    for _ in range(3):
        await run(b, ok)
    assert b.state is CLOSED  # window holds 1 failure / 4 calls


async def test_failures_within_window_accumulate() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=4, window_seconds=10)
    for _ in range(3):
        await run(b, boom)
        clock.advance(3)
    await run(b, ok)
    assert b.state is OPEN  # 3/4 failures within 10 s


async def test_slow_calls_count() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=2, slow_call_seconds=1.0, slow_call_rate_threshold=0.5)

    async def slow() -> str:
        clock.advance(2.0)
        return "ok"

    await run(b, ok)
    assert b.state is CLOSED
    assert await run(b, slow) == "ok"  # the result is still returned
    assert b.state is OPEN  # 1/2 slow ≥ 50%
    assert calls(b.name, "slow") == 1
    assert calls(b.name, "success") == 1


async def test_slow_calls_ignored_without_threshold() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=2)

    async def slow() -> str:
        clock.advance(1000.0)
        return "ok"

    for _ in range(5):
        await run(b, slow)
    assert b.state is CLOSED


async def test_failure_on_filters_exceptions() -> None:
    b = make(FakeClock(), minimum_calls=2, failure_on=(ConnectionError,))

    async def bad_input() -> str:
        raise ValueError("4xx from the dependency: it is up")

    for _ in range(5):
        with pytest.raises(ValueError, match="4xx"):
            await b.call(bad_input)
    assert b.state is CLOSED
    assert calls(b.name, "success") == 5

    async def down() -> str:
        raise ConnectionError

    for _ in range(4):
        with pytest.raises(ConnectionError):
            await b.call(down)
    assert b.state is CLOSED  # 4 failures / 9 calls
    with pytest.raises(ConnectionError):
        await b.call(down)
    assert b.state is OPEN  # 5 / 10


# --------------------------------------------------------------------------- open


async def test_rejects_while_open_without_calling() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=30)
    await trip(b)
    invoked = []

    async def spy() -> str:
        invoked.append(1)
        return "ok"

    with pytest.raises(CircuitOpen) as info:
        await b.call(spy)
    assert invoked == []
    assert isinstance(info.value, Unavailable)
    assert info.value.code == "circuit_open"
    assert info.value.status == 503
    assert info.value.extra["retry_in"] == 30
    clock.advance(29.9)
    assert await run(b, spy) == "rejected"
    assert calls(b.name, "rejected") == 2
    assert b.state is OPEN


async def test_half_open_after_open_seconds() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=30)
    await trip(b)
    clock.advance(30)
    assert b.state is HALF_OPEN
    assert gauge(b.name) == 1


# --------------------------------------------------------------------------- half-open


async def test_half_open_probe_limit_and_close_after_successes() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, half_open_max_calls=2)
    await trip(b)
    clock.advance(5)
    gate = asyncio.Event()

    async def held() -> str:
        await gate.wait()
        return "ok"

    probes = [asyncio.create_task(b.call(held)) for _ in range(2)]
    await asyncio.sleep(0)  # let both probes get admitted
    assert b.state is HALF_OPEN
    assert await run(b, ok) == "rejected"  # third concurrent call refused
    gate.set()
    assert await asyncio.gather(*probes) == ["ok", "ok"]
    assert b.state is CLOSED
    assert gauge(b.name) == 0
    assert await run(b, ok) == "ok"


async def test_closes_only_after_all_probes_succeed() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, half_open_max_calls=3)
    await trip(b)
    clock.advance(5)
    await run(b, ok)
    await run(b, ok)
    assert b.state is HALF_OPEN
    await run(b, ok)
    assert b.state is CLOSED


async def test_probe_failure_reopens() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, half_open_max_calls=3)
    await trip(b)
    clock.advance(5)
    await run(b, ok)
    assert await run(b, boom) == "fail"
    assert b.state is OPEN
    assert await run(b, ok) == "rejected"  # the open period restarted
    clock.advance(5)
    assert b.state is HALF_OPEN


async def test_slow_probe_reopens() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, slow_call_seconds=1.0)
    await trip(b)
    clock.advance(5)

    async def slow() -> str:
        clock.advance(2)
        return "ok"

    await run(b, slow)
    assert b.state is OPEN


async def test_cancelled_probe_frees_its_slot() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, half_open_max_calls=1)
    await trip(b)
    clock.advance(5)
    task = asyncio.create_task(b.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    assert await run(b, ok) == "rejected"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is HALF_OPEN  # cancellation is not a verdict
    assert await run(b, ok) == "ok"
    assert b.state is CLOSED


async def test_stale_outcome_from_previous_state_is_ignored() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5)
    gate = asyncio.Event()

    async def late_success() -> str:
        await gate.wait()
        return "ok"

    pending = asyncio.create_task(b.call(late_success))  # admitted while closed
    await asyncio.sleep(0)
    await trip(b)
    clock.advance(5)
    assert b.state is HALF_OPEN
    gate.set()
    assert await pending == "ok"
    assert b.state is HALF_OPEN  # not counted as a probe


async def test_guard_context_manager() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=2)
    async with b.guard():
        pass
    with pytest.raises(Boom):
        async with b.guard():
            raise Boom
    assert b.state is OPEN
    with pytest.raises(CircuitOpen):
        async with b.guard():
            pytest.fail("body must not run while open")


def test_invalid_configuration() -> None:
    for kwargs in (
        {"failure_rate_threshold": 0},
        {"failure_rate_threshold": 1.5},
        {"slow_call_rate_threshold": 0},
        {"minimum_calls": 0},
        {"half_open_max_calls": 0},
        {"window_seconds": 0},
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - several messages
            CircuitBreaker("bad", **kwargs)


def test_metrics_survive_reimport(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing the module a second time must not raise "Duplicated timeseries".
    spec = importlib.util.spec_from_file_location("keel_resilience_copy", resilience.__file__)
    assert spec is not None
    assert spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # dataclasses look the module up
    spec.loader.exec_module(copy)
    assert copy.CIRCUIT_STATE is resilience.CIRCUIT_STATE
    assert copy.CIRCUIT_CALLS is resilience.CIRCUIT_CALLS


# --------------------------------------------------------------------------- property


OUTCOMES = st.sampled_from(["ok", "fail", "cancel"])
action = st.one_of(
    # A whole call taking `duration` seconds (slow above 10 s).
    st.tuples(st.just("call"), OUTCOMES, st.sampled_from([0.0, 1.0, 11.0])),
    # Overlapping calls: admit now, finish one of the pending later.
    st.tuples(st.just("start")),
    st.tuples(st.just("finish"), st.integers(0, 7), OUTCOMES),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 5.0, 21.0, 31.0])),
)


@settings(max_examples=300, deadline=None)
@given(
    actions=st.lists(action, max_size=60),
    minimum_calls=st.integers(1, 5),
    half_open_max_calls=st.integers(1, 3),
)
def test_transitions_never_skip(
    actions: list[tuple[Any, ...]], minimum_calls: int, half_open_max_calls: int
) -> None:
    clock = FakeClock()
    log: list[tuple[CircuitState, CircuitState]] = []
    b = CircuitBreaker(
        "property",
        clock=clock,
        minimum_calls=minimum_calls,
        half_open_max_calls=half_open_max_calls,
        window_seconds=30,
        open_seconds=20,
        slow_call_seconds=10,
        slow_call_rate_threshold=0.8,
        on_state_change=lambda old, new: log.append((old, new)),
    )

    async def start() -> Any:
        before = b.state
        cm = b.guard()
        try:
            await cm.__aenter__()
        except CircuitOpen:
            assert before is not CLOSED  # closed never rejects
            return None
        assert before is not OPEN  # open always rejects
        return cm

    async def finish(cm: Any, outcome: str) -> None:
        if outcome == "ok":
            await cm.__aexit__(None, None, None)
        else:
            exc = Boom() if outcome == "fail" else asyncio.CancelledError()
            assert await cm.__aexit__(type(exc), exc, None) is False

    async def scenario() -> None:
        pending: list[Any] = []
        for act in actions:
            if act[0] == "call":
                cm = await start()
                if cm is not None:
                    clock.advance(act[2])
                    await finish(cm, act[1])
            elif act[0] == "start":
                cm = await start()
                if cm is not None:
                    pending.append(cm)
            elif act[0] == "finish" and pending:
                await finish(pending.pop(act[1] % len(pending)), act[2])
            elif act[0] == "advance":
                clock.advance(act[1])
            b.state  # noqa: B018 - reading applies the time-based transition

    asyncio.run(scenario())

    expected_from = CLOSED
    for old, new in log:
        assert old is expected_from, f"transition {old}->{new} does not start at {expected_from}"
        assert (old, new) in ALLOWED_TRANSITIONS
        expected_from = new
    assert b.state is expected_from
    assert gauge("property") == {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}[b.state]


# --------------------------------------------------------------------------- retry


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def flaky(failures: list[BaseException], result: str = "done") -> Callable[[], Awaitable[str]]:
    """fn that raises the given errors in order, then returns ``result``."""
    attempts: list[int] = []

    async def fn() -> str:
        attempts.append(1)
        if failures:
            raise failures.pop(0)
        return result

    fn.attempts = attempts  # type: ignore[attr-defined]
    return fn


async def test_retry_succeeds_after_failures() -> None:
    sleeps = Sleeps()
    fn = flaky([Boom(), Boom()])
    assert await retry(fn, attempts=3, sleep=sleeps, jitter=lambda: 1.0) == "done"
    assert len(fn.attempts) == 3  # type: ignore[attr-defined]
    assert sleeps.delays == pytest.approx([0.2, 0.4])


async def test_retry_first_success_does_not_sleep() -> None:
    sleeps = Sleeps()
    assert await retry(flaky([]), sleep=sleeps) == "done"
    assert sleeps.delays == []


async def test_retry_exponential_backoff_capped() -> None:
    sleeps = Sleeps()
    fn = flaky([Boom()] * 5)
    await retry(fn, attempts=6, base_delay=1.0, max_delay=5.0, sleep=sleeps, jitter=lambda: 1.0)
    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_retry_full_jitter_scales_delay() -> None:
    sleeps = Sleeps()
    jitters = iter([0.5, 0.0, 0.25])
    fn = flaky([Boom()] * 3)
    await retry(fn, attempts=4, base_delay=1.0, sleep=sleeps, jitter=lambda: next(jitters))
    assert sleeps.delays == [0.5, 0.0, 1.0]


async def test_retry_reraises_last_error() -> None:
    sleeps = Sleeps()
    errors: list[BaseException] = [Boom("first"), Boom("second"), Boom("third")]
    fn = flaky(errors)
    with pytest.raises(Boom, match="third"):
        await retry(fn, attempts=3, sleep=sleeps)
    assert len(fn.attempts) == 3  # type: ignore[attr-defined]
    assert len(sleeps.delays) == 2  # no sleep after the last attempt


async def test_retry_does_not_retry_other_errors() -> None:
    sleeps = Sleeps()
    fn = flaky([ValueError("bug")])
    with pytest.raises(ValueError, match="bug"):
        await retry(fn, retry_on=(Boom,), sleep=sleeps)
    assert len(fn.attempts) == 1  # type: ignore[attr-defined]
    assert sleeps.delays == []


async def test_retry_never_retries_circuit_open() -> None:
    sleeps = Sleeps()
    fn = flaky([CircuitOpen("open")])
    with pytest.raises(CircuitOpen):
        await retry(fn, attempts=5, retry_on=(CircuitOpen, Exception), sleep=sleeps)
    assert len(fn.attempts) == 1  # type: ignore[attr-defined]


async def test_retry_through_breaker_stops_when_circuit_opens() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=2)
    sleeps = Sleeps()
    fn = flaky([Boom()] * 10)
    with pytest.raises(CircuitOpen):
        await retry(lambda: b.call(fn), attempts=10, sleep=sleeps)
    assert len(fn.attempts) == 2  # type: ignore[attr-defined]


async def test_retry_many_attempts_do_not_overflow() -> None:
    sleeps = Sleeps()
    fn = flaky([Boom()] * 1199)
    assert await retry(fn, attempts=1200, max_delay=5.0, sleep=sleeps, jitter=lambda: 1.0)
    assert max(sleeps.delays) == 5.0


async def test_retry_requires_an_attempt() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await retry(flaky([]), attempts=0)


async def test_retry_uses_asyncio_sleep_by_default() -> None:
    fn = flaky([Boom()])
    assert await retry(fn, base_delay=0.001) == "done"
