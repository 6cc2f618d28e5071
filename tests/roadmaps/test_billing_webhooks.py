"""POST /api/billing/lemonsqueezy/webhook: signatures, exactly-once application, payments,
out-of-order reports, and bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from keel.core.clock import FrozenClock
from keel.core.replicated import Database
from keel.roadmaps import models
from keel.roadmaps.app import create_app
from keel.roadmaps.billing import webhooks
from keel.roadmaps.billing.errors import InvalidSignature, MalformedWebhook
from keel.roadmaps.bootstrap import Roadmaps
from keel.roadmaps.settings import RoadmapsSettings
from tests.roadmaps.referrals_billing_support import (
    NOW,
    SECRET,
    add_users,
    payment_event,
    subscription_event,
)

PATH = "/api/billing/lemonsqueezy/webhook"


@dataclass
class Harness:
    client: httpx.AsyncClient
    database: Database
    user: str

    async def send(self, body: bytes, *, secret: str = SECRET) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Signature": webhooks.sign(body, secret)}
        return await self.client.post(PATH, content=body, headers=headers)

    async def count(self, table: object) -> int:
        async with self.database.reading() as conn:
            return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]

    async def subscription(self, subscription_id: str = "1") -> dict[str, object] | None:
        t = models.subscriptions
        async with self.database.reading() as conn:
            row = (await conn.execute(select(t).where(t.c.id == subscription_id))).mappings()
            found = row.first()
        return None if found is None else dict(found)


async def _harness(db_url: str, tmp_path: Path, secret: str | None) -> AsyncIterator[Harness]:
    settings = RoadmapsSettings(
        database_url=db_url,
        lemonsqueezy_signing_secret=SecretStr(secret) if secret else None,
        lemonsqueezy_variants={"222": "pro"},
    )
    product = create_app(settings, data_dir=str(tmp_path), clock=FrozenClock(NOW))
    async with product.lifespan():
        wired: Roadmaps = product.app.state.roadmaps
        (user,) = await add_users(wired.database, 1)
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://roadmaps") as client:
            yield Harness(client, wired.database, user)


@pytest.fixture
async def harness(db_url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    async for h in _harness(db_url, tmp_path, SECRET):
        yield h


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Harness]:
    """For input refused before any state changes: SQLite is enough."""
    async for h in _harness(f"sqlite+aiosqlite:///{tmp_path}/edge.db", tmp_path, SECRET):
        yield h


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["code"] == code
    return body


async def test_a_signed_subscription_event_is_applied(harness: Harness) -> None:
    body = subscription_event("subscription_created", user_id=harness.user)
    response = await harness.send(body)
    assert response.status_code == 200
    assert response.json() == {"outcome": "applied"}
    stored = await harness.subscription()
    assert stored is not None
    assert stored["user_id"] == harness.user
    assert stored["status"] == "active"
    assert stored["variant_id"] == "222"
    assert stored["renews_at"] == datetime(2026, 4, 10, 12, tzinfo=UTC)
    assert stored["checked_at"] == NOW


async def test_a_replayed_event_is_applied_once(harness: Harness) -> None:
    body = subscription_event("subscription_created", user_id=harness.user)
    first = await harness.send(body)
    again = await harness.send(body)
    assert (first.json(), again.json()) == ({"outcome": "applied"}, {"outcome": "duplicate"})
    assert await harness.count(models.billing_events) == 1


async def test_concurrent_deliveries_of_one_event_apply_it_once(harness: Harness) -> None:
    body = payment_event("subscription_payment_success", user_id=harness.user)
    replies = await asyncio.gather(*(harness.send(body) for _ in range(6)))
    outcomes = sorted(r.json()["outcome"] for r in replies)
    assert outcomes == ["duplicate"] * 5 + ["recorded"]
    assert await harness.count(models.subscription_payments) == 1


async def test_an_older_report_arriving_late_does_not_regress_the_state(harness: Harness) -> None:
    created = subscription_event(
        "subscription_created", user_id=harness.user, updated_at="2026-03-10T12:00:00Z"
    )
    cancelled = subscription_event(
        "subscription_cancelled",
        user_id=harness.user,
        status="cancelled",
        ends_at="2026-04-10T12:00:00.000000Z",
        updated_at="2026-03-12T09:30:00Z",
    )
    assert (await harness.send(cancelled)).json() == {"outcome": "applied"}
    assert (await harness.send(created)).json() == {"outcome": "stale"}
    stored = await harness.subscription()
    assert stored is not None
    assert stored["status"] == "cancelled"
    assert stored["ends_at"] == datetime(2026, 4, 10, 12, tzinfo=UTC)
    assert await harness.count(models.billing_events) == 2  # both were received


async def test_expired_is_final(harness: Harness) -> None:
    expired = subscription_event(
        "subscription_expired",
        user_id=harness.user,
        status="expired",
        updated_at="2026-03-11T00:00:00Z",
    )
    resumed = subscription_event(
        "subscription_resumed", user_id=harness.user, updated_at="2026-03-12T00:00:00Z"
    )
    await harness.send(expired)
    assert (await harness.send(resumed)).json() == {"outcome": "stale"}
    stored = await harness.subscription()
    assert stored is not None
    assert stored["status"] == "expired"


async def test_payment_events_are_recorded_in_minor_units(harness: Harness) -> None:
    names = sorted(webhooks.PAYMENT_EVENTS)
    for name in names:
        body = payment_event(name, user_id=harness.user, total=1299)
        assert (await harness.send(body)).json() == {"outcome": "recorded"}
    t = models.subscription_payments
    async with harness.database.reading() as conn:
        rows = (await conn.execute(select(t).order_by(t.c.event_name))).mappings().all()
    assert [row["event_name"] for row in rows] == names
    for row in rows:
        assert (row["invoice_id"], row["subscription_id"]) == ("77", "1")
        assert row["user_id"] == harness.user
        assert (row["total_minor"], row["currency"]) == (1299, "USD")


async def test_events_we_do_not_act_on_are_acknowledged(harness: Harness) -> None:
    body = json.dumps(
        {"meta": {"event_name": "order_created"}, "data": {"type": "orders", "id": "1"}}
    ).encode()
    assert (await harness.send(body)).json() == {"outcome": "ignored"}
    assert await harness.count(models.billing_events) == 1


async def test_an_event_for_an_account_that_is_gone_is_acknowledged(harness: Harness) -> None:
    body = subscription_event("subscription_updated", user_id="f" * 32)
    assert (await harness.send(body)).json() == {"outcome": "unknown_user"}
    assert await harness.subscription() is None


async def test_missing_wrong_and_garbled_signatures_are_refused_alike(edge: Harness) -> None:
    body = subscription_event("subscription_created", user_id=edge.user)
    good = webhooks.sign(body, SECRET)
    attempts = [
        {},
        {"X-Signature": ""},
        {"X-Signature": webhooks.sign(body, "another-secret")},
        {"X-Signature": good[:-1]},
        {"X-Signature": "zz" + good[2:]},
        {"X-Signature": good + "00"},
    ]
    details = set()
    for headers in attempts:
        response = await edge.client.post(PATH, content=body, headers=headers)
        details.add(_problem(response, 401, "webhook_signature_invalid")["detail"])
    assert len(details) == 1  # nothing says which part failed
    tampered = body.replace(b'"active"', b'"paused"')
    response = await edge.client.post(PATH, content=tampered, headers={"X-Signature": good})
    _problem(response, 401, "webhook_signature_invalid")
    assert await edge.count(models.billing_events) == 0


async def test_an_upper_case_signature_is_the_same_signature(edge: Harness) -> None:
    body = subscription_event("subscription_created", user_id=edge.user)
    signature = webhooks.sign(body, SECRET).upper()
    response = await edge.client.post(PATH, content=body, headers={"X-Signature": signature})
    assert response.json() == {"outcome": "applied"}


async def test_without_a_signing_secret_every_webhook_is_refused(tmp_path: Path) -> None:
    async for harness in _harness(f"sqlite+aiosqlite:///{tmp_path}/t.db", tmp_path, None):
        body = subscription_event("subscription_created", user_id=harness.user)
        _problem(await harness.send(body), 401, "webhook_signature_invalid")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"data": {}}', "meta"),
        (b'{"meta": {"event_name": 7}}', "meta.event_name"),
        (b'{"meta": {"event_name": "Subscription Created"}}', "meta.event_name"),
    ],
)
async def test_a_signed_body_that_is_not_an_event_is_a_400(
    edge: Harness, body: bytes, detail: str
) -> None:
    problem = _problem(await edge.send(body), 400, "webhook_malformed")
    assert detail in str(problem["detail"])
    assert await edge.count(models.billing_events) == 0


def _mangled(user: str, path: tuple[str, ...], value: object) -> bytes:
    body = json.loads(subscription_event("subscription_updated", user_id=user))
    target = body
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("path", "value", "detail"),
    [
        (("meta", "custom_data"), KeyError, "meta.custom_data.user_id"),
        (("meta", "custom_data", "user_id"), "../../etc", "meta.custom_data.user_id"),
        (("data",), KeyError, "data"),
        (("data", "type"), "orders", "data.type"),
        (("data", "id"), None, "data.id"),
        (("data", "attributes", "status"), "frozen", "status"),
        (("data", "attributes", "status"), KeyError, "status"),
        (("data", "attributes", "variant_id"), -1, "variant_id"),
        (("data", "attributes", "updated_at"), "yesterday", "updated_at"),
        (("data", "attributes", "updated_at"), "2026-03-10T12:00:00", "updated_at"),
        (("data", "attributes", "renews_at"), 1773144000, "renews_at"),
    ],
)
async def test_a_subscription_event_missing_what_we_need_is_a_400(
    edge: Harness, path: tuple[str, ...], value: object, detail: str
) -> None:
    problem = _problem(await edge.send(_mangled(edge.user, path, value)), 400, "webhook_malformed")
    assert detail in str(problem["detail"])
    assert await edge.subscription() is None


async def test_a_payment_event_with_a_fractional_total_is_a_400(edge: Harness) -> None:
    body = json.loads(payment_event("subscription_payment_success", user_id=edge.user))
    body["data"]["attributes"]["total"] = 9.99
    _problem(await edge.send(json.dumps(body).encode()), 400, "webhook_malformed")


async def test_an_oversized_body_is_a_413(edge: Harness) -> None:
    body = b"{" + b" " * (300 * 1024) + b"}"
    _problem(await edge.send(body), 413, "body_too_large")


async def test_only_post_is_served(edge: Harness) -> None:
    response = await edge.client.get(PATH)
    assert response.status_code == 405


def test_verification_and_parsing_without_http() -> None:
    body = subscription_event("subscription_paused", user_id="u1", status="paused")
    webhooks.verify(body, webhooks.sign(body, SECRET), SecretStr(SECRET))
    with pytest.raises(InvalidSignature):
        webhooks.verify(body, webhooks.sign(body, SECRET), None)
    event = webhooks.parse(body)
    assert isinstance(event, webhooks.SubscriptionEvent)
    assert event.id == webhooks.event_id(body)
    assert event.webhook_id == "8d1a6c9e-5b8f-4d7c-9f51-2a8e0c0f6a11"
    assert (event.user_id, event.subscription.status.value) == ("u1", "paused")
    payment = webhooks.parse(payment_event("subscription_payment_failed", user_id=None))
    assert isinstance(payment, webhooks.PaymentEvent)
    assert payment.user_id is None
    with pytest.raises(MalformedWebhook):
        webhooks.parse(b'{"meta": {"event_name": "subscription_created"}, "data": null}')


async def test_the_route_is_documented_with_its_errors(edge: Harness) -> None:
    document = (await edge.client.get("/openapi.json")).json()
    operation = document["paths"][PATH]["post"]
    assert {"400", "401", "413"} <= operation["responses"].keys()
    assert "application/json" in operation["requestBody"]["content"]
