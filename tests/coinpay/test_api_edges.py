"""Bad input on every route, tenant isolation, rate limits and the idempotency race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from keel.coinpay import apikeys, businesses, payments
from tests.coinpay.conftest import Harness, make_harness


def is_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["success"] is False
    assert body["error"]
    return body


async def other_business_key(h: Harness) -> tuple[str, str]:
    async with h.gw.sessions() as session, session.begin():
        other = await businesses.create_business(session, h.clock, name="Other")
        _, key = await apikeys.create_key(
            session, h.gw.box, h.operator, business_id=other, mode="test"
        )
    return other, key


async def test_a_key_never_sees_another_business(harness: Harness) -> None:
    payment = await harness.create_payment()
    other, key = await other_business_key(harness)
    got = await harness.client.get(f"/api/payments/{payment['id']}", headers=harness.auth(key))
    is_problem(got, 404)
    listed = await harness.client.get(
        f"/api/payments?businessId={harness.business_id}", headers=harness.auth(key)
    )
    is_problem(listed, 403)
    own = await harness.client.get(f"/api/payments?businessId={other}", headers=harness.auth(key))
    assert own.json()["payments"] == []
    for path in (
        f"/api/businesses/{harness.business_id}/wallets",
        f"/api/businesses/{harness.business_id}/webhooks",
        f"/api/supported-coins?business_id={harness.business_id}",
    ):
        is_problem(await harness.client.get(path, headers=harness.auth(key)), 403)
    sim = await harness.client.post(
        f"/api/payments/{payment['id']}/simulate",
        json={"amount_crypto": "1"},
        headers=harness.auth(key),
    )
    is_problem(sim, 404)
    events = await harness.client.get(
        f"/api/payments/{payment['id']}/events", headers=harness.auth(key)
    )
    is_problem(events, 404)


async def test_concurrent_requests_with_one_idempotency_key_create_one_payment(
    harness: Harness,
) -> None:
    body = {"business_id": harness.business_id, "amount": 10, "blockchain": "SOL"}
    headers = {**harness.auth(), "Idempotency-Key": "same"}
    replies = await asyncio.gather(
        *(
            harness.client.post("/api/payments/create", json=body, headers=headers)
            for _ in range(10)
        )
    )
    assert {r.status_code for r in replies} == {201}
    assert len({r.json()["payment"]["id"] for r in replies}) == 1


@pytest.fixture
async def limited(db_url: str) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, None, rate_limit_per_key=3):
        yield h


async def test_the_rate_limit_answers_429_with_headers(limited: Harness) -> None:
    for _ in range(3):
        assert (
            await limited.client.get("/api/payments", headers=limited.auth())
        ).status_code == 200
    blocked = await limited.client.get("/api/payments", headers=limited.auth())
    body = is_problem(blocked, 429)
    assert body["code"] == "rate_limited"
    assert blocked.headers["X-RateLimit-Remaining"] == "0"
    assert int(blocked.headers["Retry-After"]) >= 1
    # Another key of the same business has its own per-key budget.
    other = await limited.client.get("/api/payments", headers=limited.auth(limited.live_key))
    assert other.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("wallets", {"cryptocurrency": "BTC", "wallet_address": "bc1qbad"}, 400),
        ("wallets", {"cryptocurrency": "NOPE", "wallet_address": "x"}, 400),
        ("wallets", {"cryptocurrency": "ETH", "wallet_address": "0x123"}, 400),
        ("wallets", {"wallet_address": "x"}, 400),
        ("webhooks", {"url": "https://shop.example/hook", "events": ["payment.nope"]}, 400),
        ("webhooks", {"url": "https://shop.example/hook", "extra": 1}, 400),
        ("webhooks", {"url": ""}, 400),
    ],
)
async def test_bad_business_settings_get_400(
    harness: Harness, path: str, body: dict[str, object], status: int
) -> None:
    response = await harness.client.post(
        f"/api/businesses/{harness.business_id}/{path}", json=body, headers=harness.auth()
    )
    is_problem(response, status)


@pytest.mark.parametrize(
    "body",
    [
        {"amount_crypto": "-1"},
        {"amount_crypto": "0"},
        {"amount_crypto": "0.000000001"},  # more decimals than BTC has
        {"amount_crypto": "abc"},
        {"confirmations": -1},
        {"amount_crypto": "1", "surprise": True},
        {"tx_hash": "sim_unknown", "confirmations": 3},
        {},
    ],
)
async def test_bad_simulations_get_400(harness: Harness, body: dict[str, object]) -> None:
    payment = await harness.create_payment()
    response = await harness.client.post(
        f"/api/payments/{payment['id']}/simulate", json=body, headers=harness.auth()
    )
    is_problem(response, 400)


@pytest.mark.parametrize(
    "query",
    ["status=nope", "limit=0", "limit=1000", "offset=-1", "limit=abc"],
)
async def test_bad_list_queries_get_400(harness: Harness, query: str) -> None:
    is_problem(await harness.client.get(f"/api/payments?{query}", headers=harness.auth()), 400)


@pytest.mark.parametrize("query", ["crypto=DOGGO", "crypto=BTC&fiat=ZZZ", ""])
async def test_bad_rate_queries_get_400(harness: Harness, query: str) -> None:
    is_problem(await harness.client.get(f"/api/rates?{query}"), 400)


async def test_qr_is_a_png_of_the_payment_uri(harness: Harness) -> None:
    payment = await harness.create_payment()
    response = await harness.client.get(f"/api/payments/{payment['id']}/qr")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")
    is_problem(await harness.client.get("/api/payments/nope/qr"), 404)


async def test_checkout_page_and_status_of_unknown_payment_are_404(harness: Harness) -> None:
    assert (await harness.client.get("/pay/nope")).status_code == 404
    assert (await harness.client.get("/pay/nope/status")).status_code == 404


async def test_checkout_page_shows_amount_address_and_uri(harness: Harness) -> None:
    payment = await harness.create_payment(blockchain="USDC_SOL", description="Mug")
    page = await harness.client.get(f"/pay/{payment['id']}")
    assert page.status_code == 200
    html = page.text
    assert payment["payment_address"] in html
    assert payment["crypto_amount"] in html
    assert "spl-token=EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v" in html
    assert "Mug" in html
    assert "metadata" not in html


async def test_wallets_and_webhooks_round_trip(harness: Harness) -> None:
    base = f"/api/businesses/{harness.business_id}"
    set_wallet = await harness.client.post(
        f"{base}/wallets",
        json={
            "cryptocurrency": "eth",
            "wallet_address": "0x9858effd232b4033e47d90003d41ec34ecaeda94",
        },
        headers=harness.auth(),
    )
    assert (
        set_wallet.json()["wallet"]["wallet_address"]
        == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    )
    created = await harness.client.post(
        f"{base}/webhooks",
        json={"url": "https://shop.example/hook", "events": ["payment.confirmed"]},
        headers=harness.auth(),
    )
    assert created.status_code == 201
    assert created.json()["webhook"]["secret"].startswith("whsec_")
    endpoint_id = created.json()["webhook"]["id"]
    deleted = await harness.client.delete(f"{base}/webhooks/{endpoint_id}", headers=harness.auth())
    assert deleted.status_code == 200
    listed = await harness.client.get(f"{base}/webhooks", headers=harness.auth())
    states = {w["id"]: w["active"] for w in listed.json()["webhooks"]}
    assert states[endpoint_id] is False
    is_problem(await harness.client.delete(f"{base}/webhooks/nope", headers=harness.auth()), 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/payments/create", "description"),
        ("GET", "/api/payments/a%00b", None),
        ("GET", "/pay/a%00b/status", None),
    ],
)
async def test_nul_characters_are_a_400_never_a_500(
    harness: Harness, method: str, path: str, body: str | None
) -> None:
    payload = None
    if body:
        payload = {
            "business_id": harness.business_id,
            "amount": 10,
            "blockchain": "BTC",
            body: "a\u0000b",
        }
    response = await harness.client.request(method, path, json=payload, headers=harness.auth())
    assert response.status_code in (201, 400, 404), response.text


@pytest.mark.parametrize(
    "url", ["http://[/", "http://a:b@[/", "http://shop.example:99999/x", "http://exa mple.com/"]
)
async def test_unparseable_webhook_urls_are_400(harness: Harness, url: str) -> None:
    response = await harness.client.post(
        f"/api/businesses/{harness.business_id}/webhooks",
        json={"url": url},
        headers=harness.auth(),
    )
    is_problem(response, 400)


@pytest.mark.parametrize("amount", ["1e999999", "1e-100000", "1e100", "1" + "0" * 64])
async def test_absurd_simulated_amounts_are_400_quickly(harness: Harness, amount: str) -> None:
    payment = await harness.create_payment()
    response = await harness.client.post(
        f"/api/payments/{payment['id']}/simulate",
        json={"amount_crypto": amount},
        headers=harness.auth(),
    )
    body = is_problem(response, 400)
    assert len(str(body["detail"])) < 300


async def test_new_webhook_reply_shows_the_stored_normalised_endpoint(harness: Harness) -> None:
    base = f"/api/businesses/{harness.business_id}"
    sent_events = ["payment.expired", "payment.confirmed", "payment.expired"]
    created = await harness.client.post(
        f"{base}/webhooks",
        json={"url": "  https://shop.example/hook  ", "events": sent_events},
        headers=harness.auth(),
    )
    assert created.status_code == 201, created.text
    webhook = created.json()["webhook"]
    assert webhook["events"] == ["payment.confirmed", "payment.expired"]
    assert webhook["url"] == "https://shop.example/hook"
    assert webhook["active"] is True
    listed = await harness.client.get(f"{base}/webhooks", headers=harness.auth())
    stored = next(w for w in listed.json()["webhooks"] if w["id"] == webhook["id"])
    assert {k: v for k, v in webhook.items() if k != "secret"} == stored


async def test_new_webhook_for_every_event_replies_null_events(harness: Harness) -> None:
    created = await harness.client.post(
        f"/api/businesses/{harness.business_id}/webhooks",
        json={"url": "https://shop.example/all"},
        headers=harness.auth(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["webhook"]["events"] is None


async def test_an_unexpected_failure_is_a_coinpay_shaped_500(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database said something internal")

    monkeypatch.setattr(payments, "get", broken)
    response = await harness.client.get(
        "/api/payments/some-id", headers={**harness.auth(), "X-Request-ID": "trace-500"}
    )
    body = is_problem(response, 500)
    assert response.headers["x-request-id"] == "trace-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert body["request_id"] == "trace-500"
    assert body["code"] == "internal_error"
    assert "trace-500" in str(body["error"])
    assert "database said" not in response.text


async def test_an_ada_payment_below_the_smallest_output_cardano_accepts_is_a_422(
    harness: Harness,
) -> None:
    # ADA at 0.982 USD: 1.00 USD is about 1.018 ADA, less than an output the merchant could be
    # paid (about 0.97 ADA) once the commission and the sweep's fee are taken (ADR 0025).
    body = {"business_id": harness.business_id, "amount": "1.00", "blockchain": "ADA"}
    refused = await harness.client.post("/api/payments/create", json=body, headers=harness.auth())
    problem = is_problem(refused, 422)
    assert problem["code"] == "amount_below_minimum_output"
    assert "at least 1.167333 ADA" in str(problem["detail"])
    enough = await harness.client.post(
        "/api/payments/create", json={**body, "amount": "1.20"}, headers=harness.auth()
    )
    assert enough.status_code == 201, enough.text
    assert enough.json()["payment"]["crypto_amount"] == "1.221996"  # rounded up
