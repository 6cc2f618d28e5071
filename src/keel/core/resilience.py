"""Circuit breaker and retry with backoff for calls to flaky dependencies.

States of :class:`CircuitBreaker` and the only transitions it makes:

* closed → open: failure (or slow-call) rate reaches its threshold in the window
* open → half_open: ``open_seconds`` have passed
* half_open → closed: every admitted probe succeeded
* half_open → open: a probe failed or was slow
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import REGISTRY, Counter, Gauge

from keel.core.errors import Unavailable

__all__ = ["CircuitBreaker", "CircuitOpen", "CircuitState", "retry"]

T = TypeVar("T")


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
        "Calls through a circuit breaker by outcome (success/failure/rejected/slow).",
        ["name", "outcome"],
    )


CIRCUIT_STATE = _state_gauge()
CIRCUIT_CALLS = _calls_counter()


@dataclass(frozen=True)
class _Permit:
    epoch: int  # state epoch at admission; outcomes from older epochs are stale
    started: float
    probe: bool


class CircuitBreaker:
    """Short-circuits calls to a dependency that is failing or too slow.

    Closed: outcomes within the last ``window_seconds`` are kept; once at least
    ``minimum_calls`` are in the window and the failure rate (or, with
    ``slow_call_seconds`` set, the slow-call rate) reaches its threshold, it
    opens. Open: calls raise :class:`CircuitOpen` for ``open_seconds``. Half
    open: up to ``half_open_max_calls`` probes are admitted; when all of them
    succeed it closes, the first failing or slow probe reopens it.

    An exception is a failure if it is an instance of ``failure_on``. Other
    ``Exception`` s mean the dependency answered and count as success; other
    ``BaseException`` s (cancellation) are not counted at all. Times are in
    seconds of ``clock``. Not thread-safe: use from one event loop.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_rate_threshold: float = 0.5,
        minimum_calls: int = 10,
        window_seconds: float = 60.0,
        slow_call_seconds: float | None = None,
        slow_call_rate_threshold: float = 1.0,
        open_seconds: float = 30.0,
        half_open_max_calls: int = 3,
        failure_on: tuple[type[BaseException], ...] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
        on_state_change: Callable[[CircuitState, CircuitState], None] | None = None,
    ) -> None:
        if not 0.0 < failure_rate_threshold <= 1.0:
            raise ValueError("failure_rate_threshold must be in (0, 1]")
        if not 0.0 < slow_call_rate_threshold <= 1.0:
            raise ValueError("slow_call_rate_threshold must be in (0, 1]")
        if minimum_calls < 1 or half_open_max_calls < 1:
            raise ValueError("minimum_calls and half_open_max_calls must be at least 1")
        if window_seconds <= 0 or open_seconds < 0:
            raise ValueError("window_seconds must be positive and open_seconds non-negative")
        self.name = name
        self.failure_rate_threshold = failure_rate_threshold
        self.minimum_calls = minimum_calls
        self.window_seconds = window_seconds
        self.slow_call_seconds = slow_call_seconds
        self.slow_call_rate_threshold = slow_call_rate_threshold
        self.open_seconds = open_seconds
        self.half_open_max_calls = half_open_max_calls
        self.failure_on = failure_on
        self._clock = clock
        self._on_state_change = on_state_change

        self._state = CircuitState.CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        # (finished_at, failed, slow) for calls completed while closed.
        self._window: deque[tuple[float, bool, bool]] = deque()
        self._failures = 0
        self._slow = 0
        self._probes_admitted = 0
        self._probes_succeeded = 0
        CIRCUIT_STATE.labels(name).set(_STATE_VALUE[self._state])

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
        """Await ``fn()`` through the breaker; raises :class:`CircuitOpen` when open."""
        async with self.guard():
            return await fn()

    @asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """Context-manager form of :meth:`call`: ``async with breaker.guard(): ...``."""
        permit = self._acquire()
        try:
            yield
        except BaseException as exc:
            self._complete(permit, exc)
            raise
        self._complete(permit, None)

    def _acquire(self) -> _Permit:
        state = self.state
        if state is CircuitState.OPEN or (
            state is CircuitState.HALF_OPEN and self._probes_admitted >= self.half_open_max_calls
        ):
            CIRCUIT_CALLS.labels(self.name, "rejected").inc()
            retry_in = max(self._opened_at + self.open_seconds - self._clock(), 0.0)
            raise CircuitOpen(
                f"circuit {self.name!r} is {state.value}", circuit=self.name, retry_in=retry_in
            )
        probe = state is CircuitState.HALF_OPEN
        if probe:
            self._probes_admitted += 1
        return _Permit(epoch=self._epoch, started=self._clock(), probe=probe)

    def _complete(self, permit: _Permit, exc: BaseException | None) -> None:
        now = self._clock()
        if exc is not None and not isinstance(exc, (*self.failure_on, Exception)):
            # Cancellation says nothing about the dependency; just free the slot.
            if permit.probe and permit.epoch == self._epoch:
                self._probes_admitted -= 1
            return
        failed = exc is not None and isinstance(exc, self.failure_on)
        slow = self.slow_call_seconds is not None and now - permit.started > self.slow_call_seconds
        outcome = "failure" if failed else "slow" if slow else "success"
        CIRCUIT_CALLS.labels(self.name, outcome).inc()

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
        self._window.append((now, failed, slow))
        self._failures += failed
        self._slow += slow
        horizon = now - self.window_seconds
        while self._window and self._window[0][0] <= horizon:
            _, old_failed, old_slow = self._window.popleft()
            self._failures -= old_failed
            self._slow -= old_slow
        total = len(self._window)
        if total < self.minimum_calls:
            return
        too_many_failures = self._failures / total >= self.failure_rate_threshold
        too_slow = (
            self.slow_call_seconds is not None
            and self._slow / total >= self.slow_call_rate_threshold
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
        self._failures = self._slow = 0
        self._probes_admitted = self._probes_succeeded = 0
        CIRCUIT_STATE.labels(self.name).set(_STATE_VALUE[new])
        if self._on_state_change is not None:
            self._on_state_change(old, new)


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
