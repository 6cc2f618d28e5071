"""Webhooks for merchants: endpoints, the event outbox and delivery.

An event is written in the same transaction as the payment change that causes it, together
with one delivery job per matching endpoint, so an event exists exactly when its cause
committed and a crashed worker's delivery is picked up again (see keel.core.jobs). The body is
stored once and re-sent byte for byte; each attempt is signed afresh with the current time.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import audit, lifecycle, models, presentation
from keel.coinpay.wire import dumps
from keel.core import netguard, webhooks
from keel.core.clock import Clock
from keel.core.crypto import SecretBox
from keel.core.errors import BadRequest, NotFound
from keel.core.jobs import GiveUp, Job, JobQueue, RetryLater
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.notify")

DELIVER_JOB = "webhook.deliver"
SIGNATURE_HEADER = "X-CoinPay-Signature"
ROTATION_OVERLAP = timedelta(hours=24)

DELIVERY_SECONDS = Histogram(
    "coinpay_webhook_delivery_seconds",
    "Webhook delivery latency",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERIES = Counter("coinpay_webhook_deliveries_total", "Webhook attempts", ["outcome"])


# What an endpoint can subscribe to: the payment lifecycle and configuration changes.
BUSINESS_UPDATED = "business.updated"
EVENT_TYPES: tuple[str, ...] = (*lifecycle.EVENT_TYPES, BUSINESS_UPDATED)


def _context(endpoint_id: str, which: str) -> str:
    return f"coinpay:webhook:{endpoint_id}:{which}"


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(32)


async def validate_url(
    url: str, *, allow_private: bool, lookup: netguard.Lookup = netguard.system_lookup
) -> str:
    """The URL to store, or BadRequest naming why it can never be a merchant's endpoint.

    Shape (absolute http(s), no whitespace, sane length and port) is checked here; where it
    points is judged by keel.core.netguard, the same policy delivery runs when it connects,
    on the host exactly as the HTTP client reads it. ``lookup`` resolves names (tests pass a
    fake DNS); in ``allow_private`` mode names are not looked up.
    """
    if any(c.isspace() or ord(c) < 32 for c in url.strip()):
        raise BadRequest("Webhook URL must not contain whitespace or control characters")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
    except ValueError as exc:
        raise BadRequest("Webhook URL is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("Webhook URL must be an absolute http(s) URL")
    if len(url) > 2000:
        raise BadRequest("Webhook URL is too long")
    try:
        await netguard.vet_url(url.strip(), allow_private=allow_private, lookup=lookup)
    except netguard.BlockedDestination as exc:
        raise BadRequest(
            f"Webhook URL refused: host {exc.host!r} {exc.reason}", reason=exc.reason
        ) from exc
    return url.strip()


def validate_events(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        raise BadRequest(f"Unknown event types {unknown}; known: {list(EVENT_TYPES)}")
    return sorted(set(events))


async def create_endpoint(
    session: AsyncSession,
    box: SecretBox,
    actor: audit.Actor,
    *,
    business_id: str,
    mode: str,
    url: str,
    events: list[str] | None,
    allow_private: bool,
) -> tuple[str, str]:
    """Register an endpoint for one mode's events; returns (endpoint id, its signing secret —
    shown once)."""
    endpoint_id = str(uuid.uuid4())
    secret = new_secret()
    stored_url = await validate_url(url, allow_private=allow_private)
    chosen = validate_events(events)
    await session.execute(
        models.webhook_endpoints.insert().values(
            id=endpoint_id,
            business_id=business_id,
            mode=mode,
            url=stored_url,
            events=chosen,
            secret_enc=box.encrypt(secret.encode(), context=_context(endpoint_id, "current")),
            active=True,
            created_at=actor.clock.now(),
        )
    )
    await record_change(
        session,
        actor,
        audit.Change(
            business_id, mode, "webhook.created", endpoint_id, {"url": stored_url, "events": chosen}
        ),
    )
    return endpoint_id, secret


async def _endpoint_row(
    session: AsyncSession, *, business_id: str, mode: str, endpoint_id: str
) -> Any:
    """The endpoint if it is in this business's world (business and mode); else NotFound."""
    t = models.webhook_endpoints
    row = (
        await session.execute(
            select(t).where(t.c.id == endpoint_id, t.c.business_id == business_id, t.c.mode == mode)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("Webhook endpoint not found")
    return row


async def rotate_secret(
    session: AsyncSession,
    box: SecretBox,
    actor: audit.Actor,
    *,
    business_id: str,
    mode: str,
    endpoint_id: str,
) -> str:
    """New secret; the old one keeps signing (first, before the new one) for 24 h so the
    merchant can switch without dropping events."""
    row = await _endpoint_row(session, business_id=business_id, mode=mode, endpoint_id=endpoint_id)
    old = box.decrypt(row.secret_enc, context=_context(endpoint_id, "current"))
    secret = new_secret()
    t = models.webhook_endpoints
    await session.execute(
        t.update()
        .where(t.c.id == endpoint_id)
        .values(
            secret_enc=box.encrypt(secret.encode(), context=_context(endpoint_id, "current")),
            previous_secret_enc=box.encrypt(old, context=_context(endpoint_id, "previous")),
            previous_valid_until=actor.clock.now() + ROTATION_OVERLAP,
        )
    )
    await record_change(
        session,
        actor,
        audit.Change(business_id, mode, "webhook.secret_rotated", endpoint_id, {}),
    )
    return secret


async def record_change(session: AsyncSession, actor: audit.Actor, change: audit.Change) -> None:
    """Append a configuration change to the audit log and announce it as ``business.updated``
    to the endpoints of its mode, inside the caller's transaction."""
    await audit.append(session, actor, change)
    await record_event(
        session,
        actor.queue,
        actor.clock,
        business_id=change.business_id,
        mode=change.mode,
        event_type=BUSINESS_UPDATED,
        payment_id=None,
        data={
            "action": change.action,
            "target": change.target,
            "actor": actor.id,
            "detail": dict(change.detail),
        },
    )


async def record_event(
    session: AsyncSession,
    queue: JobQueue,
    clock: Clock,
    *,
    business_id: str,
    mode: str,
    event_type: str,
    payment_id: str | None,
    data: Mapping[str, Any],
) -> str:
    """Write the event and queue its deliveries, inside the caller's transaction."""
    event_id = f"evt_{uuid.uuid4().hex}"
    now = clock.now()
    body = dumps(
        {
            "id": event_id,
            "type": event_type,
            "business_id": business_id,
            "created_at": presentation.iso(now),
            "livemode": mode == "live",
            "data": dict(data),
        }
    )
    await session.execute(
        models.webhook_events.insert().values(
            id=event_id,
            business_id=business_id,
            payment_id=payment_id,
            type=event_type,
            mode=mode,
            body=body,
            created_at=now,
        )
    )
    await _queue_deliveries(session, queue, business_id, mode, event_id, event_type)
    return event_id


async def _queue_deliveries(
    session: AsyncSession,
    queue: JobQueue,
    business_id: str,
    mode: str,
    event_id: str,
    event_type: str,
) -> int:
    """One delivery job per active endpoint of the event's world (business and mode)."""
    t = models.webhook_endpoints
    endpoints = await session.execute(
        select(t.c.id, t.c.events).where(
            t.c.business_id == business_id, t.c.mode == mode, t.c.active.is_(True)
        )
    )
    queued = 0
    for endpoint_id, events in endpoints.all():
        if events is None or event_type in events:
            await queue.enqueue(
                session,
                DELIVER_JOB,
                {"event_id": event_id, "endpoint_id": endpoint_id},
                max_attempts=webhooks.MAX_ATTEMPTS,
            )
            queued += 1
    return queued


def _secrets_for(row: Any, box: SecretBox, now: datetime) -> list[str]:
    current = box.decrypt(row.secret_enc, context=_context(row.id, "current")).decode()
    if (
        row.previous_secret_enc is not None
        and row.previous_valid_until
        and now < row.previous_valid_until
    ):
        previous = box.decrypt(row.previous_secret_enc, context=_context(row.id, "previous"))
        return [previous.decode(), current]  # newest last: the SDK reads the last v1
    return [current]


# Delivery log outcomes besides success / retry / dead: an attempt is logged as ``sending``
# before its request leaves, and one a dead worker left open reads ``interrupted``.
SENDING = "sending"
INTERRUPTED = "interrupted"
_INTERRUPTED_ERROR = "the worker stopped before this attempt finished; it may have been received"


class Deliverer:
    """The ``webhook.deliver`` job handler.

    Every attempt is logged before it is sent (``sending``, committed on its own) and closed
    with its result after, so the log lists every request a receiver may have seen, including
    one cut short by a crash: the next claim of the job closes such a leftover as
    ``interrupted``. A destination the SSRF guard refuses (private address, name that does not
    exist) is dead at once: retrying the same URL cannot succeed.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        clock: Clock,
        client: httpx.AsyncClient,
        *,
        timeout: float,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._clock = clock
        self._client = client
        self._timeout = timeout

    async def __call__(self, job: Job) -> None:
        ev, ep, dl = models.webhook_events, models.webhook_endpoints, models.webhook_deliveries
        event_id, endpoint_id = job.payload["event_id"], job.payload["endpoint_id"]
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            # This job was claimed again, so an earlier claim's open attempt is over for good.
            # (A concurrent redelivery's live attempt caught here gets its result written over
            # this when it finishes: the update below is by row id.)
            closed = await session.execute(
                dl.update()
                .where(
                    dl.c.event_id == event_id,
                    dl.c.endpoint_id == endpoint_id,
                    dl.c.outcome == SENDING,
                    dl.c.attempt < job.attempts,
                )
                .values(outcome=INTERRUPTED, error=_INTERRUPTED_ERROR)
            )
            if interrupted := getattr(closed, "rowcount", 0):
                DELIVERIES.labels(INTERRUPTED).inc(interrupted)
            event = (await session.execute(select(ev).where(ev.c.id == event_id))).one_or_none()
            endpoint = (
                await session.execute(select(ep).where(ep.c.id == endpoint_id))
            ).one_or_none()
            if event is None or endpoint is None or not endpoint.active:
                return  # deleted meanwhile: nothing to deliver
            body = event.body.encode()
            # Signed with the wall clock, not the injected one: receivers check it against theirs.
            header = webhooks.sign(body, _secrets_for(endpoint, self._box, now), int(time.time()))
            attempt_id = await session.scalar(
                dl.insert()
                .values(
                    event_id=event.id,
                    endpoint_id=endpoint.id,
                    attempt=job.attempts,
                    outcome=SENDING,
                    latency_ms=0,
                    created_at=now,
                )
                .returning(dl.c.id)
            )
        headers = {
            SIGNATURE_HEADER: header,
            "User-Agent": "CoinPay-Webhook/1.0 (Keel)",
            "X-CoinPay-Event": event.type,
            "X-CoinPay-Event-Id": event.id,
            "X-CoinPay-Delivery-Attempt": str(job.attempts),
        }
        result = await webhooks.deliver(
            self._client, endpoint.url, body, headers, timeout=self._timeout
        )
        DELIVERY_SECONDS.observe(result.latency_seconds)
        # The job's own max_attempts says when to stop; the schedule says how long to wait.
        final = result.ok or result.refused or job.attempts >= job.max_attempts
        delay = None if final else webhooks.next_retry_delay(job.attempts)
        outcome = "success" if result.ok else ("retry" if delay is not None else "dead")
        DELIVERIES.labels(outcome).inc()
        async with self._sessions() as session, session.begin():
            await session.execute(
                dl.update()
                .where(dl.c.id == attempt_id)
                .values(
                    outcome=outcome,
                    status_code=result.status_code,
                    latency_ms=int(result.latency_seconds * 1000),
                    error=result.error,
                    response_excerpt=result.response_excerpt[:1024],
                )
            )
        if result.ok:
            return
        log.info("webhook_failed", event_id=event.id, attempt=job.attempts, error=result.error)
        reason = result.error or f"HTTP {result.status_code}"
        if delay is None:
            raise GiveUp(reason)
        raise RetryLater(timedelta(seconds=delay), reason)


async def redeliver(
    session: AsyncSession, queue: JobQueue, *, business_id: str, mode: str, event_id: str
) -> int:
    """Queue an event of this business and mode again for each active matching endpoint."""
    ev = models.webhook_events
    row = (
        await session.execute(
            select(ev).where(
                ev.c.id == event_id, ev.c.business_id == business_id, ev.c.mode == mode
            )
        )
    ).one_or_none()
    if row is None:
        raise NotFound("Webhook event not found")
    return await _queue_deliveries(session, queue, business_id, mode, event_id, row.type)


def _endpoint(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "events": row.events,
        "active": row.active,
        "livemode": row.mode == "live",
    }


async def list_endpoints(
    session: AsyncSession, *, business_id: str, mode: str
) -> list[dict[str, Any]]:
    """Endpoints of a business in one mode (secrets are never shown again after creation)."""
    t = models.webhook_endpoints
    rows = await session.execute(
        select(t.c.id, t.c.url, t.c.events, t.c.active, t.c.mode)  # never the sealed secrets
        .where(t.c.business_id == business_id, t.c.mode == mode)
        .order_by(t.c.created_at, t.c.id)
    )
    return [_endpoint(r) for r in rows]


async def get_endpoint(
    session: AsyncSession, *, business_id: str, mode: str, endpoint_id: str
) -> dict[str, Any]:
    """One endpoint as stored (URL trimmed, events de-duplicated and sorted); no secret."""
    return _endpoint(
        await _endpoint_row(session, business_id=business_id, mode=mode, endpoint_id=endpoint_id)
    )


async def deactivate_endpoint(
    session: AsyncSession, actor: audit.Actor, *, business_id: str, mode: str, endpoint_id: str
) -> None:
    """Stop delivering to an endpoint; its history stays. Raises NotFound."""
    row = await _endpoint_row(session, business_id=business_id, mode=mode, endpoint_id=endpoint_id)
    if not row.active:
        return
    t = models.webhook_endpoints
    await session.execute(t.update().where(t.c.id == endpoint_id).values(active=False))
    await record_change(
        session, actor, audit.Change(business_id, mode, "webhook.deleted", endpoint_id, {})
    )


async def delivery_log(
    session: AsyncSession, *, business_id: str, mode: str, payment_id: str | None, limit: int
) -> list[dict[str, Any]]:
    """Recent events of a business in one mode, each with its delivery attempts."""
    ev, dl = models.webhook_events, models.webhook_deliveries
    query = (
        select(ev.c.id, ev.c.type, ev.c.payment_id, ev.c.created_at)
        .where(ev.c.business_id == business_id, ev.c.mode == mode)
        .order_by(ev.c.created_at.desc(), ev.c.id)
        .limit(limit)
    )
    if payment_id:
        query = query.where(ev.c.payment_id == payment_id)
    events = (await session.execute(query)).all()
    attempts = (
        await session.execute(
            select(dl).where(dl.c.event_id.in_([e.id for e in events])).order_by(dl.c.id)
        )
    ).all()
    by_event: dict[str, list[dict[str, Any]]] = {}
    for a in attempts:
        by_event.setdefault(a.event_id, []).append(
            {
                "endpoint_id": a.endpoint_id,
                "attempt": a.attempt,
                "outcome": a.outcome,
                "status_code": a.status_code,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "at": presentation.iso(a.created_at),
            }
        )
    return [
        {
            "id": e.id,
            "type": e.type,
            "payment_id": e.payment_id,
            "created_at": presentation.iso(e.created_at),
            "deliveries": by_event.get(e.id, []),
        }
        for e in events
    ]
