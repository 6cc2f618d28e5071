"""The app factory pieces: request ids, problem+json errors and security headers, 500s included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from keel.core.app import PROBLEM_JSON, RequestContextMiddleware, install_problem_handlers
from keel.core.errors import NotFound

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def product_fields(_status: int, _code: str, detail: str) -> dict[str, Any]:
    return {"success": False, "error": detail}


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, extras=product_fields)
    app.add_middleware(RequestContextMiddleware, app_name="test", extras=product_fields)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in a message nobody should see")

    @app.get("/database-down")
    async def database_down() -> None:
        raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection"))

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("No such thing")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first chunk"
            raise RuntimeError("failed mid-stream")

        return StreamingResponse(chunks())

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["success"] is False
    assert body["error"] == body["detail"]
    return body


async def test_unhandled_exception_is_a_problem_500_with_request_id_and_headers(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        response = await client.get("/boom", headers={"X-Request-ID": "req-42"})
    body = assert_problem(response, 500)
    assert response.headers["x-request-id"] == "req-42"
    assert body["code"] == "internal_error"
    assert body["instance"] == "/boom"
    assert "req-42" in body["detail"]
    assert "hunter2" not in response.text
    [entry] = [e for e in logs if e["event"] == "unhandled_error"]
    assert entry["request_id"] == "req-42"
    assert entry["path"] == "/boom"
    assert entry["log_level"] == "error"
    assert entry["exc_info"] is True


async def test_a_500_without_a_caller_id_gets_a_generated_one(client: httpx.AsyncClient) -> None:
    with capture_logs() as logs:
        response = await client.get("/boom", headers={"X-Request-ID": "bad id with spaces"})
    body = assert_problem(response, 500)
    assert body["request_id"] != "bad id with spaces"
    assert len(body["request_id"]) == 32
    assert [e["request_id"] for e in logs if e["event"] == "unhandled_error"] == [
        body["request_id"]
    ]


async def test_database_errors_that_are_not_bad_input_are_a_500(
    client: httpx.AsyncClient,
) -> None:
    with capture_logs() as logs:
        response = await client.get("/database-down")
    body = assert_problem(response, 500)
    assert "server closed" not in response.text
    assert any(e["event"] == "unhandled_error" for e in logs)
    assert body["code"] == "internal_error"


async def test_known_errors_keep_their_status_and_headers(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/missing"), 404)
    assert body["code"] == "not_found"
    assert body["detail"] == "No such thing"


async def test_a_failure_after_the_reply_started_is_logged_and_left_to_the_server(
    client: httpx.AsyncClient,
) -> None:
    # Headers and a first chunk are out: a 500 can no longer be sent, the connection drops.
    with capture_logs() as logs, pytest.raises(RuntimeError, match="mid-stream"):
        await client.get("/stream", headers={"X-Request-ID": "req-7"})
    assert [e["request_id"] for e in logs if e["event"] == "unhandled_error"] == ["req-7"]
