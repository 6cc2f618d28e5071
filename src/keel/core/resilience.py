"""Circuit breaker and retry with backoff for calls to flaky dependencies.

The breaker follows resilience4j's semantics. States of :class:`CircuitBreaker` and the only
transitions it makes:

* closed → open: failure (or slow-call) rate reaches its threshold in the sliding window,
  which holds the outcomes of the last ``window_seconds`` (time-based) or of the last
  ``window_calls`` calls (count-based), once it holds at least ``minimum_calls``
* open → half_open: ``open_seconds`` have passed
* half_open → closed: every admitted probe succeeded
* half_open → open: a probe failed or was slow

A call that outlives ``call_timeout_seconds`` is cancelled and counts as a failure. Every
breaker is listed in :data:`BREAKERS` (the status page, ``keel_circuit_*`` metrics).
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, TypeVar

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from keel.core.errors import Unavailable

__all__ = [
    "BREAKERS",
    "BreakerRegistry",
    "BreakerSnapshot",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitState",
    "retry",
]

T = TypeVar("T")
WindowType = Literal["time", "count"]


class CircuitOpen(Unavailable):
    """The circuit is open: the dependency is failing, calls are short-circuited."""

    code = "circuit_open"
    title = "Circuit open"


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


_STATE_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
# Transitions the machine may take; anything else is a bug.
ALLOWED_TRANSITIONS = frozenset(
    {
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
        (CircuitState.HALF_OPEN, CircuitState.OPEN),
    }
)


def _registered(name: str) -> object | None:
    # The default registry raises on duplicate names, which happens when this
    # module is imported twice (reload, or under two names in tests).
    return REGISTRY._names_to_collectors.get(name)


def _state_gauge() -> Gauge:
    existing = _registered("keel_circuit_state")
    if isinstance(existing, Gauge):
        return existing
    return Gauge(
        "keel_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ["name"]
    )


def _calls_counter() -> Counter:
    existing = _registered("keel_circuit_calls_total")
    if isinstance(existing, Counter):
        return existing
    return Counter(
        "keel_circuit_calls_total",
        "Calls through a circuit breaker by outcome (success/failure/timeout/rejected/slow).",
        ["name", "outcome"],
    )


CIRCUIT_STATE = _state_gauge()
CIRCUIT_CALLS = _calls_counter()


class _Permit:
    """One admitted call (a plain slotted class: a frozen dataclass costs ~1 µs a call)."""

    __slots__ = ("epoch", "probe", "started")

    def __init__(self, epoch: int, started: float, probe: bool) -> None:
        self.epoch = epoch  # state epoch at admission; outcomes from older epochs are stale
        self.started = started
        self.probe = probe


class _Window:
    """The outcomes counted while closed: those finished in the last ``seconds``, or the last
    ``calls`` of them. Running totals keep every update O(1) amortised."""

    __slots__ = ("calls", "failures", "outcomes", "seconds", "slow")

    def __init__(self, *, seconds: float, calls: int | None) -> None:
        self.seconds = seconds
        self.calls = calls
        self.outcomes: deque[tuple[float, bool, bool]] = deque()  # (finished_at, failed, slow)
        self.failures = 0
        self.slow = 0

    def add(self, now: float, failed: bool, slow: bool) -> None:
        if self.calls is not None and len(self.outcomes) >= self.calls:
            self._drop_oldest()
        self.outcomes.append((now, failed, slow))
        self.failures += failed
        self.slow += slow
        self.prune(now)

    def prune(self, now: float) -> None:
        if self.calls is not None:
            return  # a count window keeps its calls however old they are
        horizon = now - self.seconds
        while self.outcomes and self.outcomes[0][0] <= horizon:
            self._drop_oldest()

    def counts(self, now: float) -> tuple[int, int, int]:
        """(calls, failures, slow calls) in the window at ``now``, changing nothing."""
        calls, failures, slow = len(self.outcomes), self.failures, self.slow
        if self.calls is None:
            horizon = now - self.seconds
            for finished, failed, was_slow in self.outcomes:
                if finished > horizon:
                    break
                calls, failures, slow = calls - 1, failures - failed, slow - was_slow
        return calls, failures, slow

    def _drop_oldest(self) -> None:
        _, failed, slow = self.outcomes.popleft()
        self.failures -= failed
        self.slow -= slow

    def clear(self) -> None:
        self.outcomes.clear()
        self.failures = self.slow = 0


@dataclass(frozen=True)
class BreakerSnapshot:
    """One breaker as the status page and metrics show it (rates are 0 on an empty window)."""

    name: str
    state: CircuitState
    window_type: WindowType
    window_size: float  # seconds (time window) or calls (count window)
    minimum_calls: int
    calls: int  # outcomes in the window now
    failures: int
    slow_calls: int
    failure_rate: float
    slow_call_rate: float
    failure_rate_threshold: float
    slow_call_rate_threshold: float | None  # None: slow calls are not counted
    half_open_in_seconds: float | None  # while open: seconds until probes are admitted
    probes_admitted: int  # while half-open, out of half_open_max_calls
    half_open_max_calls: int


class CircuitBreaker:
    """Short-circuits calls to a dependency that is failing or too slow.

    Closed: the window keeps outcomes of the last ``window_seconds`` or, with
    ``window_calls`` set, of the last ``window_calls`` calls. Once it holds at least
    ``minimum_calls`` and the failure rate (or, with ``slow_call_seconds`` set, the slow-call
    rate) reaches its threshold, it opens. Open: calls raise :class:`CircuitOpen` for
    ``open_seconds``. Half open: up to ``half_open_max_calls`` probes are admitted and every
    other call is rejected; when all probes succeed it closes, the first failing or slow
    probe reopens it.

    With ``call_timeout_seconds`` set, a call still running after it is cancelled and raises
    :class:`TimeoutError`; that counts as a failure whatever ``failure_on`` says. A call
    taking longer than ``slow_call_seconds`` is slow even when it succeeds (its result is
    still returned).

    An exception is a failure if it is an instance of ``failure_on``. Other
    ``Exception`` s mean the dependency answered and count as success; other
    ``BaseException`` s (cancellation) are not counted at all. Times are in
    seconds of ``clock``, except the call timeout, which is the event loop's. Not
    thread-safe: use from one event loop. The breaker lists itself in ``registry`` under
    its name (a later breaker of the same name replaces it there).
    """

    def __init__(
        self,
        name: str,
        *,
        failure_rate_threshold: float = 0.5,
        minimum_calls: int = 10,
        window_seconds: float = 60.0,
        window_calls: int | None = None,
        slow_call_seconds: float | None = None,
        slow_call_rate_threshold: float = 1.0,
        open_seconds: float = 30.0,
        half_open_max_calls: int = 3,
        call_timeout_seconds: float | None = None,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
        registry: BreakerRegistry | None = None,
    ) -> None:
        if not 0.0 < failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if not 0.0 < slow_call_rate_threshold <= 1.0:
            raise ValueError("slow_call_rate_threshold must be in (0, 1]")
        if minimum_calls < 1 or half_open_max_calls < 1:
            raise ValueError("minimum_calls and half_open_max_calls must be at least 1")
        if window_seconds <= 0 or open_seconds < 0:
            raise ValueError("window_seconds must be positive and open_seconds non-negative")
        if window_calls is not None and not minimum_calls <= window_calls:
            raise ValueError("window_calls must be at least minimum_calls (or it never opens)")
        if slow_call_seconds is not None and slow_call_seconds <= 0:
            raise ValueError("slow_call_seconds must be positive")
        if call_timeout_seconds is not None and call_timeout_seconds <= 0:
            raise ValueError("call_timeout_seconds must be positive")
        self.name = name
        self.failure_rate_threshold = failure_rate_threshold
        self.minimum_calls = minimum_calls
        self.window_seconds = window_seconds
        self.window_calls = window_calls
        self.slow_call_seconds = slow_call_seconds
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.open_seconds = open_seconds
        self.half_open_max_calls = half_open_max_calls
        self.call_timeout_seconds = call_timeout_seconds
        self.failure_on = failure_on
        self._clock = clock
        self._on_state_change = on_state_change

        self._state = CircuitState.CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        self._window = _Window(seconds=window_seconds, calls=window_calls)
        self._probes_admitted = 0
        self._probes_succeeded = 0
        # Looked up once: labels() takes a lock and a dict lookup on every call otherwise.
        self._state_gauge = CIRCUIT_STATE.labels(name)
        self._outcomes = {
            outcome: CIRCUIT_CALLS.labels(name, outcome)
            for outcome in ("success", "failure", "timeout", "slow", "rejected")
        }
        self._state_gauge.set(_STATE_VALUE[self._state])
        (BREAKERS if registry is None else registry).add(self)

    @property
    def window_type(self) -> WindowType:
        return "time" if self.window_calls is None else "count"

    @property
    def state(self) -> CircuitState:
        """Current state; an expired open period turns into half-open on read."""
        if (
            self._state is CircuitState.OPEN
            and self._clock() >= self._opened_at + self.open_seconds
        ):
            self._transition(CircuitState.HALF_OPEN)
        return self._state

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` through the breaker; raises :class:`CircuitOpen` when open and
        :class:`TimeoutError` when the call outlives ``call_timeout_seconds``."""
        # Inlined rather than `async with self.guard()`: every guarded call pays this path.
        permit = self._acquire()
        timeout = self.call_timeout_seconds
        try:
            if timeout is None:
                result = await fn()
            else:
                async with asyncio.timeout(timeout) as deadline:
                    result = await fn()
        except BaseException as exc:
            self._complete(permit, exc, timed_out=timeout is not None and deadline.expired())
            raise
        self._complete(permit, None)
        return result

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Context-manager form of :meth:`call`: ``async with breaker.guard(): ...``; the
        body is cancelled when it outlives ``call_timeout_seconds``."""
        permit = self._acquire()
        timeout = self.call_timeout_seconds
        try:
            if timeout is None:
                yield
            else:
                async with asyncio.timeout(timeout) as deadline:
                    yield
        except BaseException as exc:
            self._complete(permit, exc, timed_out=timeout is not None and deadline.expired())
            raise
        self._complete(permit, None)

    def snapshot(self) -> BreakerSnapshot:
        """The breaker now, without moving it (an expired open period shows as half-open)."""
        now = self._clock()
        state = self._state
        half_open_in: float | None = None
        if state is CircuitState.OPEN:
            half_open_in = self._opened_at + self.open_seconds - now
            if half_open_in <= 0:
                state, half_open_in = CircuitState.HALF_OPEN, None
        calls, failures, slow = self._window.counts(now)
        return BreakerSnapshot(
            name=self.name,
            state=state,
            window_type=self.window_type,
            window_size=self.window_seconds if self.window_calls is None else self.window_calls,
            minimum_calls=self.minimum_calls,
            calls=calls,
            failures=failures,
            slow_calls=slow,
            failure_rate=failures / calls if calls else 0.0,
            slow_call_rate=slow / calls if calls else 0.0,
            failure_rate_threshold=self.failure_rate_threshold,
            slow_call_rate_threshold=(
                None if self.slow_call_seconds is None else self.slow_call_rate_threshold
            ),
            half_open_in_seconds=half_open_in,
            probes_admitted=self._probes_admitted if state is self._state else 0,
            half_open_max_calls=self.half_open_max_calls,
        )

    def _acquire(self) -> _Permit:
        state = self.state
        if state is CircuitState.OPEN or (
            state is CircuitState.HALF_OPEN and self._probes_admitted >= self.half_open_max_calls
        ):
            self._outcomes["rejected"].inc()
            retry_in = max(self._opened_at + self.open_seconds - self._clock(), 0.0)
            raise CircuitOpen(
                f"circuit {self.name!r} is {state.value}", circuit=self.name, retry_in=retry_in
            )
        probe = state is CircuitState.HALF_OPEN
        if probe:
            self._probes_admitted += 1
        return _Permit(self._epoch, self._clock(), probe)

    def _complete(
        self, permit: _Permit, exc: BaseException | None, timed_out: bool = False
    ) -> None:
        now = self._clock()
        if exc is not None and not timed_out and not isinstance(exc, (*self.failure_on, Exception)):
            # Cancellation says nothing about the dependency; just free the slot.
            if permit.probe and permit.epoch == self._epoch:
                self._probes_admitted -= 1
            return
        failed = timed_out or (exc is not None and isinstance(exc, self.failure_on))
        slow = self.slow_call_seconds is not None and now - permit.started > self.slow_call_seconds
        outcome = "timeout" if timed_out else "failure" if failed else "slow" if slow else "success"
        self._outcomes[outcome].inc()

        if permit.epoch != self._epoch:
            return  # admitted under an earlier state; its verdict is stale
        if self._state is CircuitState.HALF_OPEN:
            if failed or slow:
                self._trip(now)
            else:
                self._probes_succeeded += 1
                if self._probes_succeeded >= self.half_open_max_calls:
                    self._transition(CircuitState.CLOSED)
        elif self._state is CircuitState.CLOSED:
            self._record(now, failed, slow)

    def _record(self, now: float, failed: bool, slow: bool) -> None:
        window = self._window
        window.add(now, failed, slow)
        total = len(window.outcomes)
        if total < self.minimum_calls:
            return
        too_many_failures = window.failures / total >= self.failure_rate_threshold
        too_slow = (
            self.slow_call_seconds is not None
            and window.slow / total >= self.slow_call_rate_threshold
        )
        if too_many_failures or too_slow:
            self._trip(now)

    def _trip(self, now: float) -> None:
        self._opened_at = now
        self._transition(CircuitState.OPEN)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        if (old, new) not in ALLOWED_TRANSITIONS:
            raise AssertionError(f"illegal circuit transition {old} -> {new}")
        self._state = new
        self._epoch += 1
        self._window.clear()
        self._probes_admitted = self._probes_succeeded = 0
        self._state_gauge.set(_STATE_VALUE[new])
        if self._on_state_change is not None:
            self._on_state_change(old, new)


class BreakerRegistry:
    """Every live breaker by name, for the status page and the ``keel_circuit_*`` gauges.

    It holds breakers weakly: one nobody uses any more (a forgotten tracker's) drops out.
    """

    def __init__(self) -> None:
        self._by_name: weakref.WeakValueDictionary[str, CircuitBreaker] = (
            weakref.WeakValueDictionary()
        )

    def add(self, breaker: CircuitBreaker) -> None:
        self._by_name[breaker.name] = breaker

    def discard(self, breaker: CircuitBreaker) -> None:
        """Forget ``breaker`` (its owner closed) unless a newer one took its name."""
        if self._by_name.get(breaker.name) is breaker:
            del self._by_name[breaker.name]

    def breakers(self, prefix: str = "") -> list[CircuitBreaker]:
        """The live breakers whose name starts with ``prefix``, by name."""
        found = [b for name, b in list(self._by_name.items()) if name.startswith(prefix)]
        return sorted(found, key=lambda b: b.name)

    def snapshot(self, prefix: str = "") -> list[BreakerSnapshot]:
        return [b.snapshot() for b in self.breakers(prefix)]


BREAKERS = BreakerRegistry()


class _RegistryCollector(Collector):
    """Window figures of every breaker in :data:`BREAKERS`, read at scrape time (a guarded
    call updates nothing for them)."""

    def collect(self) -> Iterator[Metric]:
        gauges = {
            "calls": GaugeMetricFamily(
                "keel_circuit_window_calls", "Outcomes in the breaker's window.", labels=["name"]
            ),
            "failure_rate": GaugeMetricFamily(
                "keel_circuit_failure_rate", "Failed share of the window (0-1).", labels=["name"]
            ),
            "slow_rate": GaugeMetricFamily(
                "keel_circuit_slow_call_rate", "Slow share of the window (0-1).", labels=["name"]
            ),
            "half_open_in": GaugeMetricFamily(
                "keel_circuit_half_open_in_seconds",
                "Seconds until an open breaker admits probes (0 unless open).",
                labels=["name"],
            ),
        }
        for snap in BREAKERS.snapshot():
            gauges["calls"].add_metric([snap.name], snap.calls)
            gauges["failure_rate"].add_metric([snap.name], snap.failure_rate)
            gauges["slow_rate"].add_metric([snap.name], snap.slow_call_rate)
            gauges["half_open_in"].add_metric([snap.name], snap.half_open_in_seconds or 0.0)
        yield from gauges.values()


if _registered("keel_circuit_window_calls") is None:
    REGISTRY.register(_RegistryCollector())


async def retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """Await ``fn()`` up to ``attempts`` times; return its first result.

    Before retry *n* (1-based) it sleeps ``jitter() * min(max_delay, base_delay
    * 2**(n-1))`` seconds ("full jitter", so synchronized clients spread out).
    Errors outside ``retry_on``, and :class:`CircuitOpen` always (the breaker
    has already decided), propagate at once; after the last attempt the last
    error is re-raised.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except CircuitOpen:
            raise
        except retry_on:
            if attempt + 1 >= attempts:
                raise
        # Cap the exponent: 2**1100 overflows a float long before max_delay matters.
        cap = min(max_delay, base_delay * 2.0 ** min(attempt, 64))
        await sleep(jitter() * cap)
    raise AssertionError("unreachable")  # pragma: no cover
