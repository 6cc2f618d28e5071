from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from keel.coinpay import models
from keel.coinpay.assets import COINS
from keel.coinpay.chains import config
from tests.coinpay.conftest import Harness


async def test_create_returns_coinpay_wire_shape(harness: Harness) -> None:
    payment = await harness.create_payment(description="Order 42")
    for key in (
        "id",
        "business_id",
        "amount",
        "currency",
        "blockchain",
        "crypto_amount",
        "payment_address",
        "qr_code",
        "status",
        "expires_at",
        "created_at",
        "metadata",
        "tx_hash",
    ):
        assert key in payment
    assert payment["status"] == "pending"
    assert isinstance(payment["crypto_amount"], str)
    assert payment["amount"] == 100.0
    assert payment["qr_code"].startswith("data:image/png;base64,")
    assert payment["payment_uri"].startswith(f"bitcoin:{payment['payment_address']}?amount=")
    assert payment["metadata"] == {"order": "42"}


async def test_fiat_amount_is_an_exact_json_number(harness: Harness) -> None:
    payment = await harness.create_payment(amount=19.99)
    response = await harness.client.get(f"/api/payments/{payment['id']}", headers=harness.auth())
    assert b'"amount":19.99' in response.content
    assert response.json()["success"] is True


async def test_first_addresses_match_the_published_vectors(harness: Harness) -> None:
    btc = await harness.create_payment(blockchain="BTC")
    eth = await harness.create_payment(blockchain="ETH")
    sol = await harness.create_payment(blockchain="SOL")
    assert btc["payment_address"] == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert eth["payment_address"] == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    assert sol["payment_address"] == "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"


async def test_evm_chains_share_one_index_counter(harness: Harness) -> None:
    addresses = {
        (await harness.create_payment(blockchain=chain))["payment_address"]
        for chain in ("ETH", "POL", "BNB", "USDT_ETH", "USDC_BNB")
    }
    assert len(addresses) == 5


async def test_idempotency_key_returns_the_first_result(harness: Harness) -> None:
    body = {
        "business_id": harness.business_id,
        "amount": 10,
        "currency": "USD",
        "blockchain": "LTC",
    }
    headers = {**harness.auth(), "Idempotency-Key": "order-7"}
    first = await harness.client.post("/api/payments/create", json=body, headers=headers)
    again = await harness.client.post("/api/payments/create", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json()["payment"]["id"] == again.json()["payment"]["id"]
    changed = await harness.client.post(
        "/api/payments/create", json={**body, "amount": 11}, headers=headers
    )
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"


async def test_test_keys_see_only_test_payments(harness: Harness) -> None:
    payment = await harness.create_payment()
    live = await harness.client.get(
        f"/api/payments/{payment['id']}", headers=harness.auth(harness.live_key)
    )
    assert live.status_code == 404
    listed = await harness.client.get(
        f"/api/payments?businessId={harness.business_id}", headers=harness.auth(harness.live_key)
    )
    assert listed.json()["payments"] == []
    mine = await harness.client.get(
        f"/api/payments?businessId={harness.business_id}&status=pending", headers=harness.auth()
    )
    assert [p["id"] for p in mine.json()["payments"]] == [payment["id"]]


async def test_rate_limit_headers_are_sent(harness: Harness) -> None:
    response = await harness.client.get("/api/payments", headers=harness.auth())
    assert response.headers["X-RateLimit-Limit"] == "600"
    assert int(response.headers["X-RateLimit-Remaining"]) < 600


async def test_supported_coins_lists_every_coin_with_its_wallet(harness: Harness) -> None:
    response = await harness.client.get(
        f"/api/supported-coins?business_id={harness.business_id}", headers=harness.auth()
    )
    body = response.json()
    assert body["total"] == 18
    assert {c["symbol"] for c in body["coins"]} >= {"BTC", "USDT_SOL", "USDC_BNB"}
    assert all(c["has_wallet"] for c in body["coins"])


async def test_rates_endpoint_reports_a_decimal_rate(harness: Harness) -> None:
    response = await harness.client.get("/api/rates?crypto=BTC&fiat=EUR")
    assert response.status_code == 200
    assert Decimal(response.json()["rate"]) > 0


async def test_crypto_amount_uses_the_frozen_rate(harness: Harness) -> None:
    payment = await harness.create_payment(amount="100.00", blockchain="USDT_ETH")
    rate = Decimal(payment["exchange_rate"])
    units = int(payment["crypto_amount_base_units"])
    assert units * rate >= Decimal(100) * 10**6
    assert (units - 1) * rate < Decimal(100) * 10**6


def problem(response: object) -> dict[str, object]:
    assert response.headers["content-type"].startswith("application/problem+json")  # type: ignore[attr-defined]
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert body["success"] is False
    assert body["error"]
    return body


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"blockchain": "XYZ"}, 400, "unsupported_coin"),
        ({"amount": -5}, 400, "invalid_amount"),
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": "1e15"}, 400, "invalid_amount"),
        ({"amount": "12.345"}, 400, "invalid_amount"),
        ({"amount": "abc"}, 400, "invalid_request"),
        ({"currency": "XXX"}, 400, "unsupported_currency"),
        ({"business_id": "someone-else"}, 403, "forbidden"),
    ],
)
async def test_bad_payment_requests_get_clear_4xx(
    harness: Harness, overrides: dict[str, object], status: int, code: str
) -> None:
    body = {
        "business_id": harness.business_id,
        "amount": 10,
        "currency": "USD",
        "blockchain": "BTC",
        **overrides,
    }
    response = await harness.client.post("/api/payments/create", json=body, headers=harness.auth())
    assert response.status_code == status, response.text
    assert problem(response)["code"] == code


async def test_malformed_json_is_a_400(harness: Harness) -> None:
    response = await harness.client.post(
        "/api/payments/create",
        content=b'{"amount": 10,',
        headers={**harness.auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert problem(response)["detail"] == "Malformed JSON body"


@pytest.mark.parametrize(
    "header",
    [None, "Bearer nope", "Bearer cp_test_" + "0" * 32, "Basic abc"],
)
async def test_bad_keys_are_401(harness: Harness, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = await harness.client.get("/api/payments", headers=headers)
    assert response.status_code == 401
    problem(response)


async def test_wrong_scope_is_403(harness: Harness) -> None:
    from keel.coinpay import apikeys

    async with harness.gw.sessions() as session, session.begin():
        _, reader = await apikeys.create_key(
            session,
            harness.gw.box,
            harness.operator,
            business_id=harness.business_id,
            mode="test",
            scopes=["payments:read"],
        )
    body = {"business_id": harness.business_id, "amount": 10, "blockchain": "BTC"}
    response = await harness.client.post(
        "/api/payments/create", json=body, headers=harness.auth(reader)
    )
    assert response.status_code == 403
    assert problem(response)["code"] == "missing_scope"


async def test_unknown_payment_is_404(harness: Harness) -> None:
    response = await harness.client.get("/api/payments/nope", headers=harness.auth())
    assert response.status_code == 404
    problem(response)


async def test_simulating_a_live_payment_is_refused(harness: Harness) -> None:
    body = {"business_id": harness.business_id, "amount": 10, "blockchain": "BTC"}
    created = await harness.client.post(
        "/api/payments/create", json=body, headers=harness.auth(harness.live_key)
    )
    payment_id = created.json()["payment"]["id"]
    response = await harness.client.post(
        f"/api/payments/{payment_id}/simulate",
        json={"amount_crypto": "1"},
        headers=harness.auth(harness.live_key),
    )
    assert response.status_code == 409
    assert problem(response)["code"] == "not_test_payment"


async def test_a_fresh_process_loads_the_seed_and_creates_payments(harness: Harness) -> None:
    from keel.coinpay.custody import Custody

    # A restarted process: nothing cached, the seed must come from the database.
    harness.gw.custody = Custody(harness.gw.box, harness.gw.sessions)
    payment = await harness.create_payment(blockchain="XRP")
    assert payment["payment_address"] == "rHsMGQEkVNJmpGWs8XUBoTBiAAbwxZN5v3"


async def test_creating_before_init_is_a_clear_503(harness: Harness) -> None:
    from sqlalchemy import delete

    from keel.coinpay import models
    from keel.coinpay.custody import Custody

    async with harness.gw.sessions() as session, session.begin():
        await session.execute(delete(models.master_seed))
    harness.gw.custody = Custody(harness.gw.box, harness.gw.sessions)
    body = {"business_id": harness.business_id, "amount": 10, "blockchain": "BTC"}
    response = await harness.client.post("/api/payments/create", json=body, headers=harness.auth())
    assert response.status_code == 503
    assert response.json()["code"] == "seed_missing"


async def test_a_live_payment_on_a_chain_nobody_watches_is_refused_before_anything_is_taken(
    harness: Harness,
) -> None:
    async def indexes_used() -> int:
        async with harness.gw.sessions() as session:
            return int(await session.scalar(select(func.sum(models.hd_families.c.next_index))) or 0)

    before = await indexes_used()
    body = {"business_id": harness.business_id, "amount": 10, "blockchain": "SOL"}
    response = await harness.client.post(
        "/api/payments/create", json=body, headers=harness.auth(harness.live_key)
    )
    assert response.status_code == 422
    assert problem(response)["code"] == "chain_not_watched"
    assert "KEEL_COINPAY_SOL_RPC_URLS" in str(problem(response)["detail"])
    listed = await harness.client.get("/api/payments", headers=harness.auth(harness.live_key))
    assert listed.json()["payments"] == []
    assert await indexes_used() == before
    # The test world's SOL is simulated: always available.
    assert (await harness.create_payment(blockchain="SOL"))["mode"] == "test"


async def test_a_live_payments_wallet_uri_names_the_configured_chain_and_token(
    harness: Harness,
) -> None:
    """A wallet scanning the URI must pay on the chain that is watched: a test network's
    chain id and a token contract of its own, where configured; mainnet's in test mode."""
    token = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    harness.gw.live_chains = config.load(
        {"KEEL_COINPAY_ETH_CHAIN_ID": "31337", "KEEL_COINPAY_USDC_ETH_CONTRACT": token}
    )
    eth = await harness.create_live_payment("ETH")
    assert eth["payment_uri"].startswith(f"ethereum:{eth['payment_address']}@31337?value=")
    usdc = await harness.create_live_payment("USDC_ETH")
    assert usdc["payment_uri"].startswith(f"ethereum:{token}@31337/transfer?address=")
    listed = await harness.client.get("/api/payments", headers=harness.auth(harness.live_key))
    assert {p["payment_uri"] for p in listed.json()["payments"]} == {
        eth["payment_uri"],
        usdc["payment_uri"],
    }
    page = await harness.client.get(f"/pay/{usdc['id']}")
    assert f"ethereum:{token}@31337/transfer" in page.text
    test = await harness.create_payment(blockchain="USDC_ETH")
    assert test["payment_uri"].startswith(f"ethereum:{COINS['USDC_ETH'].contract}@1/transfer")
