"""/subscribe through coinpay in test mode unlocks on the webhook, both products really running.

One uvicorn on loopback serves ``keel serve``'s root app with coinpay's real app (test mode, its
worker delivering webhooks, on a scratch SQLite) and a coach app holding the webhook router,
mounted at /coinpay and /coach as ``keel serve`` mounts products. coach talks to coinpay only
over HTTP, as a merchant's integration would:

* the operator sets coinpay up with its CLI (seed, business, first key): coinpay's API has no
  business sign-up;
* the merchant, with that key and coinpay's API, adds a payout wallet, registers coach's
  webhook URL (coinpay shows the signing secret once) and makes coach a narrower key;
* ``subscribe`` creates the payment; the simulate endpoint plays the customer paying; coinpay's
  worker delivers the signed ``payment.confirmed`` to coach, which unlocks the user once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from keel.cli import app as keel_cli
from keel.coach import models
from keel.coach.adapters.coinpay import CoinpayClient
from keel.coach.api import coinpay_webhook
from keel.coach.billing import coinpay, coins
from keel.coach.billing.coinpay import Outcome, OutcomeKind, Plan
from keel.coach.settings import CoachSettings
from keel.coinpay.app import create_app as create_coinpay
from keel.coinpay.settings import CoinpaySettings
from keel.core import db, webhooks
from keel.core.app import (
    Product,
    RequestContextMiddleware,
    create_root_app,
    install_problem_handlers,
)
from keel.core.clock import SystemClock
from keel.core.crypto import new_key
from keel.core.resilience import BreakerRegistry, CircuitBreaker
from tests.coach.billing.conftest import Sessions, add_user, paid_until

ETH_PAYOUT = "0x0000000000000000000000000000000000000001"
WAIT_SECONDS = 20.0


@dataclass
class Operator:
    """What the operator's CLI made: the business and its first (all-scopes, test) key."""

    env: dict[str, str]
    business_id: str
    admin_key: str


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(keel_cli, ["coinpay", *args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    env = {
        "KEEL_DATA_DIR": str(tmp_path / "var"),
        "KEEL_COINPAY_MASTER_KEY": new_key(),
        "KEEL_COINPAY_DATABASE_URL": "",
    }
    _cli(env, "init")
    business_id = _cli(env, "business", "create", "--name", "coach")["business_id"]
    key = _cli(env, "apikey", "create", "--business", business_id, "--mode", "test")["api_key"]
    return Operator(env, business_id, key)


@dataclass
class CoachState:
    """The stub ``app.state.coach`` (a CoinpayWebhookContext), on real coach tables."""

    sessions: Sessions
    settings: CoachSettings
    clock: SystemClock = field(default_factory=SystemClock)
    told: list[Outcome] = field(default_factory=list)

    async def _notify(self, outcome: Outcome) -> None:
        self.told.append(outcome)

    @property
    def notify(self) -> Any:
        return self._notify


def coach_product(state: CoachState) -> Product:
    app = FastAPI(title="coach (billing only)")
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, app_name="coach")
    app.include_router(coinpay_webhook.router)
    app.state.coach = state

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        yield

    async def ready() -> bool:
        return True

    return Product(name="coach", app=app, lifespan=lifespan, ready=ready)


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient
    coach: CoachState


@asynccontextmanager
async def serving(operator: Operator, tmp_path: Path) -> AsyncIterator[Running]:
    coinpay_app = create_coinpay(
        CoinpaySettings(
            master_key=operator.env["KEEL_COINPAY_MASTER_KEY"],
            webhook_allow_private=True,  # coach is on loopback, which delivery refuses otherwise
            run_workers=True,
            worker_poll_seconds=0.05,
        ),
        data_dir=operator.env["KEEL_DATA_DIR"],
    )
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path}/coach.db")
    async with engine.begin() as conn:
        await conn.run_sync(models.metadata.create_all)
    state = CoachState(db.session_factory(engine), CoachSettings())
    server = uvicorn.Server(
        uvicorn.Config(
            create_root_app([coinpay_app, coach_product(state)]),
            log_level="warning",
            lifespan="on",
        )
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(timeout=10) as http:
            yield Running(url, http, state)
    finally:
        server.should_exit = True
        await task
        sock.close()
        await engine.dispose()


async def merchant_setup(running: Running, operator: Operator) -> tuple[str, str]:
    """The merchant's steps over coinpay's API; returns (coach's API key, webhook secret)."""
    api = f"{running.url}/coinpay/api/businesses/{operator.business_id}"
    admin = {"Authorization": f"Bearer {operator.admin_key}"}
    wallet = await running.http.post(
        f"{api}/wallets",
        json={"cryptocurrency": "ETH", "wallet_address": ETH_PAYOUT},
        headers=admin,
    )
    assert wallet.status_code == 200, wallet.text
    hook = await running.http.post(
        f"{api}/webhooks", json={"url": f"{running.url}/coach/coinpay/webhook"}, headers=admin
    )
    assert hook.status_code == 201, hook.text
    key = await running.http.post(
        f"{api}/api-keys", json={"scopes": ["payments:create", "payments:read"]}, headers=admin
    )
    assert key.status_code == 201, key.text
    return key.json()["api_key"]["key"], hook.json()["webhook"]["secret"]


async def eventually(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


async def delivered(running: Running, admin_key: str, payment_id: str, event: str) -> Any:
    """coinpay's delivery log entry of ``event`` for the payment, once an attempt succeeded."""
    reply = await running.http.get(
        f"{running.url}/coinpay/api/webhooks",
        params={"payment_id": payment_id},
        headers={"Authorization": f"Bearer {admin_key}"},
    )
    assert reply.status_code == 200, reply.text
    for entry in reply.json()["events"]:
        if entry["type"] == event and any(d["outcome"] == "success" for d in entry["deliveries"]):
            return entry
    return None


async def test_subscribe_through_coinpay_unlocks_once_on_its_signed_webhook(
    operator: Operator, tmp_path: Path
) -> None:
    async with serving(operator, tmp_path) as running:
        coach_key, secret = await merchant_setup(running, operator)
        running.coach.settings = CoachSettings(
            coinpay_url=f"{running.url}/coinpay/api",
            coinpay_api_key=SecretStr(coach_key),
            coinpay_business_id=operator.business_id,
            coinpay_webhook_secret=SecretStr(secret),
        )
        settings = running.coach.settings
        sessions = running.coach.sessions
        user_id = await add_user(sessions, 7001)
        client = CoinpayClient(
            running.http,
            base_url=settings.coinpay_url,
            api_key=SecretStr(coach_key),
            business_id=settings.coinpay_business_id,
            breaker=CircuitBreaker("test-coach-coinpay", registry=BreakerRegistry()),
        )
        plan = Plan.from_settings(settings)
        started = SystemClock().now()

        invoice = await coinpay.subscribe(
            sessions, client, plan, user_id=user_id, coin="ETH", now=started
        )
        payment = await client.get_payment(invoice.coinpay_payment_id or "")
        assert payment.payment_address == invoice.recipient
        assert coins.to_units(payment.crypto_amount, 18) == invoice.amount > 0
        assert payment.metadata == {"coach_invoice_id": invoice.id, "coach_user_id": "7001"}
        again = await coinpay.subscribe(
            sessions, client, plan, user_id=user_id, coin="ETH", now=started
        )
        assert again == invoice  # the open invoice is handed out again, no second payment

        # The customer pays the exact amount; coinpay confirms it at once (test mode).
        paid = await running.http.post(
            f"{running.url}/coinpay/api/payments/{payment.id}/simulate",
            json={"amount_crypto": coins.format_units(invoice.amount, 18)},
            headers={"Authorization": f"Bearer {operator.admin_key}"},
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["payment"]["status"] in ("confirmed", "forwarding", "forwarded")

        until = await eventually(lambda: paid_until(sessions, user_id), "the unlock")
        assert started + timedelta(days=30) <= until <= SystemClock().now() + timedelta(days=30)
        [told] = running.coach.told
        assert told.kind is OutcomeKind.UNLOCKED
        assert (told.user_id, told.chat_id, told.paid_until) == (user_id, 1_007_001, until)
        confirmed = await eventually(
            lambda: delivered(running, operator.admin_key, payment.id, "payment.confirmed"),
            "payment.confirmed delivered",
        )

        # coinpay redelivers the event: acknowledged, nothing changes.
        redo = await running.http.post(
            f"{running.url}/coinpay/api/webhooks/events/{confirmed['id']}/redeliver",
            headers={"Authorization": f"Bearer {operator.admin_key}"},
        )
        assert redo.status_code == 200, redo.text
        assert redo.json()["queued"] == 1

        async def two_successes() -> bool:
            entry = await delivered(running, operator.admin_key, payment.id, "payment.confirmed")
            return bool(sum(d["outcome"] == "success" for d in entry["deliveries"]) == 2)

        await eventually(two_successes, "the redelivery")
        assert await paid_until(sessions, user_id) == until
        assert len(running.coach.told) == 1
        async with sessions() as session:
            invoice_row = (
                await session.execute(
                    select(models.invoices).where(models.invoices.c.id == invoice.id)
                )
            ).one()
            events_seen = await session.scalar(
                select(func.count()).select_from(models.coinpay_events)
            )
        assert (invoice_row.status, invoice_row.paid_by) == ("paid", confirmed["id"])
        assert (events_seen or 0) >= 3  # created, confirming, confirmed, ...

        # A body signed with another secret is refused before anything is read.
        forged = json.dumps({"id": "evt_forged", "type": "payment.confirmed", "data": {}})
        header = webhooks.sign(forged.encode(), ["whsec_not_coinpays"], int(time.time()))
        refused = await running.http.post(
            f"{running.url}/coach/coinpay/webhook",
            content=forged,
            headers={"X-CoinPay-Signature": header, "Content-Type": "application/json"},
        )
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "signature_mismatch"
        assert await paid_until(sessions, user_id) == until
