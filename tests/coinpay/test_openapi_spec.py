"""coinpay's OpenAPI document names every error a route answers, with one Problem schema."""

from __future__ import annotations

from typing import Any

import pytest

from keel.coinpay.app import create_app
from keel.coinpay.settings import CoinpaySettings
from keel.core.crypto import new_key

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    product = create_app(CoinpaySettings(master_key=new_key(), run_workers=False))
    return product.app.openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_error_response_is_a_problem(spec: dict[str, Any]) -> None:
    for label, operation in operations(spec):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {"400", "500"} <= set(errors), label
        for status, response in errors.items():
            assert response["content"] == PROBLEM, (label, status)


@pytest.mark.parametrize(
    ("label", "statuses"),
    [
        ("POST /api/payments/create", {"400", "401", "403", "422", "429", "500", "503"}),
        ("GET /api/payments/{payment_id}", {"400", "401", "403", "404", "429", "500"}),
        (
            "POST /api/payments/{payment_id}/simulate",
            {"400", "401", "403", "404", "409", "429", "500"},
        ),
        ("GET /api/payments/{payment_id}/qr", {"400", "404", "500"}),
        ("GET /api/rates", {"400", "500", "503"}),
        (
            "DELETE /api/businesses/{business_id}/webhooks/{endpoint_id}",
            {"400", "401", "403", "404", "429", "500"},
        ),
    ],
)
def test_routes_document_the_errors_they_raise(
    spec: dict[str, Any], label: str, statuses: set[str]
) -> None:
    operation = dict(operations(spec))[label]
    assert {s for s in operation["responses"] if int(s) >= 400} == statuses


def test_problem_schema_carries_coinpays_fields(spec: dict[str, Any]) -> None:
    problem = spec["components"]["schemas"]["Problem"]
    assert problem["properties"]["success"]["const"] is False
    assert {"success", "error", "request_id", "status", "type"} <= set(problem["required"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]
