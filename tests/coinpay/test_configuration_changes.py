"""Changing a business's configuration: who may, what is recorded, what is announced.

Live configuration (payout wallets, webhook endpoints and secrets, API keys) changes only with a
live key that names the scope, or from the server's CLI; every change lands in the append-only
audit log and goes out as ``business.updated`` to the endpoints of its mode, never the other's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import delete, select, update

from keel.coinpay import apikeys, models, notify

from .conftest import Harness, WebhookSink, make_harness

DEAD = "0x000000000000000000000000000000000000dEaD"


async def _key(h: Harness, mode: str, *scopes: str) -> tuple[str, str]:
    async with h.gw.sessions() as session, session.begin():
        return await apikeys.create_key(
            session, h.gw.box, h.operator, business_id=h.business_id, mode=mode, scopes=scopes
        )


async def _endpoint(h: Harness, mode: str, url: str) -> str:
    async with h.gw.sessions() as session, session.begin():
        endpoint_id, _ = await notify.create_endpoint(
            session,
            h.gw.box,
            h.operator,
            business_id=h.business_id,
            mode=mode,
            url=url,
            events=["business.updated"],
            allow_private=True,
        )
    return endpoint_id


async def _set_eth_wallet(h: Harness, key: str) -> Any:
    return await h.client.post(
        f"/api/businesses/{h.business_id}/wallets",
        json={"cryptocurrency": "ETH", "wallet_address": DEAD},
        headers=h.auth(key),
    )


async def test_a_live_star_key_cannot_change_payouts_webhooks_or_keys(harness: Harness) -> None:
    base = f"/api/businesses/{harness.business_id}"
    star = harness.auth(harness.live_key)
    audited = await _audit_count(harness)
    for method, path, body in (
        ("POST", f"{base}/wallets", {"cryptocurrency": "ETH", "wallet_address": DEAD}),
        ("POST", f"{base}/webhooks", {"url": "https://shop.example/hook"}),
        ("GET", f"{base}/api-keys", None),
        ("POST", f"{base}/api-keys", {"scopes": ["payments:read"]}),
    ):
        reply = await harness.client.request(method, path, json=body, headers=star)
        assert reply.status_code == 403, (path, reply.text)
        assert reply.json()["code"] == "missing_scope"
        assert "by name" in reply.json()["detail"]
    assert await _audit_count(harness) == audited


async def _audit_count(h: Harness) -> int:
    async with h.gw.sessions() as session:
        return len((await session.execute(select(models.audit_log.c.id))).all())


async def test_a_named_live_scope_changes_only_the_live_wallet(harness: Harness) -> None:
    _, manager = await _key(harness, "live", "wallets:manage", "payments:read")
    assert (await _set_eth_wallet(harness, manager)).status_code == 200
    live = await harness.client.get(
        f"/api/businesses/{harness.business_id}/wallets", headers=harness.auth(manager)
    )
    test = await harness.client.get(
        f"/api/businesses/{harness.business_id}/wallets", headers=harness.auth()
    )
    by_coin = {w["cryptocurrency"]: w["wallet_address"] for w in live.json()["wallets"]}
    assert by_coin["ETH"] == DEAD
    assert DEAD not in {w["wallet_address"] for w in test.json()["wallets"]}


async def test_a_test_key_changes_the_test_world_and_the_live_payout_stays(
    harness: Harness,
) -> None:
    # The reported attack: a test key sets an ETH wallet; the next live payment must not use it.
    assert (await _set_eth_wallet(harness, harness.test_key)).status_code == 200
    created = await harness.client.post(
        "/api/payments/create",
        json={"business_id": harness.business_id, "amount": "5", "blockchain": "ETH"},
        headers=harness.auth(harness.live_key),
    )
    assert created.status_code == 201, created.text
    async with harness.gw.sessions() as session:
        payout = await session.scalar(
            select(models.payments.c.payout_address).where(
                models.payments.c.id == created.json()["payment"]["id"]
            )
        )
    assert payout is not None
    assert payout != DEAD


async def test_every_change_is_audited_and_announced_in_its_own_mode_only(
    db_url: str, webhook_sink: WebhookSink
) -> None:
    async for h in make_harness(db_url, None):
        live_hook = await _endpoint(h, "live", webhook_sink.url + "/live")
        test_hook = await _endpoint(h, "test", webhook_sink.url + "/test")
        _, manager = await _key(h, "live", "wallets:manage", "webhooks:manage", "keys:manage")
        await h.run_jobs()
        webhook_sink.received.clear()

        assert (await _set_eth_wallet(h, manager)).status_code == 200
        rotated = await h.client.post(
            f"/api/businesses/{h.business_id}/webhooks/{live_hook}/rotate-secret",
            headers=h.auth(manager),
        )
        assert rotated.status_code == 200
        await h.run_jobs()

        live_events = {
            e["data"]["action"]: e
            for e in (r.json() for r in webhook_sink.received if r.path.endswith("/live"))
        }
        assert sorted(live_events) == ["wallet.set", "webhook.secret_rotated"]
        assert all(e["type"] == "business.updated" for e in live_events.values())
        assert all(e["livemode"] for e in live_events.values())
        assert live_events["wallet.set"]["data"]["detail"]["address"] == DEAD
        rotation = str(live_events["webhook.secret_rotated"]["data"])
        assert "whsec_" not in rotation
        assert not [r for r in webhook_sink.received if r.path.endswith("/test")]

        log = await h.client.get(
            f"/api/businesses/{h.business_id}/audit-log", headers=h.auth(h.live_key)
        )
        entries = log.json()["entries"]
        assert [e["action"] for e in entries[:2]] == ["webhook.secret_rotated", "wallet.set"]
        assert {e["actor"] for e in entries[:2]} == {f"key:{await _key_id(h, manager)}"}
        assert entries[0]["target"] == live_hook
        test_log = await h.client.get(
            f"/api/businesses/{h.business_id}/audit-log", headers=h.auth()
        )
        assert test_hook in {e["target"] for e in test_log.json()["entries"]}
        assert live_hook not in {e["target"] for e in test_log.json()["entries"]}


async def _key_id(h: Harness, token: str) -> str:
    return (await apikeys.authenticate(h.gw.lookups, h.gw.box, token)).key_id


async def test_the_audit_log_refuses_update_and_delete(harness: Harness) -> None:
    assert (await _set_eth_wallet(harness, harness.test_key)).status_code == 200
    t = models.audit_log
    for statement in (update(t).values(actor="someone-else"), delete(t)):
        with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
            async with harness.gw.sessions() as session, session.begin():
                await session.execute(statement)
    async with harness.gw.sessions() as session:
        actors = set((await session.execute(select(t.c.actor))).scalars())
    assert "someone-else" not in actors
    assert actors


async def test_keys_are_listed_per_mode_revoked_at_once_and_never_shown(harness: Harness) -> None:
    base = f"/api/businesses/{harness.business_id}/api-keys"
    _, admin = await _key(harness, "live", "keys:manage")
    made = await harness.client.post(
        base, json={"scopes": ["keys:manage"]}, headers=harness.auth(admin)
    )
    assert made.status_code == 201, made.text
    new_key = made.json()["api_key"]
    assert new_key["key"].startswith("cp_live_")
    assert new_key["livemode"] is True

    listed = (await harness.client.get(base, headers=harness.auth(admin))).json()["api_keys"]
    assert all(k["livemode"] for k in listed)
    assert new_key["id"] in {k["id"] for k in listed}
    assert "key" not in listed[0]
    assert new_key["key"] not in str(listed)

    revoked = await harness.client.delete(f"{base}/{new_key['id']}", headers=harness.auth(admin))
    assert revoked.status_code == 200
    assert revoked.json()["api_key"]["revoked_at"]
    refused = await harness.client.get(base, headers=harness.auth(new_key["key"]))
    assert refused.status_code == 401
    again = await harness.client.delete(f"{base}/{new_key['id']}", headers=harness.auth(admin))
    assert again.json()["api_key"]["revoked_at"] == revoked.json()["api_key"]["revoked_at"]


async def test_a_key_cannot_grant_scopes_it_lacks(harness: Harness) -> None:
    _, admin = await _key(harness, "live", "keys:manage", "*")
    reply = await harness.client.post(
        f"/api/businesses/{harness.business_id}/api-keys",
        json={"scopes": ["wallets:manage"]},
        headers=harness.auth(admin),
    )
    assert reply.status_code == 403
    assert "wallets:manage" in reply.json()["detail"]


async def test_last_use_is_recorded_to_the_minute_without_a_write_per_request(
    harness: Harness,
) -> None:
    key_id, reader = await _key(harness, "test", "payments:read")
    t = models.api_keys

    async def last_used() -> Any:
        async with harness.gw.sessions() as session:
            return await session.scalar(select(t.c.last_used_at).where(t.c.id == key_id))

    assert await last_used() is None
    path = f"/api/businesses/{harness.business_id}/wallets"
    assert (await harness.client.get(path, headers=harness.auth(reader))).status_code == 200
    first = await last_used()
    assert first == harness.clock.now()
    harness.clock.advance(timedelta(seconds=30))
    await harness.client.get(path, headers=harness.auth(reader))
    assert await last_used() == first  # within the minute: no write
    harness.clock.advance(timedelta(seconds=31))
    await harness.client.get(path, headers=harness.auth(reader))
    assert await last_used() == harness.clock.now()


async def test_idempotency_keys_are_per_mode_and_remember_the_body(harness: Harness) -> None:
    body = {"business_id": harness.business_id, "amount": "12.50", "blockchain": "BTC"}
    key = {"Idempotency-Key": "K"}
    live = await harness.client.post(
        "/api/payments/create", json=body, headers={**harness.auth(harness.live_key), **key}
    )
    test = await harness.client.post(
        "/api/payments/create", json=body, headers={**harness.auth(), **key}
    )
    assert live.status_code == test.status_code == 201
    assert test.json()["payment"]["id"] != live.json()["payment"]["id"]
    assert test.json()["payment"]["mode"] == "test"

    replay = await harness.client.post(
        "/api/payments/create", json=body, headers={**harness.auth(), **key}
    )
    assert replay.json()["payment"]["id"] == test.json()["payment"]["id"]
    other = await harness.client.post(
        "/api/payments/create",
        json={**body, "amount": "13.50"},
        headers={**harness.auth(), **key},
    )
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert "different request body" in other.json()["detail"]


async def test_redelivery_reaches_only_endpoints_of_the_event_mode(
    db_url: str, webhook_sink: WebhookSink
) -> None:
    async for h in make_harness(db_url, None):
        for mode in ("live", "test"):
            async with h.gw.sessions() as session, session.begin():
                await notify.create_endpoint(
                    session,
                    h.gw.box,
                    h.operator,
                    business_id=h.business_id,
                    mode=mode,
                    url=f"{webhook_sink.url}/{mode}",
                    events=["payment.created"],
                    allow_private=True,
                )
        payment = await h.create_payment()
        await h.run_jobs()
        _, hooks = await _key(h, "test", "webhooks:manage")
        log = await h.client.get(f"/api/webhooks?payment_id={payment['id']}", headers=h.auth(hooks))
        event_id = log.json()["events"][0]["id"]
        again = await h.client.post(
            f"/api/webhooks/events/{event_id}/redeliver", headers=h.auth(hooks)
        )
        assert again.json()["queued"] == 1
        await h.run_jobs()
        assert [r.path.rsplit("/", 1)[1] for r in webhook_sink.received] == ["test", "test"]
        _, live_hooks = await _key(h, "live", "webhooks:manage")
        refused = await h.client.post(
            f"/api/webhooks/events/{event_id}/redeliver", headers=h.auth(live_hooks)
        )
        assert refused.status_code == 404


async def test_configuration_changes_have_an_hourly_budget_per_world(
    db_url: str, webhook_sink: WebhookSink
) -> None:
    async for h in make_harness(db_url, None, config_changes_per_hour=2):
        _, live = await _key(h, "live", "wallets:manage")
        assert (await _set_eth_wallet(h, live)).status_code == 200
        assert (await _set_eth_wallet(h, live)).status_code == 200
        third = await _set_eth_wallet(h, live)
        assert third.status_code == 429
        assert int(third.headers["Retry-After"]) > 0
        # The test world's budget is its own.
        assert (await _set_eth_wallet(h, h.test_key)).status_code == 200
        h.clock.advance(timedelta(hours=2))
        assert (await _set_eth_wallet(h, live)).status_code == 200
