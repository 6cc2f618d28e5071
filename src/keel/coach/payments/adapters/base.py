"""The one interface every chain source implements, and the breaker each sits behind."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol, TypeVar

from keel.coach.payments.errors import SourceUnavailable
from keel.coach.payments.observed import Chain, ObservedPayment
from keel.core.resilience import CircuitBreaker, CircuitOpen

__all__ = ["BREAKER_PREFIX", "PaymentSource", "default_breaker", "guarded"]

T = TypeVar("T")
BREAKER_PREFIX: Final = "coach_payments:"
# One verification is a handful of calls; past this the user has been waiting too long.
CALL_TIMEOUT_SECONDS: Final = 30.0


class PaymentSource(Protocol):
    """Reads one transaction from one chain's node or explorer."""

    @property
    def chain(self) -> Chain:
        """The chain this source reads."""
        ...

    @property
    def name(self) -> str:
        """A short label for logs and metrics (never a URL: it may carry a key)."""
        ...

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """Transaction ``tx_hash`` (canonical for :attr:`chain`) as the source sees it now.
        Raises TransactionNotFound when the source has no such transaction, and
        SourceUnavailable (or a subclass) when it gave no usable answer."""
        ...


def default_breaker(source: str) -> CircuitBreaker:
    """Opens when half of at least 4 verifications within a minute found the source down;
    probes again after 30 s with one call. Only SourceUnavailable counts: "no such
    transaction" is the source working."""
    return CircuitBreaker(
        BREAKER_PREFIX + source,
        minimum_calls=4,
        failure_rate_threshold=0.5,
        window_seconds=60.0,
        open_seconds=30.0,
        half_open_max_calls=1,
        call_timeout_seconds=CALL_TIMEOUT_SECONDS,
        failure_on=(SourceUnavailable,),
    )


async def guarded(breaker: CircuitBreaker, fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()`` through ``breaker``; an open circuit or a call past the breaker's timeout is
    SourceUnavailable like any other outage, so callers handle one error family."""
    try:
        return await breaker.call(fn)
    except CircuitOpen as exc:
        raise SourceUnavailable(f"{breaker.name}: circuit open") from exc
    except TimeoutError as exc:
        raise SourceUnavailable(f"{breaker.name}: timed out") from exc
