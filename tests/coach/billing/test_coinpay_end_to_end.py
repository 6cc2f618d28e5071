"""/subscribe through coinpay in test mode unlocks on the webhook, both products really running.

One uvicorn on loopback serves ``keel serve``'s root app with coinpay's real app (test mode, its
worker delivering webhooks, on a scratch SQLite) and coach's real app (its bot polling the fake
Telegram Bot API), mounted at /coinpay and /coach as ``keel serve`` mounts them. coach talks to
coinpay only over HTTP, as a merchant's integration would:

* the operator sets coinpay up with its CLI (seed, business, first key): coinpay's API has no
  business sign-up;
* the merchant, with that key and coinpay's API, adds a payout wallet, registers coach's
  webhook URL (coinpay shows the signing secret once) and makes coach a narrower key; coach is
  configured with those (a first run serves coinpay alone for this, as an operator would);
* a Telegram user types ``/subscribe ETH``; the bot creates the payment and shows the amount and
  address; the simulate endpoint plays the customer paying; coinpay's worker delivers the signed
  ``payment.confirmed`` to coach, which unlocks the user once and tells them in the chat.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from keel.cli import app as keel_cli
from keel.coach import models
from keel.coach.app import create_app as create_coach
from keel.coach.billing import coins
from keel.coach.bootstrap import Wired
from keel.coach.settings import CoachSettings
from keel.coinpay.app import create_app as create_coinpay
from keel.coinpay.settings import CoinpaySettings
from keel.core import webhooks
from keel.core.app import (
    Product,
    create_root_app,
)
from keel.core.clock import SystemClock
from keel.core.crypto import new_key
from tests.coach.billing.conftest import paid_until
from tests.coach.fake_telegram import DEFAULT_TOKEN, FakeTelegram

ETH_PAYOUT = "0x0000000000000000000000000000000000000001"
WAIT_SECONDS = 20.0
CHAT = 7001


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


def _socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@asynccontextmanager
async def serving(products: list[Product], port: int) -> AsyncIterator[str]:
    """``keel serve``'s root app of ``products`` on 127.0.0.1:``port``; yields its URL."""
    sock = _socket(port)
    server = uvicorn.Server(
        uvicorn.Config(create_root_app(products), log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def coinpay_product(operator: Operator) -> Product:
    return create_coinpay(
        CoinpaySettings(
            master_key=operator.env["KEEL_COINPAY_MASTER_KEY"],
            webhook_allow_private=True,  # coach is on loopback, which delivery refuses otherwise
            run_workers=True,
            worker_poll_seconds=0.05,
        ),
        data_dir=operator.env["KEEL_DATA_DIR"],
    )


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient


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
    port = _socket().getsockname()[1]  # one address for both runs (coinpay keeps the URL)
    async with httpx.AsyncClient(timeout=10) as http:
        async with serving([coinpay_product(operator)], port) as url:
            coach_key, secret = await merchant_setup(Running(url, http), operator)
        with FakeTelegram() as telegram:
            coach = create_coach(
                CoachSettings(
                    telegram_token=DEFAULT_TOKEN,
                    telegram_api_url=telegram.url,
                    coinpay_url=f"{url}/coinpay/api",
                    coinpay_api_key=SecretStr(coach_key),
                    coinpay_business_id=operator.business_id,
                    coinpay_webhook_secret=SecretStr(secret),
                    edit_interval_seconds=0.2,
                ),
                data_dir=str(tmp_path / "coach"),
            )
            async with serving([coinpay_product(operator), coach], port) as url:
                running = Running(url, http)
                await check_the_flow(running, operator, telegram, coach.app.state.coach)


async def check_the_flow(
    running: Running, operator: Operator, telegram: FakeTelegram, wired: Wired
) -> None:
    sessions = wired.sessions
    started = SystemClock().now()
    telegram.send_text(CHAT, "/subscribe ETH")
    shown = await eventually(lambda: said(telegram, "Send exactly"), "the invoice in the chat")
    async with sessions() as session:
        invoice = (await session.execute(select(models.invoices))).one()
    assert invoice.user_id == CHAT
    amount = coins.format_units(invoice.amount, 18)
    assert f"{amount} ETH" in shown
    assert invoice.recipient in shown
    telegram.send_text(CHAT, "/subscribe ETH")  # asked again: the same invoice, no second one
    await eventually(lambda: said(telegram, "Send exactly", count=2), "the invoice again")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(models.invoices)) == 1
    payment_id = invoice.coinpay_payment_id
    assert payment_id

    # The customer pays the exact amount; coinpay confirms it at once (test mode).
    paid = await running.http.post(
        f"{running.url}/coinpay/api/payments/{payment_id}/simulate",
        json={"amount_crypto": amount},
        headers={"Authorization": f"Bearer {operator.admin_key}"},
    )
    assert paid.status_code == 200, paid.text
    told = await eventually(lambda: said(telegram, "Payment received"), "the unlock notice")
    until = await paid_until(sessions, CHAT)
    assert until is not None
    assert started + timedelta(days=30) <= until <= SystemClock().now() + timedelta(days=30)
    assert f"{until:%Y-%m-%d %H:%M}" in told
    confirmed = await eventually(
        lambda: delivered(running, operator.admin_key, payment_id, "payment.confirmed"),
        "payment.confirmed delivered",
    )

    # coinpay redelivers the event: acknowledged, nothing changes, nobody is told twice.
    redo = await running.http.post(
        f"{running.url}/coinpay/api/webhooks/events/{confirmed['id']}/redeliver",
        headers={"Authorization": f"Bearer {operator.admin_key}"},
    )
    assert redo.status_code == 200, redo.text
    assert redo.json()["queued"] == 1

    async def two_successes() -> bool:
        entry = await delivered(running, operator.admin_key, payment_id, "payment.confirmed")
        return bool(sum(d["outcome"] == "success" for d in entry["deliveries"]) == 2)

    await eventually(two_successes, "the redelivery")
    assert await paid_until(sessions, CHAT) == until
    assert sum("Payment received" in t for t in telegram.chat(CHAT).bot_texts) == 1
    async with sessions() as session:
        invoice_row = (
            await session.execute(select(models.invoices).where(models.invoices.c.id == invoice.id))
        ).one()
    assert (invoice_row.status, invoice_row.paid_by) == ("paid", confirmed["id"])

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
    assert await paid_until(sessions, CHAT) == until

    telegram.send_text(CHAT, "/status")
    await eventually(lambda: said(telegram, "Plan: pro until"), "the pro plan in /status")


async def said(telegram: FakeTelegram, text: str, *, count: int = 1) -> str | None:
    """The bot's latest message holding ``text`` once it has said it ``count`` times."""
    found = [t for t in telegram.chat(CHAT).bot_texts if text in t]
    return found[-1] if len(found) >= count else None
