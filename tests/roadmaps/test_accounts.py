"""Accounts in roadmaps over HTTP, mounted under /roadmaps as ``keel serve`` mounts it: the
JSON API and the pages, cookies and their flags, CSRF, enumeration-safe answers, bad input as
problems, login limits, and the password reset through the file outbox.

The pages the base template links to and the lead's routers provide are stand-ins here."""

from __future__ import annotations

import email
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.responses import PlainTextResponse

from keel.core.app import Product, create_root_app
from keel.core.clock import FrozenClock
from keel.core.identity import LoginLimits
from keel.roadmaps.app import create_app
from keel.roadmaps.settings import RoadmapsSettings

API = "/roadmaps/api/accounts"
PASSWORD = "correct horse battery"
STAND_INS = {
    "roadmaps-home": "/",
    "roadmaps-discover": "/discover",
    "roadmaps-dashboard": "/dashboard",
    "roadmaps-new": "/new",
    "roadmaps-billing": "/billing",
}


def with_stand_ins(product: Product) -> Product:
    """Routes the base template links to, where roadmaps does not serve them yet."""
    named = {getattr(route, "name", None) for route in product.app.routes}
    for name, path in STAND_INS.items():
        if name not in named:
            product.app.add_api_route(path, _stand_in(name), name=name, include_in_schema=False)
    return product


def _stand_in(name: str) -> Callable[[], Awaitable[PlainTextResponse]]:
    async def stand_in() -> PlainTextResponse:
        return PlainTextResponse(name)

    return stand_in


@dataclass
class Site:
    http: httpx.AsyncClient
    clock: FrozenClock
    outbox: Path

    def mails(self) -> list[email.message.Message]:
        if not self.outbox.exists():
            return []
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(self.outbox.iterdir())]

    def reset_link(self) -> str:
        body = self.mails()[-1].get_payload(decode=True)
        assert isinstance(body, bytes)
        return next(line for line in body.decode().splitlines() if "token=" in line).strip()


@asynccontextmanager
async def open_site(
    tmp_path: Path, base_url: str = "http://testserver", **settings: Any
) -> AsyncIterator[Site]:
    clock = FrozenClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    product = with_stand_ins(
        create_app(RoadmapsSettings(**settings), data_dir=str(tmp_path), clock=clock)
    )
    root = create_root_app([product])
    async with product.lifespan():
        transport = httpx.ASGITransport(app=root)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            yield Site(http, clock, tmp_path / "outbox" / "roadmaps")


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path) as opened:
        yield opened


def problem(reply: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    if code is not None:
        assert body["code"] == code, body
    return body


def cookies_set(reply: httpx.Response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in reply.headers.get_list("set-cookie")}


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def sign_up(site: Site, email: str = "ana@example.org") -> dict[str, Any]:
    reply = await site.http.post(
        f"{API}/signup", json={"email": email, "password": PASSWORD, "display_name": "Ana"}
    )
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


# -- the JSON API ------------------------------------------------------------------------------


async def test_sign_up_then_me_then_log_out(site: Site) -> None:
    reply = await site.http.post(
        f"{API}/signup", json={"email": " Ana@Example.org", "password": PASSWORD}
    )
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["user"]["email"] == "ana@example.org"
    assert body["user"]["display_name"] == "ana"
    cookie = cookies_set(reply)["roadmaps_session"]
    for flag in ("HttpOnly", "SameSite=Lax", "Path=/roadmaps", f"Max-Age={30 * 86400}"):
        assert flag in cookie
    assert "Secure" not in cookie
    me = await site.http.get(f"{API}/me")
    assert me.json()["user"] == body["user"]
    problem(await site.http.post(f"{API}/logout"), 403, "csrf_failed")  # the cookie, no token
    out = await site.http.post(f"{API}/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 204
    assert "Max-Age=0" in cookies_set(out)["roadmaps_session"]
    problem(await site.http.get(f"{API}/me"), 401, "login_required")


async def test_secure_cookies_are_host_prefixed(tmp_path: Path) -> None:
    async with open_site(tmp_path, "https://testserver", secure_cookies=True) as site:
        reply = await site.http.post(
            f"{API}/signup", json={"email": "a@ex.org", "password": PASSWORD}
        )
        cookie = cookies_set(reply)["__Host-roadmaps_session"]
        assert "Secure" in cookie
        assert "HttpOnly" in cookie
        assert "Path=/;" in cookie
        assert (await site.http.get(f"{API}/me")).status_code == 200


async def test_log_in_rotates_the_session(site: Site) -> None:
    first = await sign_up(site)
    old = site.http.cookies["roadmaps_session"]
    reply = await site.http.post(
        f"{API}/login",
        json={"email": "ana@example.org", "password": PASSWORD},
        headers={"X-CSRF-Token": first["csrf_token"]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["csrf_token"] != first["csrf_token"]
    assert site.http.cookies["roadmaps_session"] != old
    assert (await site.http.get(f"{API}/me")).status_code == 200
    site.http.cookies.clear()
    stale = await site.http.get(f"{API}/me", headers={"Cookie": f"roadmaps_session={old}"})
    problem(stale, 401, "login_required")  # the session the login came with has ended


async def test_wrong_password_and_unknown_email_get_the_same_answer(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    answers = []
    for body in (
        {"email": "ana@example.org", "password": "not the password"},
        {"email": "nobody@example.org", "password": PASSWORD},
    ):
        reply = await site.http.post(f"{API}/login", json=body)
        found = problem(reply, 401, "invalid_credentials")
        answers.append({k: v for k, v in found.items() if k != "request_id"})
    assert answers[0] == answers[1]


async def test_sign_up_with_a_taken_email_names_no_account(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    reply = await site.http.post(
        f"{API}/signup", json={"email": "ANA@example.org", "password": "another password"}
    )
    body = problem(reply, 409, "email_unavailable")
    assert "ana@example.org" not in reply.text.lower()
    assert "sign in or reset" in body["detail"]


async def test_a_reset_request_answers_the_same_for_any_email(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    known = await site.http.post(f"{API}/password-reset", json={"email": "ana@example.org"})
    unknown = await site.http.post(f"{API}/password-reset", json={"email": "no@example.org"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert len(site.mails()) == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("signup", {"password": PASSWORD}, 400, "invalid_request"),
        ("signup", {"email": "ana@example.org"}, 400, "invalid_request"),
        ("signup", {"email": "not-an-email", "password": PASSWORD}, 422, "invalid_email"),
        ("signup", {"email": "a@example.org", "password": "short"}, 422, "password_rejected"),
        ("signup", {"email": "a@example.org", "password": "é" * 600}, 422, "password_rejected"),
        ("signup", {"email": "a@example.org", "password": "x" * 5000}, 400, "invalid_request"),
        ("signup", {"email": "a@ex.org", "password": PASSWORD, "admin": True}, 400, None),
        (
            "signup",
            {"email": "a@ex.org", "password": PASSWORD, "display_name": "\x1b[31m"},
            422,
            None,
        ),
        ("signup", {"email": ["a@ex.org"], "password": PASSWORD}, 400, "invalid_request"),
        ("login", {"email": "a@example.org"}, 400, "invalid_request"),
        ("login", {"email": "a@example.org", "password": "x" * 5000}, 400, "invalid_request"),
        ("login", {"email": "a" * 1000, "password": PASSWORD}, 400, "invalid_request"),
        ("password-reset", {}, 400, "invalid_request"),
        ("password-reset/confirm", {"token": "nope", "password": PASSWORD}, 400, None),
        ("password-reset/confirm", {"token": "x" * 201, "password": PASSWORD}, 400, None),
    ],
)
async def test_bad_input_is_a_problem(
    site: Site, path: str, body: dict[str, Any], status: int, code: str | None
) -> None:
    problem(await site.http.post(f"{API}/{path}", json=body), status, code)


async def test_a_body_that_is_not_json_is_a_problem(site: Site) -> None:
    malformed = await site.http.post(
        f"{API}/login", content=b"{email:", headers={"content-type": "application/json"}
    )
    assert problem(malformed, 400, "invalid_request")["detail"] == "Malformed JSON body"
    # Form-like bodies are what a cross-site form sends: refused before they are read.
    problem(
        await site.http.post(f"{API}/login", content=b"x", headers={"content-type": "text/plain"}),
        403,
        "csrf_failed",
    )
    problem(await site.http.post(f"{API}/login", data={"email": "a", "password": "b"}), 403)


async def test_with_our_cookie_an_api_call_needs_the_token(site: Site) -> None:
    await site.http.get("/roadmaps/login")  # the page leaves its nonce cookie
    credentials = {"email": "ana@example.org", "password": PASSWORD}
    problem(await site.http.post(f"{API}/signup", json=credentials), 403, "csrf_failed")
    forged = {"X-CSRF-Token": "A" * 43}
    problem(await site.http.post(f"{API}/signup", json=credentials, headers=forged), 403)


async def test_repeated_failures_are_refused_with_retry_after(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    wrong = {"email": "ana@example.org", "password": "not the password"}
    for _ in range(LoginLimits().failures_per_email):
        problem(await site.http.post(f"{API}/login", json=wrong), 401, "invalid_credentials")
    right = {"email": "ana@example.org", "password": PASSWORD}
    locked = await site.http.post(f"{API}/login", json=right)
    body = problem(locked, 429, "too_many_attempts")
    assert int(locked.headers["Retry-After"]) == body["retry_after"] > 0
    site.clock.advance(timedelta(seconds=2 * LoginLimits().window_seconds))
    assert (await site.http.post(f"{API}/login", json=right)).status_code == 200


async def test_the_reset_flow_end_to_end(site: Site) -> None:
    first = await sign_up(site)
    old_session = site.http.cookies.get("roadmaps_session")
    headers = {"X-CSRF-Token": first["csrf_token"]}
    reply = await site.http.post(
        f"{API}/password-reset", json={"email": "ana@example.org"}, headers=headers
    )
    assert reply.status_code == 202
    (path,) = site.outbox.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    link = urlsplit(site.reset_link())
    assert link.path == "/roadmaps/reset/confirm"
    token = parse_qs(link.query)["token"][0]

    # The page behind the link, then its form (the pre-session token: signed out here).
    site.http.cookies.clear()
    page = await site.http.get(f"{link.path}?{link.query}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    done = await site.http.post(
        link.path, data={"csrf_token": form_token(page), "token": token, "password": "new secret!!"}
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/roadmaps/login?reset=done"

    site.http.cookies.set("roadmaps_session", old_session or "")
    problem(await site.http.get(f"{API}/me"), 401)  # every old session has ended
    site.http.cookies.clear()
    again = await site.http.post(
        f"{API}/password-reset/confirm", json={"token": token, "password": "third secret!"}
    )
    problem(again, 400, "invalid_reset_token")  # one use
    logged = await site.http.post(
        f"{API}/login", json={"email": "ana@example.org", "password": "new secret!!"}
    )
    assert logged.status_code == 200


async def test_an_expired_reset_link_is_refused(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    await site.http.post(f"{API}/password-reset", json={"email": "ana@example.org"})
    token = parse_qs(urlsplit(site.reset_link()).query)["token"][0]
    site.clock.advance(timedelta(hours=1))
    page = await site.http.get("/roadmaps/reset/confirm", params={"token": token})
    assert page.status_code == 400
    assert "ask for a new one" in page.text
    site.http.cookies.clear()  # the page's nonce cookie would ask for its token
    reply = await site.http.post(
        f"{API}/password-reset/confirm", json={"token": token, "password": "new secret!!"}
    )
    problem(reply, 400, "invalid_reset_token")


async def test_reset_links_never_point_at_a_host_the_caller_chose(tmp_path: Path) -> None:
    async with open_site(tmp_path / "a") as site:
        await sign_up(site)
        site.http.cookies.clear()
        await site.http.post(
            f"{API}/password-reset",
            json={"email": "ana@example.org"},
            headers={"Host": "evil.example"},
        )
        assert site.reset_link().startswith("/roadmaps/reset/confirm?token=")
    async with open_site(tmp_path / "b", public_url="https://learn.example.org/") as site:
        await sign_up(site)
        site.http.cookies.clear()
        await site.http.post(f"{API}/password-reset", json={"email": "ana@example.org"})
        assert site.reset_link().startswith("https://learn.example.org/roadmaps/reset/confirm?")
    async with open_site(tmp_path / "c", base_url="http://127.0.0.1:8000") as site:
        await sign_up(site)
        site.http.cookies.clear()
        await site.http.post(f"{API}/password-reset", json={"email": "ana@example.org"})
        assert site.reset_link().startswith("http://127.0.0.1:8000/roadmaps/reset/confirm?")


# -- the pages ---------------------------------------------------------------------------------


async def test_sign_up_and_out_through_the_pages(site: Site) -> None:
    page = await site.http.get("/roadmaps/signup")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    reply = await site.http.post(
        "/roadmaps/signup",
        data={"csrf_token": form_token(page), "email": "ana@example.org", "password": PASSWORD},
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/roadmaps/dashboard"
    assert "HttpOnly" in cookies_set(reply)["roadmaps_session"]
    home = await site.http.get("/roadmaps/login")
    assert home.status_code == 303  # signed in already: on to the dashboard
    signed_in = await site.http.get("/roadmaps/reset")  # any page: the header's sign-out form
    assert "Sign out (ana)" in signed_in.text
    out = await site.http.post("/roadmaps/logout", data={"csrf_token": form_token(signed_in)})
    assert out.status_code == 303
    assert out.headers["location"] == "/roadmaps/login"
    problem(await site.http.get(f"{API}/me"), 401)


async def test_the_login_page_shows_errors_and_returns_to_next(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    page = await site.http.get("/roadmaps/login", params={"next": "/roadmaps/new"})
    token = form_token(page)
    wrong = await site.http.post(
        "/roadmaps/login",
        data={
            "csrf_token": token,
            "email": "ana@example.org",
            "password": "nope",
            "next": "/roadmaps/new",
        },
    )
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    right = await site.http.post(
        "/roadmaps/login",
        data={
            "csrf_token": token,
            "email": "ana@example.org",
            "password": PASSWORD,
            "next": "/roadmaps/new",
        },
    )
    assert right.status_code == 303
    assert right.headers["location"] == "/roadmaps/new"


async def test_a_page_form_without_its_token_is_refused(site: Site) -> None:
    await site.http.get("/roadmaps/signup")
    reply = await site.http.post(
        "/roadmaps/signup", data={"email": "ana@example.org", "password": PASSWORD}
    )
    problem(reply, 403, "csrf_failed")


async def test_the_reset_page_says_the_same_for_any_email(site: Site) -> None:
    await sign_up(site)
    site.http.cookies.clear()
    texts = []
    for address in ("ana@example.org", "nobody@example.org"):
        page = await site.http.get("/roadmaps/reset")
        reply = await site.http.post(
            "/roadmaps/reset", data={"csrf_token": form_token(page), "email": address}
        )
        assert reply.status_code == 200
        texts.append(reply.text.replace(address, "EMAIL"))
    assert texts[0] == texts[1]
