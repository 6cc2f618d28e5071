"""/subscribe through coinpay in test mode unlocks on the webhook, both products really running.

``keel serve coinpay coach`` runs as a separate process on loopback (the command an operator
runs, configured by environment): coinpay in test mode, its worker delivering webhooks, and
coach with its bot polling the fake Telegram Bot API, mounted at /coinpay and /coach. coach talks
to coinpay only over HTTP, as a merchant's integration would:

* the operator sets coinpay up with its CLI (seed, business, first key): coinpay's API has no
  business sign-up;
* the merchant, with that key and coinpay's API, adds a payout wallet, registers coach's
  webhook URL (coinpay shows the signing secret once) and makes coach a narrower key; coach is
  configured with those (a first ``keel serve coinpay`` is up for this, as an operator's
  would be);
* a Telegram user types ``/subscribe ETH``; the bot creates the payment and shows the amount and
  address; the simulate endpoint plays the customer paying; coinpay's worker delivers the signed
  ``payment.confirmed`` to coach, which unlocks the user once and tells them in the chat.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from keel.cli import app as keel_cli
from keel.coach import models
from keel.coach.billing import coins
from keel.core import db, webhooks
from keel.core.clock import SystemClock
from keel.core.crypto import new_key
from tests.coach.billing.conftest import Sessions, paid_until
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def keel_serve(products: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """``python -m keel serve <products> --port <port>``; yields its URL once it answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "keel", "serve", *products, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "keel serve did not get ready in 30 s"
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
    port = _free_port()  # one address for both runs (coinpay keeps the webhook's URL)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
        **operator.env,
        "HOME": str(tmp_path),
        "KEEL_LOG_JSON": "false",
        "KEEL_COINPAY_WEBHOOK_ALLOW_PRIVATE": "true",  # coach is on loopback
        "KEEL_COINPAY_WORKER_POLL_SECONDS": "0.05",
    }
    log = tmp_path / "serve.log"
    async with httpx.AsyncClient(timeout=10) as http:
        with keel_serve(["coinpay"], port, env, log) as url:
            coach_key, secret = await merchant_setup(Running(url, http), operator)
        with FakeTelegram() as telegram:
            env |= {
                "KEEL_COACH_TELEGRAM_TOKEN": DEFAULT_TOKEN,
                "KEEL_COACH_TELEGRAM_API_URL": telegram.url,
                "KEEL_COACH_COINPAY_URL": f"{url}/coinpay/api",
                "KEEL_COACH_COINPAY_API_KEY": coach_key,
                "KEEL_COACH_COINPAY_BUSINESS_ID": operator.business_id,
                "KEEL_COACH_COINPAY_WEBHOOK_SECRET": secret,
                "KEEL_COACH_EDIT_INTERVAL_SECONDS": "0.2",
            }
            with keel_serve(["coinpay", "coach"], port, env, log) as url:
                engine = db.create_engine(
                    f"sqlite+aiosqlite:///{operator.env['KEEL_DATA_DIR']}/coach.db"
                )
                try:
                    await check_the_flow(
                        Running(url, http), operator, telegram, db.session_factory(engine)
                    )
                finally:
                    await engine.dispose()


async def check_the_flow(
    running: Running, operator: Operator, telegram: FakeTelegram, sessions: Sessions
) -> None:
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
