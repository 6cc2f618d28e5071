"""What each subscription status entitles to, and graceful degradation: an overdue subscription
is re-checked with LemonSqueezy (replayed locally); while LemonSqueezy is down the paid plan
outlives its confirmed end by the grace period, then falls back to free."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from keel.core.clock import FrozenClock
from keel.core.replicated import Database
from keel.roadmaps import models, referrals
from keel.roadmaps.billing import entitlements, subscriptions, webhooks
from keel.roadmaps.billing.entitlements import Entitlement, Source, grant
from keel.roadmaps.billing.lemonsqueezy import LemonSqueezyApi, default_breaker
from keel.roadmaps.billing.plans import GracePeriods, Plans
from keel.roadmaps.billing.resources import SubscriptionStatus
from keel.roadmaps.billing.subscriptions import Subscription
from keel.roadmaps.settings import RoadmapsSettings
from tests.replay import ReplayServer, checked, serve_recordings
from tests.roadmaps.referrals_billing_support import (
    NOW,
    RECORDINGS,
    add_users,
    refusing_url,
    subscription_event,
)

SETTINGS = RoadmapsSettings(
    lemonsqueezy_variants={"222": "pro"},
    billing_past_due_grace_hours=72,
    billing_grace_hours=48,
)
PLANS = Plans.from_settings(SETTINGS)
GRACE = GracePeriods.from_settings(SETTINGS)
RENEWS_AT = datetime(2026, 3, 10, 12, tzinfo=UTC)  # the stored period ends at NOW


@pytest.fixture(scope="module")
def _server() -> Iterator[ReplayServer]:
    with serve_recordings(RECORDINGS) as server:
        yield server


@pytest.fixture
def replay(_server: ReplayServer) -> Iterator[ReplayServer]:
    with checked(_server) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


def _api(client: httpx.AsyncClient, url: str) -> LemonSqueezyApi:
    return LemonSqueezyApi(client, SecretStr("key"), base_url=url, breaker=default_breaker())


async def _subscribed(database: Database, **attributes: object) -> str:
    """A user with subscription "1" as the webhook reported it (active, renews at NOW by
    default: the same report LemonSqueezy's API gives in ``subscription_still_overdue``)."""
    (user,) = await add_users(database, 1)
    fields: dict[str, object] = {
        "renews_at": "2026-03-10T12:00:00.000000Z",
        "updated_at": "2026-02-10T12:00:05.000000Z",
        **attributes,
    }
    body = subscription_event("subscription_created", user_id=user, **fields)  # type: ignore[arg-type]
    outcome = await subscriptions.handle(
        database, webhooks.parse(body), now=NOW - timedelta(days=28)
    )
    assert outcome is subscriptions.Outcome.APPLIED
    return user


async def _held(
    database: Database, user: str, now: datetime, source: LemonSqueezyApi | None = None
) -> Entitlement:
    return await entitlements.entitlement(
        database, PLANS, GRACE, user_id=user, now=now, source=source
    )


def _sub(status: SubscriptionStatus, **fields: object) -> Subscription:
    base: dict[str, object] = {
        "id": "1",
        "user_id": "u",
        "variant_id": "222",
        "status": status,
        "renews_at": NOW + timedelta(days=10),
        "ends_at": None,
        "trial_ends_at": None,
        "status_since": NOW,
        "provider_updated_at": NOW,
        "checked_at": NOW,
        "created_at": NOW,
    }
    return Subscription(**{**base, **fields})  # type: ignore[arg-type]


S = SubscriptionStatus
DAY = timedelta(days=1)


@pytest.mark.parametrize(
    ("sub", "at", "plan", "until", "overdue"),
    [
        (_sub(S.ON_TRIAL, trial_ends_at=NOW + 7 * DAY), NOW, "pro", NOW + 7 * DAY, False),
        (_sub(S.ON_TRIAL, trial_ends_at=NOW + 7 * DAY), NOW + 8 * DAY, "pro", NOW + 9 * DAY, True),
        (_sub(S.ACTIVE), NOW, "pro", NOW + 10 * DAY, False),
        (_sub(S.ACTIVE, renews_at=None), NOW, "pro", None, False),
        (_sub(S.ACTIVE), NOW + 11 * DAY, "pro", NOW + 12 * DAY, True),  # grace: 48 h
        (_sub(S.ACTIVE), NOW + 12 * DAY, "free", None, True),
        (_sub(S.ACTIVE, variant_id="999"), NOW, "free", NOW + 10 * DAY, False),  # unmapped
        (_sub(S.PAST_DUE), NOW + 2 * DAY, "pro", NOW + 3 * DAY, False),  # past_due: 72 h
        (_sub(S.PAST_DUE), NOW + 3 * DAY, "free", None, False),
        (_sub(S.CANCELLED, ends_at=NOW + 5 * DAY), NOW + 4 * DAY, "pro", NOW + 5 * DAY, False),
        (_sub(S.CANCELLED, ends_at=NOW + 5 * DAY), NOW + 5 * DAY, "free", None, False),
        (_sub(S.CANCELLED, ends_at=None), NOW, "free", None, False),
        (_sub(S.PAUSED), NOW, "free", None, False),
        (_sub(S.UNPAID), NOW, "free", None, False),
        (_sub(S.EXPIRED, ends_at=NOW + 5 * DAY), NOW, "free", None, False),
    ],
)
def test_each_status_entitles_as_documented(
    sub: Subscription, at: datetime, plan: str, until: datetime | None, overdue: bool
) -> None:
    granted = grant(sub, PLANS, GRACE, at)
    assert (granted.plan, granted.until, granted.overdue) == (plan, until, overdue)
    assert granted.degraded == (overdue and plan != "free")


async def test_a_user_without_a_subscription_is_free(database: Database) -> None:
    (user,) = await add_users(database, 1)
    assert await _held(database, user, NOW) == entitlements.FREE_PLAN


async def test_a_current_subscription_is_answered_locally(
    database: Database, client: httpx.AsyncClient
) -> None:
    user = await _subscribed(database, renews_at="2026-04-10T12:00:00.000000Z")
    held = await _held(database, user, NOW, _api(client, refusing_url()))
    assert (held.plan, held.source, held.until, held.degraded) == (
        "pro",
        Source.SUBSCRIPTION,
        datetime(2026, 4, 10, 12, tzinfo=UTC),
        False,
    )
    assert held.status is S.ACTIVE


async def test_an_overdue_renewal_is_re_checked_and_recorded(
    database: Database, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    user = await _subscribed(database)
    now = RENEWS_AT + timedelta(minutes=30)
    api = _api(client, replay.url("lemonsqueezy", "subscription_renewed"))
    held = await _held(database, user, now, api)
    assert (held.plan, held.until, held.degraded) == (
        "pro",
        datetime(2026, 4, 10, 12, tzinfo=UTC),
        False,
    )
    again = await _held(database, user, now + timedelta(days=1), api)  # no longer overdue
    assert again == held
    assert replay.hits[("lemonsqueezy", "subscription_renewed")] == 1
    t = models.subscriptions
    async with database.reading() as conn:
        row = (await conn.execute(select(t.c.renews_at, t.c.checked_at))).one()
    assert tuple(row) == (datetime(2026, 4, 10, 12, tzinfo=UTC), now)


async def test_an_overdue_subscription_the_provider_expired_is_free_at_once(
    database: Database, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    user = await _subscribed(database)
    api = _api(client, replay.url("lemonsqueezy", "subscription_expired"))
    held = await _held(database, user, RENEWS_AT + timedelta(minutes=30), api)
    assert held == entitlements.FREE_PLAN


@pytest.mark.parametrize("outage", ["unavailable", "refused_connection", "no_api_key"])
async def test_while_the_provider_is_down_the_plan_lasts_the_grace_period_then_ends(
    database: Database, replay: ReplayServer, client: httpx.AsyncClient, outage: str
) -> None:
    user = await _subscribed(database)
    api: LemonSqueezyApi | None = None
    if outage == "unavailable":
        api = _api(client, replay.url("lemonsqueezy", "unavailable"))
    elif outage == "refused_connection":
        api = _api(client, refusing_url())
    clock = FrozenClock(RENEWS_AT + timedelta(minutes=1))
    held = await _held(database, user, clock.now(), api)
    assert (held.plan, held.degraded, held.until) == ("pro", True, RENEWS_AT + GRACE.provider_down)
    clock.advance(GRACE.provider_down - timedelta(minutes=2))
    assert (await _held(database, user, clock.now(), api)).degraded
    clock.advance(timedelta(minutes=1))  # the grace period is over
    assert await _held(database, user, clock.now(), api) == entitlements.FREE_PLAN
    t = models.subscriptions
    async with database.reading() as conn:
        status = (await conn.execute(select(t.c.status))).scalar()
    assert status == "active"  # nothing invented while the provider could not be asked


async def test_a_lagging_provider_is_asked_again_only_after_the_recheck_interval(
    database: Database, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    user = await _subscribed(database)
    api = _api(client, replay.url("lemonsqueezy", "subscription_still_overdue"))
    clock = FrozenClock(RENEWS_AT + timedelta(minutes=1))
    for _ in range(3):
        held = await _held(database, user, clock.now(), api)
        assert (held.plan, held.degraded) == ("pro", True)
    assert replay.hits[("lemonsqueezy", "subscription_still_overdue")] == 1
    clock.advance(entitlements.RECHECK_INTERVAL)
    await _held(database, user, clock.now(), api)
    assert replay.hits[("lemonsqueezy", "subscription_still_overdue")] == 2


async def test_an_outage_opens_the_breaker_and_everyone_keeps_their_plan(
    database: Database, replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    users = [await _subscribed(database, subscription_id=str(n)) for n in range(1, 9)]
    api = _api(client, replay.url("lemonsqueezy", "outage"))  # 503 for each of them
    now = RENEWS_AT + timedelta(minutes=5)
    held = [await _held(database, user, now, api) for user in users]
    assert all(h.plan == "pro" and h.degraded for h in held)
    assert replay.hits[("lemonsqueezy", "outage")] == 4  # then the breaker opened
    assert api.breaker.state.value == "open"


async def test_a_referral_trial_is_pro_until_it_ends(database: Database) -> None:
    referrer, referred = await add_users(database, 2)
    code = await referrals.get_or_create_code(database, user_id=referrer, now=NOW)
    await referrals.record_signup(database, referred_id=referred, code=code, now=NOW)
    await referrals.complete(database, referred_id=referred, now=NOW)
    held = await _held(database, referred, NOW + timedelta(days=1))
    assert (held.plan, held.source, held.until) == (
        "pro",
        Source.REFERRAL_TRIAL,
        NOW + timedelta(days=3),
    )
    assert await _held(database, referred, NOW + timedelta(days=3)) == entitlements.FREE_PLAN


async def test_the_longest_lasting_of_equal_plans_wins(database: Database) -> None:
    user = await _subscribed(database, renews_at="2026-04-10T12:00:00.000000Z")
    async with database.writing() as conn:
        await conn.execute(
            models.rewards.insert().values(
                user_id=user,
                trial_days=60,
                credits=0,
                referrals_completed=0,
                trial_until=NOW + timedelta(days=60),
            )
        )
    held = await _held(database, user, NOW)
    assert (held.source, held.until) == (Source.REFERRAL_TRIAL, NOW + timedelta(days=60))
    later = await _held(database, user, NOW + timedelta(days=61))
    assert later == entitlements.FREE_PLAN  # the subscription's renewal is overdue by then


async def test_every_status_a_webhook_reports_maps_to_an_entitlement(database: Database) -> None:
    expected = {
        "on_trial": "pro",
        "active": "pro",
        "past_due": "pro",  # within its grace period
        "cancelled": "pro",  # until ends_at
        "paused": "free",
        "unpaid": "free",
        "expired": "free",
    }
    assert set(expected) == {s.value for s in SubscriptionStatus}
    for n, status in enumerate(expected, start=1):
        user = await _subscribed(
            database,
            subscription_id=str(n),
            status=status,
            renews_at="2026-04-10T12:00:00.000000Z",
            ends_at="2026-04-10T12:00:00.000000Z" if status in ("cancelled", "expired") else None,
            trial_ends_at="2026-03-20T12:00:00.000000Z" if status == "on_trial" else None,
            updated_at="2026-03-10T11:00:00.000000Z",
        )
        held = await _held(database, user, NOW)
        assert (status, held.plan) == (status, expected[status])
        if held.plan == "pro":
            assert held.status is SubscriptionStatus(status)
