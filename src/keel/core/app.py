"""App factory pieces every product uses: request ids, problem+json errors, security headers,
HTTP metrics, and the root app that mounts products with /healthz, /readyz and /metrics."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.errors import KeelError
from keel.core.logging import get_logger, request_id_var

log = get_logger("keel.http")

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

HTTP_REQUESTS = Counter(
    "keel_http_requests_total", "HTTP requests", ["app", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "keel_http_request_duration_seconds", "HTTP request latency", ["app", "method", "route"]
)

ProblemExtras = Callable[[int, str, str], dict[str, Any]]
"""(status, code, detail) -> extra fields a product adds to every error body."""


class RequestContextMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` when sane), echoes it, binds
    it to logs, adds security headers and records latency per route template.

    It also renders unhandled exceptions as a problem+json 500 (with the product's
    ``extras``): Starlette's ServerErrorMiddleware sits outside every user middleware, so a
    500 rendered there would lose the request id, the security headers and those fields.
    """

    def __init__(self, app: ASGIApp, *, app_name: str, extras: ProblemExtras | None = None) -> None:
        self.app = app
        self.app_name = app_name
        self.extras = extras

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, int | None] = {"status": None}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                headers.append((b"x-frame-options", b"DENY"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception(
                "unhandled_error",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path"),
            )
            if status_holder["status"] is not None:
                raise  # the reply is under way: only the server can end it (it drops it)
            await self._internal_error(scope, receive, send_with_headers, request_id)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            method = scope.get("method", "GET")
            HTTP_LATENCY.labels(self.app_name, method, template).observe(elapsed)
            status = status_holder["status"] or 500
            HTTP_REQUESTS.labels(self.app_name, method, template, status).inc()
            request_id_var.reset(token)

    async def _internal_error(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        # Names only the request id: the exception's text may hold secrets or internals.
        body = problem_body(
            500,
            "internal_error",
            "Internal error",
            f"Internal error; quote request id {request_id}",
            Request(scope).url.path,
            self.extras,
        )
        response = JSONResponse(body, status_code=500, media_type=PROBLEM_JSON)
        await response(scope, receive, send)


def problem_body(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    extras: ProblemExtras | None,
    **fields: Any,
) -> dict[str, Any]:
    """The ``application/problem+json`` body every error reply carries."""
    body: dict[str, Any] = {
        "type": f"about:blank#{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        "request_id": request_id_var.get(),
        **fields,
    }
    if extras:
        body.update(extras(status, code, detail))
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    request: Request,
    extras: ProblemExtras | None,
    **fields: Any,
) -> JSONResponse:
    body = problem_body(status, code, title, detail, request.url.path, extras, **fields)
    headers = {}
    if status == 429 and "retry_after" in fields:
        headers["Retry-After"] = str(fields["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI, *, extras: ProblemExtras | None = None) -> None:
    """Render our errors, bad input and HTTP errors as ``application/problem+json``. Anything
    else propagates to :class:`RequestContextMiddleware`, which renders the 500."""

    @app.exception_handler(KeelError)
    async def _keel_error(request: Request, exc: KeelError) -> JSONResponse:
        safe_extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | list)}
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, request, extras, **safe_extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
        detail = f"{where}: {first['msg']}" if where else str(first["msg"])
        unknown = [e["loc"][-1] for e in errors if e["type"] == "extra_forbidden" and e["loc"]]
        if unknown:
            detail = f"Unknown fields: {', '.join(unknown)}"
        if any(e["type"] == "json_invalid" for e in errors):
            detail = "Malformed JSON body"
        return problem_response(
            400, "invalid_request", "Bad request", detail, request, extras, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        response = problem_response(
            exc.status_code, code, str(exc.detail), str(exc.detail), request, extras
        )
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # SQLSTATE class 22 is a data exception: the database refused a value the edge let
        # through (PostgreSQL rejects NUL in text). That is the caller's input, not our fault.
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", ""))
        if isinstance(exc, DataError) or sqlstate.startswith("22"):
            return problem_response(
                400,
                "invalid_data",
                "Bad request",
                "The request contains a value that cannot be stored (e.g. a NUL character)",
                request,
                extras,
            )
        raise exc  # ours to log and render as a 500, in RequestContextMiddleware


class JsonNumber(float):
    """A JSON number with a fraction or exponent, as read from a request body: it behaves as
    the float it always was, and ``text`` keeps the digits as sent, so that money is read
    exactly from them (``19.99`` is ``Decimal("19.99")``, never the float's binary value)."""

    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


_MAX_JSON_INT_DIGITS = 100  # int() of thousands of digits is slow, then refused


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_JSON_INT_DIGITS:
        raise json.JSONDecodeError("integer too long", text, 0)
    return int(text)


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def loads_request_json(body: bytes | str) -> Any:
    """A request body's JSON (RFC 8259 only: no NaN or Infinity, integers of at most 100
    digits), numbers with a fraction or exponent as :class:`JsonNumber`."""
    return json.loads(
        body, parse_float=JsonNumber, parse_int=_json_int, parse_constant=_no_constant
    )


class _ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_request_json(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    """A route whose JSON body is read by :func:`loads_request_json` (``APIRouter(route_class=
    ExactJSONRoute)``), so a body model can take amounts from the digits the client sent."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJSONRequest(request.scope, request.receive))

        return exact


@dataclass(frozen=True)
class Product:
    """A mounted product: its ASGI app, the lifespan that starts its workers, a readiness probe."""

    name: str
    app: FastAPI
    lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ready: Callable[[], Awaitable[bool]]


def create_root_app(products: Sequence[Product]) -> FastAPI:
    """Mount each product at ``/<name>`` and serve the shared probes and metrics."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Starlette does not run mounted apps' lifespans, so the root enters each one.
        async with AsyncExitStack() as stack:
            for product in products:
                await stack.enter_async_context(product.lifespan())
            yield

    root = FastAPI(title="Keel", lifespan=lifespan, docs_url=None, redoc_url=None)

    @root.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @root.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {}
        for product in products:
            try:
                checks[product.name] = await product.ready()
            except Exception:  # a failing probe is "not ready", never a 500
                checks[product.name] = False
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @root.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for product in products:
        root.mount(f"/{product.name}", product.app)
    return root
