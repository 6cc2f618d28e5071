"""What the referral, billing and usage tests share: a migrated database, users, a fixed now,
and LemonSqueezy's API replayed by a local server (``recordings/lemonsqueezy/<name>.json``)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from keel.core import db, migrations
from keel.core.replicated import Database
from keel.roadmaps import bootstrap, models

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RECORDINGS = Path(__file__).parent / "recordings"


@asynccontextmanager
async def migrated(url: str, *, pool_size: int = 10) -> AsyncIterator[Database]:
    """A :class:`Database` on ``url`` at the current schema; ``pool_size`` * 2 connections."""
    engine = db.create_engine(url, pool_size=pool_size)
    try:
        await migrations.upgrade(engine, bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)
        yield Database(engine)
    finally:
        await engine.dispose()


async def add_users(database: Database, count: int) -> list[str]:
    """``count`` new users' ids."""
    ids = [uuid.uuid4().hex for _ in range(count)]
    async with database.writing() as conn:
        await conn.execute(
            models.users.insert(),
            [
                {
                    "id": user_id,
                    "email": f"{user_id}@example.org",
                    "display_name": f"user {user_id[:6]}",
                    "password_hash": "not-a-hash",
                    "created_at": NOW,
                    "password_changed_at": NOW,
                }
                for user_id in ids
            ],
        )
    return ids


def refusing_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


SECRET = "whsec-test-signing-secret"


def subscription_event(
    name: str,
    *,
    user_id: str,
    subscription_id: str = "1",
    status: str = "active",
    variant_id: int = 222,
    renews_at: str | None = "2026-04-10T12:00:00.000000Z",
    ends_at: str | None = None,
    trial_ends_at: str | None = None,
    updated_at: str = "2026-03-10T12:00:00.000000Z",
) -> bytes:
    """A ``subscription_*`` webhook body, as LemonSqueezy sends it."""
    body = {
        "meta": {
            "test_mode": False,
            "event_name": name,
            "webhook_id": "8d1a6c9e-5b8f-4d7c-9f51-2a8e0c0f6a11",
            "custom_data": {"user_id": user_id},
        },
        "data": {
            "type": "subscriptions",
            "id": subscription_id,
            "attributes": {
                "store_id": 11,
                "customer_id": 501,
                "order_id": 901,
                "product_id": 111,
                "variant_id": variant_id,
                "product_name": "Roadmaps Pro",
                "variant_name": "Monthly",
                "user_email": "ada@example.org",
                "status": status,
                "status_formatted": status.replace("_", " ").title(),
                "pause": None,
                "cancelled": status == "cancelled",
                "trial_ends_at": trial_ends_at,
                "billing_anchor": 10,
                "renews_at": renews_at,
                "ends_at": ends_at,
                "created_at": "2026-02-10T12:00:00.000000Z",
                "updated_at": updated_at,
                "test_mode": False,
            },
            "links": {"self": f"https://api.lemonsqueezy.com/v1/subscriptions/{subscription_id}"},
        },
    }
    return json.dumps(body).encode()


def payment_event(
    name: str,
    *,
    user_id: str | None,
    invoice_id: str = "77",
    subscription_id: str = "1",
    status: str = "paid",
    total: int = 999,
    updated_at: str = "2026-03-10T12:00:01.000000Z",
) -> bytes:
    """A ``subscription_payment_*`` webhook body (a subscription invoice)."""
    meta: dict[str, object] = {"event_name": name, "test_mode": False}
    if user_id is not None:
        meta["custom_data"] = {"user_id": user_id}
    body = {
        "meta": meta,
        "data": {
            "type": "subscription-invoices",
            "id": invoice_id,
            "attributes": {
                "store_id": 11,
                "subscription_id": int(subscription_id),
                "billing_reason": "renewal",
                "currency": "USD",
                "currency_rate": "1.00000000",
                "subtotal": total,
                "tax": 0,
                "total": total,
                "total_usd": total,
                "status": status,
                "refunded": status == "refunded",
                "created_at": updated_at,
                "updated_at": updated_at,
                "test_mode": False,
            },
        },
    }
    return json.dumps(body).encode()
