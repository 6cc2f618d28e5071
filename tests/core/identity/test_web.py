"""The HTTP glue on a small app mounted under /acme, as a product is: cookies and their
flags, the CSRF rules for every kind of unsafe request, and the user dependencies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.routing import Mount

from keel.core.app import RequestContextMiddleware, install_problem_handlers
from keel.core.errors import Unavailable
from keel.core.identity import User
from keel.core.identity import web as identity_web
from keel.core.identity.errors import InvalidCredentials
from keel.core.replicated import Database
from tests.core.identity.conftest import World, make_accounts

PASSWORD = "correct horse battery"
CurrentUser = Annotated[User, Depends(identity_web.current_user)]


def make_app(world: World, *, secure: bool = False) -> Starlette:
    app = FastAPI()
    install_problem_handlers(app)
    identity_web.install(
        app,
        accounts=lambda scope: world.accounts,
        cookies=identity_web.CookiePolicy("acme_session", secure=secure),
        app_name="acme",
        login_route="login",
    )
    app.add_middleware(RequestContextMiddleware, app_name="acme")

    @app.get("/login", name="login")
    async def login_page(request: Request) -> HTMLResponse:
        token = request.state.csrf_token
        return HTMLResponse(f'<form><input name="csrf_token" value="{token}"></form>')

    @app.post("/login")
    async def login(
        request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        try:
            logged_in = await world.accounts.log_in(
                email=email,
                password=password,
                client=identity_web.client_address(request),
                previous_token=identity_web.session_token(request),
            )
        except InvalidCredentials:
            return HTMLResponse("wrong", status_code=401)
        response = RedirectResponse("/acme/private", status_code=303)
        identity_web.start_session(response, request, logged_in)
        return response

    @app.get("/private")
    async def private(user: CurrentUser, request: Request) -> dict[str, str]:
        return {"email": user.email, "csrf": request.state.csrf_token}

    @app.get("/api")
    async def api(request: Request) -> dict[str, Any]:
        user = identity_web.optional_user(request)
        return {"user": user.email if user else None}

    @app.post("/things")
    async def things(user: CurrentUser) -> dict[str, str]:
        return {"by": user.email}

    @app.post("/upload")
    async def upload(request: Request, user: CurrentUser) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    return Starlette(routes=[Mount("/acme", app)])


@pytest.fixture
async def client(sqlite_world: World) -> AsyncIterator[httpx.AsyncClient]:
    await sqlite_world.accounts.sign_up(
        email="ana@example.org", password=PASSWORD, display_name=None, client="ip:127.0.0.1"
    )
    transport = httpx.ASGITransport(app=make_app(sqlite_world))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def set_cookies(reply: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name (the whole header, flags included)."""
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def assert_problem(reply: httpx.Response, status: int, code: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == code


async def log_in(client: httpx.AsyncClient) -> str:
    """Sign in through the login form; the session's CSRF token."""
    page = await client.get("/acme/login")
    reply = await client.post(
        "/acme/login",
        data={"csrf_token": form_token(page), "email": "ana@example.org", "password": PASSWORD},
    )
    assert reply.status_code == 303, reply.text
    me = await client.get("/acme/private")
    token: str = me.json()["csrf"]
    return token


async def test_a_page_gets_a_nonce_cookie_and_json_does_not(client: httpx.AsyncClient) -> None:
    assert "set-cookie" not in (await client.get("/acme/api")).headers
    page = await client.get("/acme/login")
    cookie = set_cookies(page)["acme_session_csrf"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/acme" in cookie
    assert "Secure" not in cookie
    assert "Max-Age" not in cookie
    again = await client.get("/acme/login")
    assert "set-cookie" not in again.headers  # kept: the nonce cookie came with it
    assert form_token(again) == form_token(page)


async def test_login_sets_a_session_cookie_with_the_right_flags(client: httpx.AsyncClient) -> None:
    page = await client.get("/acme/login")
    reply = await client.post(
        "/acme/login",
        data={"csrf_token": form_token(page), "email": "ana@example.org", "password": PASSWORD},
    )
    assert reply.status_code == 303
    cookie = set_cookies(reply)["acme_session"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/acme" in cookie
    assert f"Max-Age={30 * 24 * 3600}" in cookie
    assert (await client.get("/acme/api")).json() == {"user": "ana@example.org"}


@pytest.mark.parametrize(
    "token",
    [None, "", "forged-token", "x" * 43, "x" * 5000],
    ids=["none", "empty", "forged", "43", "huge"],
)
async def test_a_login_form_without_its_token_is_refused(
    client: httpx.AsyncClient, token: str | None
) -> None:
    await client.get("/acme/login")  # the nonce cookie is set; the token is not sent
    data = {"email": "ana@example.org", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    reply = await client.post("/acme/login", data=data)
    assert_problem(reply, 403, "csrf_failed")
    assert "set-cookie" not in reply.headers


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.post("/acme/login", data={"email": "ana@example.org", "password": PASSWORD}),
        lambda c: c.post(
            "/acme/login",
            content=b"email=ana@example.org&password=x",
            headers={"content-type": "text/plain"},
        ),
        lambda c: c.post("/acme/login", files={"email": (None, "ana@example.org")}),
    ],
    ids=["urlencoded", "text-plain", "multipart"],
)
async def test_a_cross_site_form_with_no_cookie_of_ours_is_refused(
    client: httpx.AsyncClient, send: Callable[[httpx.AsyncClient], Any]
) -> None:
    """Login CSRF: a form on another site posting the attacker's credentials."""
    assert_problem(await send(client), 403, "csrf_failed")


async def test_json_without_our_cookies_carries_no_credentials_and_passes(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.post("/acme/things", json={}), 401, "login_required")


async def test_signed_in_unsafe_requests_need_the_session_token(
    client: httpx.AsyncClient,
) -> None:
    pre_session = form_token(await client.get("/acme/login"))
    token = await log_in(client)
    assert token != pre_session
    assert_problem(await client.post("/acme/things", json={}), 403, "csrf_failed")
    headers = {"X-CSRF-Token": pre_session}
    assert_problem(await client.post("/acme/things", json={}, headers=headers), 403, "csrf_failed")
    reply = await client.post("/acme/things", json={}, headers={"X-CSRF-Token": token})
    assert reply.json() == {"by": "ana@example.org"}


async def test_a_multipart_form_carries_its_token_first_and_streams_on_intact(
    client: httpx.AsyncClient,
) -> None:
    token = await log_in(client)
    big = b"%PDF-1.7\n" + bytes(range(256)) * 2000
    fields = {"csrf_token": token, "title": "syllabus"}
    reply = await client.post("/acme/upload", data=fields, files={"pdf": ("s.pdf", big)})
    assert reply.status_code == 200, reply.text
    assert reply.json()["bytes"] > len(big)  # the whole body reached the route
    late = {"title": "syllabus", "csrf_token": token}  # not the first field: refused
    assert_problem(
        await client.post("/acme/upload", data=late, files={"pdf": ("s.pdf", big)}),
        403,
        "csrf_failed",
    )


async def test_a_session_cookie_that_no_longer_works_is_deleted(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get("/acme/api", headers={"Cookie": "acme_session=" + "A" * 43})
    assert reply.json() == {"user": None}
    assert "Max-Age=0" in set_cookies(reply)["acme_session"]


async def test_a_missing_user_is_a_401_problem_or_a_browser_redirect_to_login(
    client: httpx.AsyncClient,
) -> None:
    assert_problem(await client.get("/acme/private"), 401, "login_required")
    page = await client.get("/acme/private?tab=2", headers={"Accept": "text/html"})
    assert page.status_code == 303
    target = urlsplit(page.headers["location"])
    assert target.path == "/acme/login"
    assert target.query == "next=%2Facme%2Fprivate%3Ftab%3D2"


async def test_secure_cookies_are_host_prefixed_with_path_root(sqlite_world: World) -> None:
    await sqlite_world.accounts.sign_up(
        email="ana@example.org", password=PASSWORD, display_name=None, client="ip:127.0.0.1"
    )
    transport = httpx.ASGITransport(app=make_app(sqlite_world, secure=True))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        page = await client.get("/acme/login")
        nonce = set_cookies(page)["__Host-acme_session_csrf"]
        assert "Secure" in nonce
        assert "Path=/;" in nonce + ";"
        reply = await client.post(
            "/acme/login",
            data={"csrf_token": form_token(page), "email": "ana@example.org", "password": PASSWORD},
        )
        session = set_cookies(reply)["__Host-acme_session"]
        assert "Secure" in session
        assert "HttpOnly" in session
        assert "Path=/;" in session + ";"
        assert (await client.get("/acme/api")).json() == {"user": "ana@example.org"}


def test_cookie_policies_that_browsers_would_reject_are_refused_at_boot() -> None:
    with pytest.raises(ValueError, match="Path=/"):
        identity_web.CookiePolicy("s", secure=True, path="/acme")
    with pytest.raises(ValueError, match="cookie name"):
        identity_web.CookiePolicy("bad name;")


@given(st.text(max_size=200))
def test_next_is_only_ever_a_local_path(value: str) -> None:
    target = identity_web.safe_next(value)
    if target is None:
        return
    parts = urlsplit(target)
    assert parts.scheme == ""
    assert parts.netloc == ""
    assert target.startswith("/")
    assert not target.startswith("//")
    assert "\\" not in target


@pytest.mark.parametrize(
    "value",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "", "x"],
)
def test_next_refuses_other_sites(value: str) -> None:
    assert identity_web.safe_next(value) is None


class DownDatabase(Database):
    """Neither the primary nor the replica answers."""

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        raise Unavailable("the database is down")
        yield  # pragma: no cover


async def test_a_database_outage_signs_nobody_out(sqlite_world: World) -> None:
    """The request goes on signed out (public pages still answer) and the cookie is kept."""
    down = make_accounts(
        DownDatabase(sqlite_world.database.primary),
        sqlite_world.tables,
        sqlite_world.limiter,
        sqlite_world.clock,
        sqlite_world.outbox,
    )
    sqlite_world.accounts = down
    transport = httpx.ASGITransport(app=make_app(sqlite_world))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        reply = await client.get("/acme/api", headers={"Cookie": "acme_session=" + "A" * 43})
    assert reply.json() == {"user": None}
    assert "acme_session" not in set_cookies(reply)


async def test_a_refused_request_with_a_dead_session_cookie_loses_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.post(
        "/acme/things", json={}, headers={"Cookie": "acme_session=" + "A" * 43}
    )
    assert_problem(reply, 403, "csrf_failed")
    assert "Max-Age=0" in set_cookies(reply)["acme_session"]
