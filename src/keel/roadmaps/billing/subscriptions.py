"""The subscription state machine, and the one transaction in which a webhook is applied.

LemonSqueezy is the authority on a subscription's status, so any status may follow any other
(it reports, we record), with two rules that keep a late or repeated report from doing harm:

* a report replaces the stored state only if it is newer (its ``updated_at``, LemonSqueezy's
  clock), so events arriving out of order never regress the state;
* ``expired`` is final: LemonSqueezy starts a new subscription for a customer who comes back.

What a state entitles its user to is :mod:`keel.roadmaps.billing.entitlements`' business.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.core import db
from keel.core.logging import get_logger
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.billing.resources import SubscriptionReport, SubscriptionStatus
from keel.roadmaps.billing.webhooks import Event, OtherEvent, PaymentEvent, SubscriptionEvent

log = get_logger("keel.roadmaps.billing")


class Outcome(enum.StrEnum):
    """What a webhook delivery did."""

    APPLIED = "applied"  # the subscription now reads as the event says
    STALE = "stale"  # an older report than the one stored (out of order): recorded, not applied
    RECORDED = "recorded"  # a payment event, kept for the record
    IGNORED = "ignored"  # an event we take no action on
    UNKNOWN_USER = "unknown_user"  # for an account that no longer exists
    DUPLICATE = "duplicate"  # this very event was processed before: nothing changed


@dataclass(frozen=True)
class Subscription:
    """A subscription as we hold it."""

    id: str
    user_id: str
    variant_id: str
    status: SubscriptionStatus
    renews_at: datetime | None
    ends_at: datetime | None
    trial_ends_at: datetime | None
    status_since: datetime  # LemonSqueezy's time of the report that set the current status
    provider_updated_at: datetime  # LemonSqueezy's time of the report applied last
    checked_at: datetime  # our time when LemonSqueezy last told us this state
    created_at: datetime


@dataclass(frozen=True)
class Transition:
    """The state after a report; ``applied`` when the report superseded the stored state."""

    state: Subscription
    applied: bool


def supersedes(stored: Subscription | None, report: SubscriptionReport) -> bool:
    """Whether ``report`` replaces ``stored`` (module docstring)."""
    if stored is None:
        return True
    if stored.status is SubscriptionStatus.EXPIRED:
        return False
    return report.updated_at > stored.provider_updated_at


def advance(
    stored: Subscription | None,
    report: SubscriptionReport,
    *,
    user_id: str,
    now: datetime,
    confirmed: bool = False,
) -> Transition:
    """The state after ``report``. ``confirmed`` marks an answer to our own question (an API
    re-check): even when it changes nothing, it confirms the stored state as of ``now``.
    ``user_id`` is used only for a subscription we did not know."""
    if stored is None:
        state = Subscription(
            id=report.id,
            user_id=user_id,
            variant_id=report.variant_id,
            status=report.status,
            renews_at=report.renews_at,
            ends_at=report.ends_at,
            trial_ends_at=report.trial_ends_at,
            status_since=report.updated_at,
            provider_updated_at=report.updated_at,
            checked_at=now,
            created_at=now,
        )
        return Transition(state, applied=True)
    if not supersedes(stored, report):
        return Transition(replace(stored, checked_at=now) if confirmed else stored, False)
    changed_status = report.status is not stored.status
    state = replace(
        stored,
        variant_id=report.variant_id,
        status=report.status,
        renews_at=report.renews_at,
        ends_at=report.ends_at,
        trial_ends_at=report.trial_ends_at,
        status_since=report.updated_at if changed_status else stored.status_since,
        provider_updated_at=report.updated_at,
        checked_at=now,
    )
    return Transition(state, applied=True)


async def record(
    conn: AsyncConnection,
    report: SubscriptionReport,
    *,
    user_id: str,
    now: datetime,
    confirmed: bool = False,
) -> Transition:
    """Apply ``report`` inside the caller's transaction. The row is locked while deciding, so
    two reports of one subscription are applied one after the other, never interleaved."""
    stored = await _locked(conn, report.id)
    if stored is None:
        first = advance(None, report, user_id=user_id, now=now)
        inserted = await conn.execute(
            db.insert(conn, models.subscriptions)
            .values(_row(first.state))
            .on_conflict_do_nothing()
            .returning(models.subscriptions.c.id)
        )
        if inserted.first() is not None:
            return first
        stored = await _locked(conn, report.id)  # a concurrent first report got in before us
        assert stored is not None
    if stored.user_id != user_id:
        log.warning(
            "lemonsqueezy_subscription_user_mismatch",
            subscription_id=report.id,
            kept=stored.user_id,
        )
    transition = advance(stored, report, user_id=stored.user_id, now=now, confirmed=confirmed)
    if transition.state != stored:
        t = models.subscriptions
        await conn.execute(update(t).where(t.c.id == stored.id).values(_row(transition.state)))
    return transition


async def handle(database: Database, event: Event, *, now: datetime) -> Outcome:
    """Apply a verified webhook event exactly once: the event's id is stored in the same
    transaction as the change it causes, so a redelivery (even a concurrent one) finds it and
    changes nothing."""
    async with database.writing() as conn:
        fresh = await conn.execute(
            db.insert(conn, models.billing_events)
            .values(
                id=event.id,
                event_name=event.name,
                webhook_id=event.webhook_id,
                subscription_id=_subscription_id(event),
                outcome="",
                received_at=now,
            )
            .on_conflict_do_nothing()
            .returning(models.billing_events.c.id)
        )
        if fresh.first() is None:
            return Outcome.DUPLICATE
        outcome = await _apply(conn, event, now)
        t = models.billing_events
        await conn.execute(update(t).where(t.c.id == event.id).values(outcome=outcome.value))
    log.info(
        "lemonsqueezy_webhook",
        event_name=event.name,
        subscription_id=_subscription_id(event),
        outcome=outcome.value,
    )
    return outcome


async def refresh(
    database: Database, stored: Subscription, report: SubscriptionReport, *, now: datetime
) -> Subscription:
    """Record the API's answer about ``stored``'s subscription; the new state."""
    async with database.writing() as conn:
        transition = await record(conn, report, user_id=stored.user_id, now=now, confirmed=True)
    return transition.state


async def of_user(conn: AsyncConnection, user_id: str) -> list[Subscription]:
    """Every subscription of ``user_id``, oldest first."""
    t = models.subscriptions
    rows = await conn.execute(
        select(t).where(t.c.user_id == user_id).order_by(t.c.created_at, t.c.id)
    )
    return [_subscription(row) for row in rows.mappings()]


async def _apply(conn: AsyncConnection, event: Event, now: datetime) -> Outcome:
    if isinstance(event, OtherEvent):
        return Outcome.IGNORED
    if isinstance(event, PaymentEvent):
        invoice = event.invoice
        await conn.execute(
            models.subscription_payments.insert().values(
                event_id=event.id,
                event_name=event.name,
                invoice_id=invoice.id,
                subscription_id=invoice.subscription_id,
                user_id=event.user_id,
                status=invoice.status,
                billing_reason=invoice.billing_reason,
                total_minor=invoice.total_minor,
                currency=invoice.currency,
                provider_updated_at=invoice.updated_at,
            )
        )
        return Outcome.RECORDED
    users = models.users
    known = await conn.execute(select(users.c.id).where(users.c.id == event.user_id))
    if known.first() is None:
        log.warning(
            "lemonsqueezy_webhook_unknown_user",
            subscription_id=event.subscription.id,
            user_id=event.user_id,
        )
        return Outcome.UNKNOWN_USER
    transition = await record(conn, event.subscription, user_id=event.user_id, now=now)
    return Outcome.APPLIED if transition.applied else Outcome.STALE


def _subscription_id(event: Event) -> str | None:
    if isinstance(event, SubscriptionEvent):
        return event.subscription.id
    if isinstance(event, PaymentEvent):
        return event.invoice.subscription_id
    return None


async def _locked(conn: AsyncConnection, subscription_id: str) -> Subscription | None:
    t = models.subscriptions
    # FOR UPDATE on PostgreSQL; SQLite has none and needs none (one writer at a time).
    rows = await conn.execute(select(t).where(t.c.id == subscription_id).with_for_update())
    row = rows.mappings().first()
    return None if row is None else _subscription(row)


def _row(state: Subscription) -> dict[str, Any]:
    return {
        "id": state.id,
        "user_id": state.user_id,
        "variant_id": state.variant_id,
        "status": state.status.value,
        "renews_at": state.renews_at,
        "ends_at": state.ends_at,
        "trial_ends_at": state.trial_ends_at,
        "status_since": state.status_since,
        "provider_updated_at": state.provider_updated_at,
        "checked_at": state.checked_at,
        "created_at": state.created_at,
    }


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row["id"],
        user_id=row["user_id"],
        variant_id=row["variant_id"],
        status=SubscriptionStatus(row["status"]),
        renews_at=row["renews_at"],
        ends_at=row["ends_at"],
        trial_ends_at=row["trial_ends_at"],
        status_since=row["status_since"],
        provider_updated_at=row["provider_updated_at"],
        checked_at=row["checked_at"],
        created_at=row["created_at"],
    )
