"""Test and live are separate worlds, and so are businesses (ADR 0009).

Four worlds (two businesses × two modes) are filled with one of everything: payout wallets,
a payment made with an Idempotency-Key that every world shares, its events and queued
deliveries, a webhook endpoint, API keys and audit entries. Then every keyed route is called
with the key of every world against the resources of every world, and after each request:

* no other world's rows changed (payments, deposits, transfers, events, deliveries, jobs,
  endpoints and their secrets, wallets, idempotency records, keys, audit entries), and every
  job still belongs to exactly one world;
* no world's rows name anything of another world (a payout address read across worlds);
* the reply names nothing of another world (ids, addresses), apart from echoing the path the
  caller sent;
* nothing answered with a 5xx.

The exhaustive product covers each single request from the filled state; the hypothesis test
runs random sequences of them, so a request also meets state that earlier ones made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from keel.coinpay import apikeys, businesses, models, notify
from keel.coinpay.assets import COINS
from keel.coinpay.wallets import HDRoot

from .conftest import PAYOUT_MNEMONIC, Harness, make_harness

ALL_SCOPES = ["*", "keys:manage", "wallets:manage", "webhooks:manage"]
SHARED_IDEMPOTENCY_KEY = "order-1001"
# Routes that take no API key: a payment id is the capability (checkout, QR) or nothing is
# private (rates). They are outside the key × world product by design.
KEYLESS = {("GET", "/api/payments/{payment_id}/qr"), ("GET", "/api/rates")}


@dataclass
class World:
    business_id: str
    mode: str
    key: str = ""
    key_id: str = ""
    victim_key_id: str = ""
    payment_id: str = ""
    endpoint_id: str = ""
    event_id: str = ""
    markers: set[str] = field(default_factory=set)

    @property
    def name(self) -> tuple[str, str]:
        return (self.business_id, self.mode)


def _payment_body(world: World) -> dict[str, Any]:
    # The same body in both modes of a business: with the shared Idempotency-Key, a replay
    # that ignored the mode would hand one world's payment to the other.
    return {
        "business_id": world.business_id,
        "amount": "10.00",
        "currency": "USD",
        "blockchain": "BTC",
        "metadata": {"order": "1001"},
    }


Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]
Builder = Callable[[World], list[Request]]


def _request(
    method: str, path: str, body: dict[str, Any] | None = None, **headers: str
) -> list[Request]:
    return [(method, path, body, headers)]


# One builder per keyed route: the request a caller makes against a target world's resources.
ROUTES: dict[tuple[str, str], Builder] = {
    # A replay under the shared key, and a new payment (which reads the caller's wallets).
    ("POST", "/api/payments/create"): lambda t: (
        _request(
            "POST",
            "/api/payments/create",
            _payment_body(t),
            **{"Idempotency-Key": SHARED_IDEMPOTENCY_KEY},
        )
        + _request("POST", "/api/payments/create", _payment_body(t))
    ),
    ("GET", "/api/payments/{payment_id}"): lambda t: _request(
        "GET", f"/api/payments/{t.payment_id}"
    ),
    ("GET", "/api/payments"): lambda t: _request(
        "GET", f"/api/payments?businessId={t.business_id}"
    ),
    ("POST", "/api/payments/{payment_id}/simulate"): lambda t: _request(
        "POST", f"/api/payments/{t.payment_id}/simulate", {"amount_crypto": "0.00001"}
    ),
    ("GET", "/api/payments/{payment_id}/events"): lambda t: _request(
        "GET", f"/api/payments/{t.payment_id}/events"
    ),
    ("GET", "/api/supported-coins"): lambda t: _request(
        "GET", f"/api/supported-coins?business_id={t.business_id}"
    ),
    ("GET", "/api/businesses/{business_id}/wallets"): lambda t: _request(
        "GET", f"/api/businesses/{t.business_id}/wallets"
    ),
    ("POST", "/api/businesses/{business_id}/wallets"): lambda t: _request(
        "POST",
        f"/api/businesses/{t.business_id}/wallets",
        {"cryptocurrency": "ETH", "wallet_address": "0x000000000000000000000000000000000000dEaD"},
    ),
    ("GET", "/api/businesses/{business_id}/webhooks"): lambda t: _request(
        "GET", f"/api/businesses/{t.business_id}/webhooks"
    ),
    ("POST", "/api/businesses/{business_id}/webhooks"): lambda t: _request(
        "POST", f"/api/businesses/{t.business_id}/webhooks", {"url": "http://127.0.0.1:9/attacker"}
    ),
    ("DELETE", "/api/businesses/{business_id}/webhooks/{endpoint_id}"): lambda t: _request(
        "DELETE", f"/api/businesses/{t.business_id}/webhooks/{t.endpoint_id}"
    ),
    ("POST", "/api/businesses/{business_id}/webhooks/{endpoint_id}/rotate-secret"): lambda t: (
        _request("POST", f"/api/businesses/{t.business_id}/webhooks/{t.endpoint_id}/rotate-secret")
    ),
    ("GET", "/api/webhooks"): lambda t: _request("GET", f"/api/webhooks?payment_id={t.payment_id}"),
    ("POST", "/api/webhooks/events/{event_id}/redeliver"): lambda t: _request(
        "POST", f"/api/webhooks/events/{t.event_id}/redeliver"
    ),
    ("GET", "/api/businesses/{business_id}/api-keys"): lambda t: _request(
        "GET", f"/api/businesses/{t.business_id}/api-keys"
    ),
    ("POST", "/api/businesses/{business_id}/api-keys"): lambda t: _request(
        "POST", f"/api/businesses/{t.business_id}/api-keys", {"scopes": ["payments:read"]}
    ),
    ("DELETE", "/api/businesses/{business_id}/api-keys/{key_id}"): lambda t: _request(
        "DELETE", f"/api/businesses/{t.business_id}/api-keys/{t.victim_key_id}"
    ),
    ("GET", "/api/businesses/{business_id}/audit-log"): lambda t: _request(
        "GET", f"/api/businesses/{t.business_id}/audit-log"
    ),
}


async def _fill(h: Harness) -> list[World]:
    """Two businesses × two modes, each with one of everything (module docstring)."""
    async with h.gw.sessions() as session, session.begin():
        other = await businesses.create_business(session, h.clock, name="Other shop")
    worlds = [World(b, m) for b in (h.business_id, other) for m in apikeys.MODES]
    payout_root = HDRoot.from_mnemonic(PAYOUT_MNEMONIC)
    for i, w in enumerate(worlds):
        payout = payout_root.address(COINS["BTC"].family, 100 + i)
        async with h.gw.sessions() as session, session.begin():
            await businesses.set_wallet(
                session,
                h.operator,
                business_id=w.business_id,
                mode=w.mode,
                coin="BTC",
                address=payout,
            )
            w.key_id, w.key = await apikeys.create_key(
                session,
                h.gw.box,
                h.operator,
                business_id=w.business_id,
                mode=w.mode,
                scopes=ALL_SCOPES,
            )
            w.victim_key_id, _ = await apikeys.create_key(
                session,
                h.gw.box,
                h.operator,
                business_id=w.business_id,
                mode=w.mode,
                scopes=["payments:read"],
            )
            w.endpoint_id, _ = await notify.create_endpoint(
                session,
                h.gw.box,
                h.operator,
                business_id=w.business_id,
                mode=w.mode,
                url=f"http://127.0.0.1:9/world-{i}",
                events=None,
                allow_private=True,
            )
        created = await h.client.post(
            "/api/payments/create",
            json=_payment_body(w),
            headers={**h.auth(w.key), "Idempotency-Key": SHARED_IDEMPOTENCY_KEY},
        )
        assert created.status_code == 201, created.text
        payment = created.json()["payment"]
        w.payment_id = payment["id"]
        async with h.gw.sessions() as session:
            ev = models.webhook_events
            w.event_id = (
                await session.scalar(select(ev.c.id).where(ev.c.payment_id == w.payment_id))
            ) or ""
        w.markers = {
            w.payment_id,
            w.endpoint_id,
            w.event_id,
            w.key_id,
            w.victim_key_id,
            payout,
            payment["payment_address"],
        }
    assert len({w.payment_id for w in worlds}) == 4  # one shared key, four payments
    return worlds


async def _snapshot(h: Harness, worlds: list[World]) -> dict[tuple[str, str], list[Any]]:
    """Every row that belongs to a world, per world. Raises if a job belongs to none."""
    tables = (
        models.payments,
        models.payment_events,
        models.deposits,
        models.simulated_transfers,
        models.wallets,
        models.watch_only_keys,
        models.webhook_endpoints,
        models.webhook_events,
        models.webhook_deliveries,
        models.idempotency_keys,
        models.api_keys,
        models.audit_log,
        models.jobs,
    )
    async with h.gw.sessions() as session:
        rows = {
            t.name: [r._asdict() for r in (await session.execute(select(t))).all()] for t in tables
        }
    owner: dict[str, tuple[str, str]] = {}  # payment, endpoint, event and address -> world
    for name in ("coinpay_payments", "coinpay_webhook_endpoints", "coinpay_webhook_events"):
        for r in rows[name]:
            owner[r["id"]] = (r["business_id"], r["mode"])
    for r in rows["coinpay_payments"]:
        owner[r["payment_address"]] = (r["business_id"], r["mode"])

    def world_of(table: str, r: dict[str, Any]) -> tuple[str, str] | None:
        if "business_id" in r and "mode" in r:
            return (r["business_id"], r["mode"])
        if table in ("coinpay_payment_events", "coinpay_deposits"):
            return owner[r["payment_id"]]
        if table == "coinpay_simulated_transfers":
            return owner[r["address"]]
        if table == "coinpay_webhook_deliveries":
            return owner[r["event_id"]]
        payload = r["payload"]
        ids = {payload.get(k) for k in ("payment_id", "event_id", "endpoint_id")} - {None}
        found = {owner[i] for i in ids}
        assert len(found) == 1, f"job {r['id']} belongs to worlds {found}"
        return found.pop()

    snapshot: dict[tuple[str, str], list[Any]] = {w.name: [] for w in worlds}
    for table, table_rows in rows.items():
        for r in table_rows:
            world = world_of(table, r)
            if world is not None:
                snapshot[world].append((table, json.dumps(r, sort_keys=True, default=str)))
    return {k: sorted(v) for k, v in snapshot.items()}


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() if k != "instance" for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


async def _check(
    h: Harness, worlds: list[World], route: tuple[str, str], caller: World, target: World
) -> None:
    for request in ROUTES[route](target):
        await _check_one(h, worlds, request, caller, target)


async def _check_one(
    h: Harness, worlds: list[World], request: Request, caller: World, target: World
) -> None:
    before = await _snapshot(h, worlds)
    method, path, body, headers = request
    reply = await h.client.request(
        method, path, json=body, headers={**h.auth(caller.key), **headers}
    )
    where = f"{method} {path} by {caller.name} on {target.name}: {reply.status_code}"
    assert reply.status_code < 500, where
    after = await _snapshot(h, worlds)
    for w in worlds:
        if w is not caller:
            assert after[w.name] == before[w.name], f"{where} changed world {w.name}"
    # Nothing read from another world was written into one (e.g. a payout address).
    for w in worlds:
        rows = " ".join(row for _, row in after[w.name])
        for other in worlds:
            if other is not w:
                mixed = sorted(m for m in other.markers if m in rows)
                assert not mixed, f"{where} wrote {mixed} of world {other.name} into {w.name}"
    said = " ".join(_strings(reply.json()))
    for w in worlds:
        if w is not caller:
            leaked = sorted(m for m in w.markers if m in said)
            assert not leaked, f"{where} named {leaked} of world {w.name}"


@pytest.fixture
async def filled(db_url: str) -> AsyncIterator[tuple[Harness, list[World]]]:
    async for h in make_harness(db_url, None):
        yield h, await _fill(h)


def test_every_keyed_route_is_in_the_product() -> None:
    from keel.coinpay.app import create_app
    from keel.coinpay.settings import CoinpaySettings

    spec = create_app(CoinpaySettings(database_url="sqlite+aiosqlite://")).app.openapi()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes - KEYLESS == set(ROUTES)


async def test_no_request_reaches_outside_its_mode_and_business(
    filled: tuple[Harness, list[World]],
) -> None:
    h, worlds = filled
    for route in ROUTES:
        for caller in worlds:
            for target in worlds:
                await _check(h, worlds, route, caller, target)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(sorted(ROUTES)), st.integers(0, 3), st.integers(0, 3)),
        min_size=1,
        max_size=6,
    )
)
async def test_random_request_sequences_stay_in_their_world(
    filled: tuple[Harness, list[World]], steps: list[tuple[tuple[str, str], int, int]]
) -> None:
    h, worlds = filled
    for route, caller, target in steps:
        await _check(h, worlds, route, worlds[caller], worlds[target])
