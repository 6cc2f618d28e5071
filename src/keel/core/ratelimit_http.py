"""Rate limits over HTTP: count a request, refuse it with a 429 problem, and put the caller's
``X-RateLimit-*`` headers on every reply (errors included)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.errors import RateLimited
from keel.core.logging import get_logger
from keel.core.ratelimit import LimiterUnavailable, RateLimiter

log = get_logger("keel.ratelimit")

RATE_LIMIT_DECISIONS = Counter(
    "keel_ratelimit_decisions_total",
    "Requests counted by a rate limiter: allowed, refused, or let by because its store failed",
    ["app", "outcome"],
)
_STATE_KEY = "ratelimit_headers"


async def enforce(
    request: Request, limiter: RateLimiter, limits: Mapping[str, int], *, app: str
) -> None:
    """Count the request against ``limits`` (bucket -> requests per window); raise
    :class:`RateLimited` when a bucket is full. A store that cannot be reached lets the
    request by (logged and counted): rate limits protect the service, they must not be
    the reason it is down."""
    try:
        verdict = await limiter.hit(limits)
    except LimiterUnavailable as exc:
        log.warning("ratelimit_store_unavailable", app=app, error=str(exc))
        RATE_LIMIT_DECISIONS.labels(app, "unavailable").inc()
        return
    request.scope.setdefault("state", {})[_STATE_KEY] = verdict.headers()
    if verdict.allowed:
        RATE_LIMIT_DECISIONS.labels(app, "allowed").inc()
        return
    RATE_LIMIT_DECISIONS.labels(app, "refused").inc()
    raise RateLimited(
        f"Rate limit of {verdict.limit} requests per {limiter.window_seconds} s exceeded",
        retry_after=verdict.retry_after,
    )


class RateLimitHeaders:
    """Copies the caller's rate-limit state onto every response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get(_STATE_KEY)
                if extra:
                    headers = list(message.get("headers", []))
                    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_limits)
