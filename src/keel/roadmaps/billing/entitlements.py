"""Which plan a user has now: from their subscriptions as we hold them, and a referral trial.

Local state answers; LemonSqueezy is asked only when that state is overdue (an active
subscription whose ``renews_at`` has passed with no renewal reported, a trial past its end).
While it cannot be asked (down, breaker open, no API key) the plan outlives its confirmed end by
the ``provider_down`` grace period, then falls back to free: a provider outage neither cuts off
paying users nor gives the plan away for good.

What each status entitles to (see :func:`grant`):

==========  ==========================================================================
on_trial    the plan until ``trial_ends_at`` (then overdue: re-check, grace)
active      the plan until ``renews_at`` (then overdue: re-check, grace)
past_due    the plan for the ``past_due`` grace period after the payment failed
cancelled   the plan until ``ends_at`` (the period already paid for)
paused      free
unpaid      free
expired     free
==========  ==========================================================================
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from keel.core import errors
from keel.core.logging import get_logger
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.billing import subscriptions
from keel.roadmaps.billing.errors import ProviderError
from keel.roadmaps.billing.lemonsqueezy import SubscriptionSource
from keel.roadmaps.billing.plans import FREE, PRO, GracePeriods, Plans
from keel.roadmaps.billing.resources import SubscriptionStatus
from keel.roadmaps.billing.subscriptions import Subscription

log = get_logger("keel.roadmaps.billing")

# An overdue subscription is re-checked at most this often while LemonSqueezy keeps
# answering with the same overdue state (its renewals can lag by minutes).
RECHECK_INTERVAL = timedelta(minutes=15)
_NO_END = datetime.max.replace(tzinfo=UTC)


class Source(enum.StrEnum):
    FREE = "free"
    SUBSCRIPTION = "subscription"
    REFERRAL_TRIAL = "referral_trial"


@dataclass(frozen=True)
class Entitlement:
    """A user's plan now. ``until``: when it lapses unless renewed (None for free).
    ``degraded``: kept past its confirmed end because LemonSqueezy could not confirm it."""

    plan: str
    source: Source
    until: datetime | None = None
    subscription_id: str | None = None
    status: SubscriptionStatus | None = None
    degraded: bool = False


FREE_PLAN = Entitlement(FREE, Source.FREE)


@dataclass(frozen=True)
class Grant:
    """What one subscription grants at a moment. ``overdue``: LemonSqueezy should have told
    us more by now (worth asking); ``degraded``: the plan is kept only by the grace period."""

    plan: str
    until: datetime | None
    overdue: bool = False
    degraded: bool = False


def grant(sub: Subscription, plans: Plans, grace: GracePeriods, now: datetime) -> Grant:
    """What ``sub`` entitles to at ``now`` (the table in the module docstring)."""
    paid = plans.for_variant(sub.variant_id) or FREE
    status = sub.status
    if status in (SubscriptionStatus.ON_TRIAL, SubscriptionStatus.ACTIVE):
        end = sub.renews_at
        if status is SubscriptionStatus.ON_TRIAL:
            end = sub.trial_ends_at or sub.renews_at
        if end is None or now < end:
            return Grant(paid, end)
        lapse = end + grace.provider_down
        if now < lapse:
            return Grant(paid, lapse, overdue=True, degraded=True)
        return Grant(FREE, None, overdue=True)
    if status is SubscriptionStatus.PAST_DUE:
        end = sub.status_since + grace.past_due
        return Grant(paid, end) if now < end else Grant(FREE, None)
    if status is SubscriptionStatus.CANCELLED and sub.ends_at is not None and now < sub.ends_at:
        return Grant(paid, sub.ends_at)
    return Grant(FREE, None)


async def entitlement(
    database: Database,
    plans: Plans,
    grace: GracePeriods,
    *,
    user_id: str,
    now: datetime,
    source: SubscriptionSource | None = None,
) -> Entitlement:
    """The best plan ``user_id`` holds at ``now``. Reads only, unless a subscription is overdue
    and ``source`` is given: then LemonSqueezy is asked (at most every RECHECK_INTERVAL per
    subscription) and its answer recorded. Never raises for a provider failure."""
    async with database.reading() as conn:
        held = await subscriptions.of_user(conn, user_id)
        trial = await conn.execute(
            select(models.rewards.c.trial_until).where(models.rewards.c.user_id == user_id)
        )
        trial_until = trial.scalar()
    best = FREE_PLAN
    if trial_until is not None and now < trial_until:
        best = Entitlement(PRO, Source.REFERRAL_TRIAL, until=trial_until)
    for sub in held:
        granted = grant(sub, plans, grace, now)
        if granted.overdue and source is not None and now - sub.checked_at >= RECHECK_INTERVAL:
            sub = await _recheck(database, source, sub, now)
            granted = grant(sub, plans, grace, now)
        if granted.plan == FREE:
            continue
        if plans.for_variant(sub.variant_id) is None:
            log.error("lemonsqueezy_unmapped_variant", variant_id=sub.variant_id)
        candidate = Entitlement(
            granted.plan,
            Source.SUBSCRIPTION,
            until=granted.until,
            subscription_id=sub.id,
            status=sub.status,
            degraded=granted.degraded,
        )
        best = max(best, candidate, key=lambda e: _rank(plans, e))
    return best


def _rank(plans: Plans, held: Entitlement) -> tuple[int, datetime]:
    # The better plan, then the one lasting longer (no end lasts longest).
    return plans.rank(held.plan), held.until or _NO_END


async def _recheck(
    database: Database, source: SubscriptionSource, sub: Subscription, now: datetime
) -> Subscription:
    try:
        report = await source.fetch(sub.id)
    except ProviderError as exc:
        log.warning("lemonsqueezy_recheck_failed", subscription_id=sub.id, error=exc.code)
        return sub
    try:
        return await subscriptions.refresh(database, sub, report, now=now)
    except errors.Unavailable:
        # Writes refused (the primary is down): answer from what LemonSqueezy just said.
        log.warning("lemonsqueezy_recheck_unrecorded", subscription_id=sub.id)
        return subscriptions.advance(
            sub, report, user_id=sub.user_id, now=now, confirmed=True
        ).state
