"""``POST /coinpay/webhook``: the signature first, then the body, then exactly-once."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from keel.coach.api import coinpay_webhook
from keel.coach.billing import coinpay
from keel.coach.billing.coinpay import Outcome, Plan
from keel.coach.billing.invoices import Invoice
from keel.coach.settings import CoachSettings
from keel.core import webhooks
from keel.core.app import RequestContextMiddleware, install_problem_handlers
from keel.core.clock import FrozenClock
from tests.coach.billing.conftest import NOW, MakeUser, Sessions, paid_until
from tests.coach.billing.fake_coinpay import FakeCoinpay

SECRET = "whsec_" + "ab" * 32


@dataclass
class Context:
    """A CoinpayWebhookContext for tests."""

    sessions: Sessions
    settings: CoachSettings
    clock: FrozenClock = field(default_factory=lambda: FrozenClock(NOW))
    told: list[Outcome] = field(default_factory=list)
    fail_notify: bool = False

    async def _notify(self, outcome: Outcome) -> None:
        self.told.append(outcome)
        if self.fail_notify:
            raise RuntimeError("Telegram is down")

    @property
    def notify(self) -> Any:
        return self._notify


@dataclass
class Hook:
    client: httpx.AsyncClient
    context: Context

    async def post(
        self, body: bytes, *, secret: str = SECRET, at: int | None = None, header: Any = ...
    ) -> httpx.Response:
        signature = webhooks.sign(body, [secret], int(time.time()) if at is None else at)
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["X-CoinPay-Signature"] = signature if header is ... else header
        return await self.client.post("/coinpay/webhook", content=body, headers=headers)


@pytest.fixture
async def hook(sessions: Sessions) -> AsyncIterator[Hook]:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, app_name="coach")
    app.include_router(coinpay_webhook.router)
    context = Context(sessions, CoachSettings(coinpay_webhook_secret=SecretStr(SECRET)))
    app.state.coach = context
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://coach.test") as client:
        yield Hook(client, context)


async def open_invoice(sessions: Sessions, user_id: int) -> Invoice:
    plan = Plan(price_usd=Decimal("10"), days=30)
    fake = FakeCoinpay(lambda: NOW)
    return await coinpay.subscribe(sessions, fake, plan, user_id=user_id, coin="ETH", now=NOW)


def confirmed(invoice: Invoice, event_id: str = "evt_1") -> bytes:
    # Compact, as coinpay signs it; the route reads the bytes as sent in any case.
    return json.dumps(
        {
            "id": event_id,
            "type": "payment.confirmed",
            "business_id": "biz",
            "created_at": "2026-03-02T12:01:00Z",
            "livemode": False,
            "data": {
                "payment_id": invoice.coinpay_payment_id,
                "status": "confirmed",
                "amount": 10.00,
                "metadata": {"coach_invoice_id": invoice.id},
            },
        },
        separators=(",", ":"),
    ).encode()


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


async def test_a_signed_confirmation_unlocks_and_tells_the_user_once(
    hook: Hook, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(hook.context.sessions, user)
    first = await hook.post(confirmed(invoice))
    assert first.status_code == 200
    assert first.json() == {"received": True, "outcome": "unlocked"}
    again = await hook.post(confirmed(invoice))  # a redelivery, signed afresh
    assert again.json() == {"received": True, "outcome": "duplicate"}
    [told] = hook.context.told
    assert (told.chat_id, told.paid_until) == (user + 1_000_000, NOW + timedelta(days=30))
    assert await paid_until(hook.context.sessions, user) == NOW + timedelta(days=30)


async def test_a_failed_notification_still_acknowledges_the_applied_event(
    hook: Hook, make_user: MakeUser
) -> None:
    user = await make_user()
    invoice = await open_invoice(hook.context.sessions, user)
    hook.context.fail_notify = True
    reply = await hook.post(confirmed(invoice))
    assert reply.json() == {"received": True, "outcome": "unlocked"}
    assert await paid_until(hook.context.sessions, user) == NOW + timedelta(days=30)


async def test_bad_signatures_are_401_and_change_nothing(hook: Hook, make_user: MakeUser) -> None:
    user = await make_user()
    body = confirmed(await open_invoice(hook.context.sessions, user))
    problem(await hook.post(body, header=None), 401, "signature_malformed")
    problem(await hook.post(body, header="v1=abc"), 401, "signature_malformed")
    problem(await hook.post(body, secret="whsec_other"), 401, "signature_mismatch")
    stale = int(time.time()) - 301
    problem(await hook.post(body, at=stale), 401, "signature_timestamp_out_of_tolerance")
    ahead = int(time.time()) + 301
    problem(await hook.post(body, at=ahead), 401, "signature_timestamp_out_of_tolerance")
    # Signed, then altered in transit.
    signature = webhooks.sign(body, [SECRET], int(time.time()))
    altered = body.replace(b"evt_1", b"evt_2")
    problem(await hook.post(altered, header=signature), 401, "signature_mismatch")
    assert await paid_until(hook.context.sessions, user) is None
    assert hook.context.told == []


async def test_without_a_configured_secret_nothing_is_accepted(
    hook: Hook, make_user: MakeUser
) -> None:
    user = await make_user()
    body = confirmed(await open_invoice(hook.context.sessions, user))
    hook.context.settings = CoachSettings()
    problem(await hook.post(body), 401, "signature_mismatch")
    assert await paid_until(hook.context.sessions, user) is None


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"id":"evt_1"}', b'{"id":"evt_1","type":"payment.confirmed"}'],
)
async def test_a_signed_body_we_cannot_read_is_400(hook: Hook, body: bytes) -> None:
    problem(await hook.post(body), 400, "coinpay_event_malformed")


async def test_a_huge_body_is_refused_unread(hook: Hook) -> None:
    body = b'{"id":"evt_1","pad":"' + b"a" * coinpay_webhook.MAX_WEBHOOK_BYTES + b'"}'
    problem(await hook.post(body), 413, "body_too_large")


async def test_an_unknown_payment_is_acknowledged(hook: Hook) -> None:
    body = json.dumps(
        {"id": "evt_9", "type": "payment.confirmed", "data": {"payment_id": "not-ours"}}
    ).encode()
    reply = await hook.post(body)
    assert reply.json() == {"received": True, "outcome": "unknown_payment"}
