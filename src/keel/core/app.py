"""App factory pieces every product uses: request ids, problem+json errors, security headers,
HTTP metrics, and the root app that mounts products with the front door (/), /healthz, /readyz
and /metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Mount, Route, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core import pages
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

HTTP_ERROR_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    431: "headers_too_large",
}

DEFAULT_MAX_BODY_BYTES = 2**20
# Past these a request is refused with 431 before any app sees it. `keel serve` also caps the
# whole head (request line and headers) in the HTTP server itself; see keel.cli.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 8 * 1024  # one header line, name and value
MAX_HEAD_BYTES = 32 * 1024  # every header line together

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
        # Outside a product (the root's own 404, its request limits) no id was bound yet.
        "request_id": request_id_var.get() or uuid.uuid4().hex,
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
) -> Response:
    """The error reply: problem+json, except that a 404 asked for by a browser (``Accept``
    preferring ``text/html``, see :func:`keel.core.pages.prefers_html`) is a readable page."""
    if status == 404:
        if pages.prefers_html(request.headers.get("accept", "")):
            return pages.not_found(request, detail)
        headers = {"Vary": "Accept"}
    else:
        headers = {}
    body = problem_body(status, code, title, detail, request.url.path, extras, **fields)
    # RFC 9110 and 6585 give Retry-After to 503 (a dependency back soon) and 429.
    if status in (429, 503) and "retry_after" in fields:
        headers["Retry-After"] = str(fields["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI, *, extras: ProblemExtras | None = None) -> None:
    """Render our errors, bad input and HTTP errors as ``application/problem+json``. Anything
    else propagates to :class:`RequestContextMiddleware`, which renders the 500."""

    @app.exception_handler(KeelError)
    async def _keel_error(request: Request, exc: KeelError) -> Response:
        safe_extra = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | list)}
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, request, extras, **safe_extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
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
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        title = HTTPStatus(exc.status_code).phrase  # e.g. "Not Found"; detail says more
        response = problem_response(exc.status_code, code, title, str(exc.detail), request, extras)
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only; a path
            # served by several routes (GET and POST apart) allows all of theirs.
            response.headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
        return response

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
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


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """The methods ``app`` serves at the scope's path, sorted. Each is asked of the routes in
    turn (they may be nested: FastAPI keeps included routers whole). Where documented templates
    overlap (``/payments/create`` and ``/payments/{id}``), the path is the most literal one's,
    and so are its methods, as the OpenAPI document says."""
    routes = [r for r in getattr(app, "routes", ()) if isinstance(r, BaseRoute)]
    served = [
        method
        for method in _METHODS
        if any(r.matches({**scope, "method": method})[0] == Match.FULL for r in routes)
    ]
    openapi = getattr(app, "openapi", None)
    if not isinstance(app, FastAPI) or openapi is None or app.openapi_url is None:
        return served
    root_path, path = scope.get("root_path", ""), scope["path"]
    path = path.removeprefix(root_path) if root_path else path  # as mounted, like the routes
    templates = [
        (template.count("{"), {m.upper() for m in operations})
        for template, operations in openapi().get("paths", {}).items()
        if compile_path(template)[0].match(path)
    ]
    if not templates:
        return served
    fewest = min(params for params, _ in templates)
    documented = set().union(*(methods for params, methods in templates if params == fewest))
    return [method for method in served if method in documented]


class BodyLimit:
    """The body size a request may have; a route that takes bigger bodies (an upload) raises
    it with :func:`allow_body_bytes` before reading."""

    __slots__ = ("max_bytes",)

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes


_BODY_LIMIT_KEY = "keel.body_limit"


def allow_body_bytes(request: Request, max_bytes: int) -> None:
    """Let this request's body be up to ``max_bytes`` (when the app enforces a limit)."""
    limit = request.scope.get(_BODY_LIMIT_KEY)
    if isinstance(limit, BodyLimit):
        limit.max_bytes = max(limit.max_bytes, max_bytes)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body (a signature covers its exact bytes), refused with 413 past ``max_bytes``
    without reading the rest."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> StarletteHTTPException:
    return StarletteHTTPException(413, f"Request body is larger than {limit} bytes")


class RequestLimitsMiddleware:
    """Refuses a request whose head is too big (431: too many headers, a header line or all of
    them too long) and one whose body grows past the limit (413). The body is counted as it
    streams in, chunked or not; a Content-Length already above the limit is refused at the
    first read. A 413 is raised as an HTTP error inside the product, which renders it as
    problem+json like any other."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        sizes = [len(name) + len(value) + 4 for name, value in headers]  # ": " and CRLF
        too_many = len(headers) > MAX_HEADERS
        if too_many or max(sizes, default=0) > MAX_HEADER_BYTES or sum(sizes) > MAX_HEAD_BYTES:
            await self._refuse_head(scope, receive, send)
            return
        limit = BodyLimit(self.max_body_bytes)
        scope[_BODY_LIMIT_KEY] = limit
        declared = dict(headers).get(b"content-length", b"")
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            if declared.isdigit() and int(declared) > limit.max_bytes:
                raise _too_large(limit.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise _too_large(limit.max_bytes)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watch)
        except StarletteHTTPException as exc:
            # Read outside any product's handlers (none of ours does): answer it here.
            if exc.status_code != 413 or started:
                raise
            await self._problem(scope, receive, send, 413, str(exc.detail))

    async def _refuse_head(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = (
            f"Request headers exceed the limits: at most {MAX_HEADERS} headers, "
            f"{MAX_HEADER_BYTES} bytes a line, {MAX_HEAD_BYTES} bytes in all"
        )
        await self._problem(scope, receive, send, 431, detail)

    async def _problem(
        self, scope: Scope, receive: Receive, send: Send, status: int, detail: str
    ) -> None:
        title = "Request header fields too large" if status == 431 else "Content too large"
        body = problem_body(
            status, HTTP_ERROR_CODES[status], title, detail, Request(scope).url.path, None
        )
        response = JSONResponse(
            body, status_code=status, media_type=PROBLEM_JSON, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


@dataclass(frozen=True)
class Product:
    """A mounted product: its ASGI app, the lifespan that starts its workers, a readiness probe,
    and the pages it offers people (listed on the front door beside its API docs)."""

    name: str
    app: FastAPI
    lifespan: Callable[[], AbstractAsyncContextManager[None]]
    ready: Callable[[], Awaitable[bool]]
    links: tuple[pages.Link, ...] = ()
    # What /readyz shows beside the verdict: the state of parts whose trouble degrades the
    # product without making it unready (one chain's nodes down, a lagging scan).
    detail: Callable[[], Awaitable[dict[str, Any]]] | None = None


def listing(product: Product) -> pages.Listing:
    """How the front door shows ``product``: its declared pages, then the API documentation
    its app actually serves."""
    app = product.app
    docs = []
    if app.openapi_url is not None:
        if app.docs_url is not None:
            docs.append(pages.Link("API docs", app.docs_url, "interactive, Swagger UI"))
        if app.redoc_url is not None:
            docs.append(pages.Link("API reference", app.redoc_url, "ReDoc"))
        docs.append(pages.Link("OpenAPI document", app.openapi_url))
    return pages.Listing(product.name, app.description, (*product.links, *docs))


def create_root_app(
    products: Sequence[Product], *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> FastAPI:
    """Mount each product at ``/<name>`` and serve the front door (``/``, listing them), the
    shared probes and metrics. Every request is held to :class:`RequestLimitsMiddleware`'s
    limits; a path no product serves is a 404, problem+json or a page as ``Accept`` asks."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Starlette does not run mounted apps' lifespans, so the root enters each one.
        async with AsyncExitStack() as stack:
            for product in products:
                await stack.enter_async_context(product.lifespan())
            yield

    root = FastAPI(title="Keel", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_problem_handlers(root)
    root.add_middleware(RequestLimitsMiddleware, max_body_bytes=max_body_bytes)

    @root.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @root.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {}
        details: dict[str, Any] = {}
        for product in products:
            try:
                checks[product.name] = await product.ready()
                if product.detail is not None and checks[product.name]:
                    details[product.name] = await product.detail()
            except Exception:  # a failing probe is "not ready", never a 500
                checks[product.name] = False
        ok = all(checks.values())
        body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
        if details:
            body["detail"] = details
        return JSONResponse(body, status_code=200 if ok else 503)

    @root.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for product in products:
        root.mount(f"/{product.name}", product.app)
        mount = root.routes[-1]
        assert isinstance(mount, Mount)
        # Starlette's "{path:path}" is ".*", which stops at a newline: "/coinpay/x%0Ay" would
        # miss the product and get the root's 404. Every path under the prefix is the product's.
        mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)

    listings = [listing(product) for product in products]

    # After the mounts, so that a product's request is not matched against it first.
    @root.get("/", include_in_schema=False)
    async def front_door(request: Request) -> HTMLResponse:
        return pages.front_door(request, listings)

    for route in root.routes:
        if isinstance(route, Route):
            # "$" also matches before a final newline: "/%0A" is not the front door.
            route.path_regex = re.compile(route.path_regex.pattern.removesuffix("$") + r"\Z")
    return root
