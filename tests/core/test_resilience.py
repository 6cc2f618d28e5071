"""Circuit breaker state machine (fake clock; real event-loop time only for call timeouts),
its registry and metrics, and retry with backoff (fake sleep)."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
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
        {"window_calls": 4, "minimum_calls": 5},
        {"slow_call_seconds": 0},
        {"call_timeout_seconds": 0},
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
    window_calls=st.none() | st.integers(5, 8),
)
def test_transitions_never_skip(
    actions: list[tuple[Any, ...]],
    minimum_calls: int,
    half_open_max_calls: int,
    window_calls: int | None,
) -> None:
    clock = FakeClock()
    log: list[tuple[CircuitState, CircuitState]] = []
    b = CircuitBreaker(
        "property",
        clock=clock,
        minimum_calls=minimum_calls,
        half_open_max_calls=half_open_max_calls,
        window_seconds=30,
        window_calls=window_calls,
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


# --------------------------------------------------------------------------- count window


async def test_count_window_opens_on_the_rate_of_its_last_calls() -> None:
    clock = FakeClock()
    b = make(clock, window_calls=4, minimum_calls=4, failure_rate_threshold=0.5)
    assert b.window_type == "count"
    for fn in (boom, ok, ok, ok, ok):  # the failure is pushed out by the fifth call
        await run(b, fn)
        clock.advance(3600)  # age does not matter to a count window
    assert b.state is CLOSED
    assert b.snapshot().failures == 0
    await run(b, boom)
    assert b.state is CLOSED  # 1 of the last 4
    await run(b, boom)
    assert b.state is OPEN  # 2 of the last 4


async def test_count_window_waits_for_minimum_calls() -> None:
    b = make(FakeClock(), window_calls=10, minimum_calls=5)
    for _ in range(4):
        await run(b, boom)
    assert b.state is CLOSED
    await run(b, boom)
    assert b.state is OPEN


async def test_count_window_counts_slow_calls() -> None:
    clock = FakeClock()
    b = make(
        clock, window_calls=3, minimum_calls=3, slow_call_seconds=1.0, slow_call_rate_threshold=0.6
    )

    async def slow() -> str:
        clock.advance(1.5)
        return "ok"

    for fn in (slow, ok, slow):
        assert await run(b, fn) == "ok"
    assert b.state is OPEN  # 2/3 slow ≥ 60 %, though every call succeeded


# --------------------------------------------------------------------------- call timeout


async def test_call_timeout_cancels_the_call_and_counts_as_failure() -> None:
    # failure_on does not name TimeoutError: our own timeout is a failure anyway.
    b = make(FakeClock(), minimum_calls=2, call_timeout_seconds=0.02, failure_on=(Boom,))
    cancelled: list[bool] = []

    async def hangs() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "never"

    with pytest.raises(TimeoutError):
        await b.call(hangs)
    assert cancelled == [True]
    assert calls(b.name, "timeout") == 1
    assert b.state is CLOSED
    with pytest.raises(TimeoutError):
        await b.call(hangs)
    assert b.state is OPEN


async def test_call_timeout_applies_to_guard() -> None:
    b = make(FakeClock(), minimum_calls=1, call_timeout_seconds=0.02)
    with pytest.raises(TimeoutError):
        async with b.guard():
            await asyncio.sleep(5)
    assert b.state is OPEN


async def test_a_call_within_its_timeout_is_not_touched() -> None:
    b = make(FakeClock(), minimum_calls=1, call_timeout_seconds=5)
    assert await run(b, ok) == "ok"
    async with b.guard():
        pass
    assert b.state is CLOSED
    assert calls(b.name, "success") == 2


async def test_the_calls_own_timeout_error_follows_failure_on() -> None:
    b = make(FakeClock(), minimum_calls=1, call_timeout_seconds=5, failure_on=(Boom,))

    async def own_timeout() -> str:
        raise TimeoutError("the dependency answered: its own deadline passed")

    with pytest.raises(TimeoutError):
        await b.call(own_timeout)
    assert b.state is CLOSED  # not ours, and not in failure_on: an answer


async def test_outer_cancellation_is_not_a_timeout() -> None:
    b = make(FakeClock(), minimum_calls=1, call_timeout_seconds=5)
    task = asyncio.create_task(b.call(asyncio.Event().wait))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is CLOSED
    assert calls(b.name, "timeout") == 0


# --------------------------------------------------------------------------- no stampede


async def test_only_the_permitted_probes_reach_the_dependency_when_open_expires() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=10, half_open_max_calls=3)
    await trip(b)
    clock.advance(10)
    gate = asyncio.Event()
    reached: list[int] = []

    async def held() -> str:
        reached.append(1)
        await gate.wait()
        return "ok"

    async def attempt() -> str:
        try:
            return await b.call(held)
        except CircuitOpen:
            return "rejected"

    crowd = [asyncio.create_task(attempt()) for _ in range(100)]
    await asyncio.sleep(0.01)
    assert len(reached) == 3  # the other 97 never touched the dependency
    gate.set()
    results = await asyncio.gather(*crowd)
    assert results.count("ok") == 3
    assert results.count("rejected") == 97
    assert b.state is CLOSED


# --------------------------------------------------------------------------- snapshot, registry


async def test_snapshot_reports_window_rates_and_time_to_half_open() -> None:
    clock = FakeClock()
    changes: list[tuple[CircuitState, CircuitState]] = []
    b = make(
        clock,
        minimum_calls=4,
        window_seconds=10,
        slow_call_seconds=1.0,
        open_seconds=30,
        on_state_change=lambda old, new: changes.append((old, new)),
    )

    async def slow() -> str:
        clock.advance(2)
        return "ok"

    for fn in (ok, boom, slow):
        await run(b, fn)
    snap = b.snapshot()
    assert (snap.state, snap.window_type, snap.window_size) == (CLOSED, "time", 10)
    assert (snap.calls, snap.failures, snap.slow_calls) == (3, 1, 1)
    assert snap.failure_rate == pytest.approx(1 / 3)
    assert snap.slow_call_rate == pytest.approx(1 / 3)
    assert snap.slow_call_rate_threshold == 1.0
    assert snap.half_open_in_seconds is None
    clock.advance(20)
    assert b.snapshot().calls == 0  # aged out of the 10 s window
    await trip(b)
    clock.advance(12)
    snap = b.snapshot()
    assert snap.state is OPEN
    assert snap.half_open_in_seconds == pytest.approx(18)
    clock.advance(18)
    assert b.snapshot().state is HALF_OPEN
    assert changes == [(CLOSED, OPEN)]  # a snapshot reports; it does not transition


def test_snapshot_of_a_count_window_without_slow_threshold() -> None:
    snap = make(FakeClock(), window_calls=20).snapshot()
    assert (snap.window_type, snap.window_size, snap.calls) == ("count", 20, 0)
    assert (snap.failure_rate, snap.slow_call_rate) == (0.0, 0.0)
    assert snap.slow_call_rate_threshold is None


async def test_snapshot_counts_admitted_probes() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=1, open_seconds=5, half_open_max_calls=2)
    await trip(b)
    clock.advance(5)
    assert b.snapshot().probes_admitted == 0
    await run(b, ok)
    snap = b.snapshot()
    assert (snap.state, snap.probes_admitted, snap.half_open_max_calls) == (HALF_OPEN, 1, 2)


def test_registry_lists_live_breakers_by_prefix() -> None:
    registry = resilience.BreakerRegistry()
    clock = FakeClock()
    a = CircuitBreaker("cache:b", clock=clock, registry=registry)
    b = CircuitBreaker("cache:a", clock=clock, registry=registry)
    other = CircuitBreaker("rpc:x", clock=clock, registry=registry)
    assert registry.breakers("cache:") == [b, a]
    assert [s.name for s in registry.snapshot()] == ["cache:a", "cache:b", "rpc:x"]
    replacement = CircuitBreaker("rpc:x", clock=clock, registry=registry)
    assert registry.breakers("rpc:") == [replacement]
    del a, other, replacement
    gc.collect()
    assert registry.breakers() == [b]  # held weakly: dropped breakers disappear


async def test_every_breaker_is_in_the_default_registry_and_metrics() -> None:
    clock = FakeClock()
    b = make(clock, minimum_calls=10, open_seconds=30)
    assert b in resilience.BREAKERS.breakers(b.name)
    for fn in (ok, boom, boom, ok):
        await run(b, fn)

    def sample(metric: str) -> float | None:
        return REGISTRY.get_sample_value(metric, {"name": b.name})

    assert sample("keel_circuit_window_calls") == 4
    assert sample("keel_circuit_failure_rate") == 0.5
    assert sample("keel_circuit_slow_call_rate") == 0.0
    assert sample("keel_circuit_half_open_in_seconds") == 0.0
    await trip(b)
    clock.advance(10)
    assert sample("keel_circuit_half_open_in_seconds") == 20.0


# --------------------------------------------------------------------------- stateful model


class CountWindowMachine(RuleBasedStateMachine):
    """Sequential calls against a reference model of resilience4j's count-based window."""

    WINDOW, MINIMUM, PROBES, OPEN_SECONDS = 5, 3, 2, 10.0

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.breaker = CircuitBreaker(
            "stateful",
            clock=self.clock,
            window_calls=self.WINDOW,
            minimum_calls=self.MINIMUM,
            failure_rate_threshold=0.5,
            slow_call_seconds=1.0,
            slow_call_rate_threshold=0.6,
            open_seconds=self.OPEN_SECONDS,
            half_open_max_calls=self.PROBES,
            registry=resilience.BreakerRegistry(),
        )
        self.state = CLOSED
        self.window: deque[tuple[bool, bool]] = deque(maxlen=self.WINDOW)
        self.opened_at = 0.0
        self.succeeded = 0

    def teardown(self) -> None:
        self.loop.close()

    def _model_state(self) -> CircuitState:
        if self.state is OPEN and self.clock.now >= self.opened_at + self.OPEN_SECONDS:
            self.state, self.succeeded = HALF_OPEN, 0
        return self.state

    def _open(self) -> None:
        self.state, self.opened_at = OPEN, self.clock.now
        self.window.clear()

    @rule(outcome=st.sampled_from(["ok", "fail", "slow", "slow_fail"]))
    def call(self, outcome: str) -> None:
        expected = self._model_state()
        failed, slow = outcome.endswith("fail"), outcome.startswith("slow")

        async def fn() -> str:
            if slow:
                self.clock.advance(1.5)
            if failed:
                raise Boom
            return "ok"

        got = self.loop.run_until_complete(run(self.breaker, fn))
        if expected is OPEN:
            assert got == "rejected"
            return
        assert got == ("fail" if failed else "ok")
        if expected is HALF_OPEN:
            if failed or slow:
                self._open()
            else:
                self.succeeded += 1
                if self.succeeded == self.PROBES:
                    self.state = CLOSED
            return
        self.window.append((failed, slow))
        total = len(self.window)
        failures = sum(f for f, _ in self.window)
        slows = sum(s for _, s in self.window)
        if total >= self.MINIMUM and (failures / total >= 0.5 or slows / total >= 0.6):
            self._open()

    @rule(seconds=st.sampled_from([1.0, 4.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def agrees_with_the_model(self) -> None:
        snap = self.breaker.snapshot()
        assert snap.state is self._model_state()
        if snap.state is CLOSED:
            assert snap.calls == len(self.window)
            assert snap.failures == sum(f for f, _ in self.window)
            assert snap.slow_calls == sum(s for _, s in self.window)
        assert self.breaker.state is self._model_state()


TestCountWindowMachine = CountWindowMachine.TestCase
TestCountWindowMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)


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
