"""keel.core.csp: a fresh nonce per request, in the header and in the page; a strict policy on
HTML, a closed one elsewhere, and the other browser security headers."""

from __future__ import annotations

import re

import httpx
import jinja2
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates

from keel.core.app import RequestContextMiddleware, install_problem_handlers
from keel.core.csp import NON_HTML_POLICY, SecurityHeadersMiddleware, html_policy, new_nonce

TEMPLATE = """<!doctype html><title>t</title>
<style nonce="{{ csp_nonce }}">body{margin:0}</style>
<script nonce="{{ csp_nonce }}">document.title = "ok";</script>
<p>{{ text }}</p>"""
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.DictLoader({"t.html": TEMPLATE}), autoescape=True)
)


def _app(*, hsts_max_age: int = 0) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/page")
    async def page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "t.html", {"csp_nonce": request.state.csp_nonce, "text": "hi"}
        )

    @app.get("/api")
    async def api() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/own-policy")
    async def own_policy() -> HTMLResponse:
        return HTMLResponse("<p>x</p>", headers={"Content-Security-Policy": "default-src 'none'"})

    @app.get("/text")
    async def plain() -> PlainTextResponse:
        return PlainTextResponse("x")

    app.add_middleware(SecurityHeadersMiddleware, hsts_max_age=hsts_max_age)
    app.add_middleware(RequestContextMiddleware, app_name="csp-test")
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def _nonce_in_header(response: httpx.Response) -> str:
    match = re.search(
        r"script-src 'nonce-([A-Za-z0-9_-]+)'", response.headers["content-security-policy"]
    )
    assert match is not None
    return match.group(1)


async def test_each_request_gets_its_own_nonce_in_the_header_and_the_page() -> None:
    async with _client(_app()) as client:
        first, second = await client.get("/page"), await client.get("/page")
    nonces = [_nonce_in_header(r) for r in (first, second)]
    assert nonces[0] != nonces[1]
    for response, nonce in zip((first, second), nonces, strict=True):
        assert response.text.count(f'nonce="{nonce}"') == 2  # the script and the style
        assert f"style-src 'self' 'nonce-{nonce}'" in response.headers["content-security-policy"]


async def test_an_html_page_gets_the_strict_policy() -> None:
    async with _client(_app()) as client:
        response = await client.get("/page")
    nonce = _nonce_in_header(response)
    assert response.headers["content-security-policy"] == (
        "default-src 'self'; "
        f"script-src 'nonce-{nonce}' 'strict-dynamic'; "
        f"style-src 'self' 'nonce-{nonce}'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "frame-ancestors 'none'; "
        "form-action 'self'"
    )


async def test_an_inline_script_without_the_nonce_is_not_allowed_by_the_policy() -> None:
    # What a browser enforces: script-src names no 'unsafe-inline', no host and no 'self'
    # (with 'strict-dynamic' those would be ignored anyway), so an injected <script> or
    # event handler runs only if it can guess this response's 128-bit nonce; eval is off.
    async with _client(_app()) as client:
        response = await client.get("/page")
    policy = response.headers["content-security-policy"]
    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    script_sources = directives["script-src"].split()
    assert script_sources == [f"'nonce-{_nonce_in_header(response)}'", "'strict-dynamic'"]
    assert "unsafe" not in policy
    assert directives["object-src"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert "default-src" in directives  # anything not named falls back to it


async def test_the_browser_security_headers_are_set_once() -> None:
    async with _client(_app()) as client:
        response = await client.get("/page")
    headers = response.headers
    assert headers["permissions-policy"] == (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
    )
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert "strict-transport-security" not in headers  # not configured for HTTPS
    # RequestContextMiddleware's, not repeated.
    for name in ("x-frame-options", "referrer-policy", "x-content-type-options"):
        assert len(headers.get_list(name)) == 1, name
    assert headers["x-frame-options"] == "DENY"


async def test_hsts_and_upgrade_when_served_over_https() -> None:
    async with _client(_app(hsts_max_age=31_536_000)) as client:
        page, api = await client.get("/page"), await client.get("/api")
    for response in (page, api):
        assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert page.headers["content-security-policy"].endswith("; upgrade-insecure-requests")


@pytest.mark.parametrize("path", ["/api", "/text"])
async def test_a_response_that_is_not_html_gets_a_policy_that_allows_nothing(path: str) -> None:
    async with _client(_app()) as client:
        response = await client.get(path)
    assert response.headers["content-security-policy"] == NON_HTML_POLICY
    assert (
        response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


async def test_a_routes_own_policy_is_kept() -> None:
    async with _client(_app()) as client:
        response = await client.get("/own-policy")
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]


async def test_a_not_found_page_keeps_the_core_pages_policy() -> None:
    async with _client(_app()) as client:
        response = await client.get("/missing", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert len(response.headers.get_list("content-security-policy")) == 1


def test_nonces_are_128_bit_csp_base64_values() -> None:
    nonces = {new_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    for nonce in nonces:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce)
    assert "'nonce-abc'" in html_policy("abc")


def test_a_negative_hsts_age_is_refused_at_boot() -> None:
    with pytest.raises(ValueError, match="hsts_max_age"):
        SecurityHeadersMiddleware(FastAPI(), hsts_max_age=-1)
