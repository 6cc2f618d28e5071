"""The coinpay adapter on the wire: the SDK's request body, exact amounts, typed errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import simplejson
from pydantic import SecretStr
from structlog.testing import capture_logs

from keel.coach.adapters.coinpay import (
    CoinpayClient,
    CoinpayRefused,
    CoinpayUnavailable,
)
from keel.core.resilience import BreakerRegistry, CircuitBreaker, CircuitState

KEY = "cp_test_very_secret_key"
BASE = "http://coinpay.test/coinpay/api"


def payment(**fields: Any) -> dict[str, Any]:
    wire = {
        "id": "9b1c",
        "business_id": "biz",
        "amount": Decimal("10.00"),
        "currency": "USD",
        "blockchain": "ETH",
        "crypto_amount": "0.003846153846153846",
        "crypto_amount_base_units": "3846153846153846",
        "payment_address": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
        "destination_tag": None,
        "status": "pending",
        "metadata": {"coach_invoice_id": "inv"},
        "expires_at": "2026-03-02T12:15:00Z",
    }
    wire.update(fields)
    return wire


def reply(status: int, body: Any) -> httpx.Response:
    # Decimal as a JSON number with its digits, as coinpay writes it.
    text = simplejson.dumps(body, use_decimal=True) if body is not None else "<html>"
    return httpx.Response(status, content=text.encode())


def client_for(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> tuple[CoinpayClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(record))
    breaker = kwargs.pop("breaker", None) or CircuitBreaker(
        "test-coinpay", minimum_calls=4, registry=BreakerRegistry()
    )
    client = CoinpayClient(
        http,
        base_url=BASE + "/",
        api_key=SecretStr(KEY),
        business_id="biz",
        breaker=breaker,
        retry_base_delay=0,
        **kwargs,
    )
    return client, seen


async def test_create_sends_the_sdks_body_with_an_exact_amount() -> None:
    client, seen = client_for(lambda _: reply(201, {"success": True, "payment": payment()}))
    made = await client.create_payment(
        Decimal("9.99"),
        "eth",
        "coach: 30 days",
        {"coach_invoice_id": "inv"},
        idempotency_key="coach-invoice-inv",
    )
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/payments/create")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Idempotency-Key"] == "coach-invoice-inv"
    assert request.content == (
        b'{"business_id": "biz", "amount": 9.99, "currency": "USD", "blockchain": "ETH", '
        b'"description": "coach: 30 days", "metadata": {"coach_invoice_id": "inv"}}'
    )
    assert made.crypto_amount == Decimal("0.003846153846153846")
    assert made.amount_usd == Decimal("10.00")
    assert made.expires_at == datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    assert made.metadata == {"coach_invoice_id": "inv"}


async def test_a_crypto_amount_sent_as_a_json_number_keeps_its_digits() -> None:
    wire = payment(crypto_amount=Decimal("0.003846153846153846"))
    client, _ = client_for(lambda _: reply(200, {"payment": wire}))
    got = await client.get_payment("9b1c")
    assert got.crypto_amount == Decimal("0.003846153846153846")  # a float has 0.0038461538461538464


async def test_get_encodes_the_id_in_the_path() -> None:
    client, seen = client_for(lambda _: reply(200, {"payment": payment()}))
    await client.get_payment("a/b")
    assert seen[0].url.raw_path == b"/coinpay/api/payments/a%2Fb"


async def test_a_refusal_carries_coinpays_problem() -> None:
    problem = {
        "type": "about:blank#no_wallet",
        "status": 422,
        "detail": "No ETH wallet for this business",
        "code": "no_wallet",
        "success": False,
        "error": "No ETH wallet for this business",
    }
    client, _ = client_for(lambda _: reply(422, problem))
    with pytest.raises(CoinpayRefused) as caught:
        await client.create_payment(Decimal(10), "ETH", "d", {})
    assert caught.value.coinpay_status == 422
    assert caught.value.coinpay_code == "no_wallet"
    assert "No ETH wallet" in caught.value.detail
    assert client.breaker.state is CircuitState.CLOSED  # coinpay answered: not an outage


@pytest.mark.parametrize(
    "respond",
    [
        lambda _: reply(503, {"error": "down"}),
        lambda _: reply(429, {"error": "slow down"}),
        lambda _: reply(502, None),  # a proxy's HTML page
        lambda _: reply(201, {"payment": payment(crypto_amount="lots")}),
        lambda _: reply(201, {"payment": payment(crypto_amount="0")}),
        lambda _: reply(201, {"payment": payment(expires_at="2026-03-02T12:15:00")}),
        lambda _: reply(201, {"payment": payment(id="")}),
        lambda _: reply(201, ["not", "an", "object"]),
        lambda _: reply(204, None),
    ],
)
async def test_no_usable_answer_is_unavailable(
    respond: Callable[[httpx.Request], httpx.Response],
) -> None:
    client, _ = client_for(respond)
    with pytest.raises(CoinpayUnavailable):
        await client.create_payment(Decimal(10), "ETH", "d", {})


async def test_network_errors_and_timeouts_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    client, _ = client_for(refuse)
    with pytest.raises(CoinpayUnavailable, match="ConnectError"):
        await client.get_payment("x")

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, _ = client_for(slow)
    with pytest.raises(CoinpayUnavailable, match="ReadTimeout"):
        await client.get_payment("x")


async def test_the_breaker_opens_and_then_spares_coinpay() -> None:
    client, seen = client_for(lambda _: reply(500, {"error": "boom"}))
    for _ in range(2):  # each retried once
        with pytest.raises(CoinpayUnavailable):
            await client.get_payment("x")
    assert client.breaker.state is CircuitState.OPEN
    with pytest.raises(CoinpayUnavailable, match="circuit open"):
        await client.get_payment("x")
    assert len(seen) == 4


async def test_a_lost_create_reply_is_asked_again_with_the_same_key() -> None:
    answers = iter([reply(504, {"error": "gateway timeout"}), reply(201, {"payment": payment()})])
    client, seen = client_for(lambda _: next(answers))
    made = await client.create_payment(
        Decimal(10), "ETH", "d", {}, idempotency_key="coach-invoice-1"
    )
    assert made.id == "9b1c"
    assert [r.headers["Idempotency-Key"] for r in seen] == ["coach-invoice-1"] * 2
    assert seen[0].content == seen[1].content


async def test_a_create_without_a_key_is_never_sent_twice() -> None:
    client, seen = client_for(lambda _: reply(504, {"error": "gateway timeout"}))
    with pytest.raises(CoinpayUnavailable):
        await client.create_payment(Decimal(10), "ETH", "d", {})
    assert len(seen) == 1


async def test_a_refusal_is_not_retried() -> None:
    client, seen = client_for(lambda _: reply(404, {"detail": "Payment not found"}))
    with pytest.raises(CoinpayRefused):
        await client.get_payment("x")
    assert len(seen) == 1


async def test_the_api_key_is_never_shown() -> None:
    client, _ = client_for(lambda _: reply(500, {"error": "boom"}))
    with capture_logs() as logs, pytest.raises(CoinpayUnavailable) as caught:
        await client.get_payment("x")
    assert logs  # the failure was logged ...
    assert KEY not in repr(logs) + repr(client) + str(caught.value) + repr(caught.value.extra)


def test_bad_configuration_fails_at_construction() -> None:
    http = httpx.AsyncClient()
    with pytest.raises(ValueError, match="absolute"):
        CoinpayClient(http, base_url="coinpay/api", api_key=SecretStr(KEY), business_id="b")
    with pytest.raises(ValueError, match="API key"):
        CoinpayClient(http, base_url=BASE, api_key=SecretStr(""), business_id="b")
