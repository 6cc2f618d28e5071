"""The shared Problem schema: routes document their errors as problem+json, and the spec
no longer claims FastAPI's 422 validation body, which our handlers never send."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Query

from keel.core.app import PROBLEM_JSON, RequestContextMiddleware, install_problem_handlers
from keel.core.openapi import Problem, document_problems, problem_responses


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, app_name="test")

    @app.get("/items", responses=problem_responses(400, 404, 429))
    async def items(limit: int = Query(ge=1, le=10)) -> dict[str, int]:
        return {"limit": limit}

    @app.get("/plain")
    async def plain(q: str = "") -> dict[str, str]:
        return {"q": q}

    document_problems(app)
    return app


def test_declared_errors_are_problem_json_with_the_shared_schema() -> None:
    spec = make_app().openapi()
    responses = spec["paths"]["/items"]["get"]["responses"]
    assert sorted(responses) == ["200", "400", "404", "429"]
    for status in ("400", "404", "429"):
        assert responses[status]["content"] == {
            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "Retry-After" in responses["429"]["headers"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "instance",
        "request_id",
    }
    assert "FieldError" in spec["components"]["schemas"]


def test_fastapi_validation_422_is_gone_everywhere() -> None:
    spec = make_app().openapi()
    assert "422" not in spec["paths"]["/plain"]["get"]["responses"]
    assert "422" not in spec["paths"]["/items"]["get"]["responses"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "ValidationError" not in spec["components"]["schemas"]


def test_document_problems_is_idempotent() -> None:
    app = make_app()
    assert app.openapi() == app.openapi()


@pytest.mark.parametrize("query", ["limit=0", "limit=x", ""])
async def test_a_validation_error_fits_the_problem_schema(query: str) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(f"/items?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    problem = Problem.model_validate(body)
    assert problem.code == "invalid_request"
    assert problem.errors
    assert problem.request_id == response.headers["x-request-id"]


def test_a_product_can_describe_its_own_errors() -> None:
    responses = problem_responses(404, 409, descriptions={404: "No such invoice"})
    assert responses[404]["description"] == "No such invoice"
    assert (
        responses[409]["description"] == "The request conflicts with the resource's current state"
    )
