"""Models tried in order, each behind its own circuit breaker.

:meth:`ModelChain.run` calls ``attempt(model)`` for each model until one returns. What moves it
on is the failure's kind (``keel.core.llm.chat``):

* a server in trouble (timeout, 408/429/5xx, a mid-stream error frame): the next model at once;
  it counts in that model's breaker, and a ``Retry-After`` rests the model until then;
* a model that refuses this request (another 4xx): the next model;
* our key or account refused (401/402/403): stop, no model will do better;
* a model whose breaker is open or that is resting is skipped without a request.

When no model answered, :class:`AllModelsFailed` says why for each, and the shortest known wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from prometheus_client import Counter, Histogram

from keel.core.llm.chat import AccountRefused, ChatFailure, ModelRefused, ProviderDown
from keel.core.resilience import CircuitBreaker, CircuitOpen

log = structlog.get_logger("keel.core.llm")
T = TypeVar("T")

MODEL_CALLS = Counter(
    "keel_llm_model_calls_total",
    "Model calls by chain (product.route), model and outcome (ok, down, refused, rejected, "
    "circuit_open, resting)",
    ["chain", "model", "outcome"],
)
MODEL_CALL_SECONDS = Histogram(
    "keel_llm_model_call_seconds",
    "Time of one model call, answered or not",
    ["chain", "model"],
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0),
)


class AllModelsFailed(Exception):
    """No model in the chain answered; ``reasons`` per model, ``retry_after`` when known."""

    def __init__(self, chain: str, reasons: Sequence[str], retry_after: int | None) -> None:
        super().__init__(f"{chain}: no model answered: " + "; ".join(reasons))
        self.chain = chain
        self.reasons = tuple(reasons)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Switch:
    """The chain left ``model`` for the next one, because of ``reason``."""

    model: str
    reason: str


SwitchCallback = Callable[[Switch], Awaitable[None]]


def default_breaker(name: str) -> CircuitBreaker:
    """A breaker per model: a few failures in two minutes say enough about a chat model."""
    return CircuitBreaker(
        name,
        minimum_calls=3,
        failure_rate_threshold=0.5,
        window_seconds=120.0,
        open_seconds=60.0,
        half_open_max_calls=1,
        failure_on=(ProviderDown,),
    )


class ModelChain:
    """``models`` in order under the name ``name`` (e.g. ``coach.text``)."""

    def __init__(
        self,
        name: str,
        models: Sequence[str],
        *,
        breaker_for: Callable[[str], CircuitBreaker] = default_breaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not models:
            raise ValueError(f"{name}: a chain needs at least one model")
        self.name = name
        self.models = tuple(dict.fromkeys(models))  # a model listed twice is asked once
        self._breakers = {m: breaker_for(f"{name}.{m}") for m in self.models}
        self._resting_until: dict[str, float] = {}
        self._clock = clock

    def breaker(self, model: str) -> CircuitBreaker:
        return self._breakers[model]

    async def run(
        self, attempt: Callable[[str], Awaitable[T]], *, on_switch: SwitchCallback | None = None
    ) -> tuple[T, str]:
        """The first answer and the model that gave it. Raises :class:`AccountRefused` or
        :class:`AllModelsFailed`."""
        reasons: list[str] = []
        waits: list[float] = []
        for index, model in enumerate(self.models):
            try:
                return await self._call(model, attempt), model
            except _Skipped as exc:
                reasons.append(f"{model}: {exc}")
                if exc.retry_after is not None:
                    waits.append(exc.retry_after)
                if on_switch is not None and index + 1 < len(self.models):
                    await on_switch(Switch(model, str(exc)))
        raise AllModelsFailed(self.name, reasons, math.ceil(min(waits)) if waits else None)

    async def _call(self, model: str, attempt: Callable[[str], Awaitable[T]]) -> T:
        resting = self._resting_until.get(model, 0.0) - self._clock()
        if resting > 0:
            self._count(model, "resting")
            raise _Skipped(f"asked us to wait {resting:.0f} s", retry_after=resting)
        started = time.perf_counter()
        try:
            async with self._breakers[model].guard():
                answer = await attempt(model)
        except CircuitOpen as exc:
            self._count(model, "circuit_open")
            retry_in = exc.extra.get("retry_in")
            raise _Skipped(
                "circuit open",
                retry_after=float(retry_in) if isinstance(retry_in, int | float) else None,
            ) from exc
        except ProviderDown as exc:
            self._count(model, "down")
            log.warning("llm_model_down", chain=self.name, model=model, error=str(exc))
            if exc.retry_after:
                self._resting_until[model] = self._clock() + exc.retry_after
            raise _Skipped(str(exc), retry_after=exc.retry_after) from exc
        except ModelRefused as exc:
            self._count(model, "refused")
            log.warning("llm_model_refused", chain=self.name, model=model, error=str(exc))
            raise _Skipped(str(exc)) from exc
        except AccountRefused:
            self._count(model, "rejected")
            log.error("llm_account_refused", chain=self.name, model=model)
            raise
        finally:
            MODEL_CALL_SECONDS.labels(self.name, model).observe(time.perf_counter() - started)
        self._count(model, "ok")
        return answer

    def _count(self, model: str, outcome: str) -> None:
        MODEL_CALLS.labels(self.name, model, outcome).inc()


class _Skipped(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


__all__ = ["AllModelsFailed", "ChatFailure", "ModelChain", "Switch", "default_breaker"]
