"""Identity over HTTP (the only part of ``keel.core.identity`` that imports FastAPI).

    web.install(app, accounts=lambda scope: ..., cookies=web.CookiePolicy("roadmaps_session"),
                login_route="roadmaps-login")

* :class:`IdentityMiddleware` turns the session cookie into ``request.state.user`` (a
  :class:`~keel.core.identity.accounts.User` or None), ``request.state.session`` and
  ``request.state.csrf_token``, and refuses (403 problem) an unsafe request that should carry
  a CSRF token and does not: every one with a cookie of ours, and every one a cross-site
  form could send (form or text/plain bodies), cookies or not. The token is read from the
  ``X-CSRF-Token`` header or the ``csrf_token`` form field (``formtoken.py`` says where).
  JSON requests without our cookies carry no ambient credentials and pass.
* Cookies are HttpOnly and SameSite=Lax; with ``secure`` they are Secure and named
  ``__Host-…`` (so no sibling subdomain can set them), which forces ``Path=/``. Otherwise the
  path is the product's mount (``/roadmaps``), so products on one host keep apart.
* :func:`current_user` and :func:`optional_user` are the dependencies routes take; a missing
  user is a 401 problem, or for a browser's GET a 303 to the login page (``?next=`` back).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from prometheus_client import Counter
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core import pages
from keel.core.app import problem_response
from keel.core.errors import Unavailable
from keel.core.identity import csrf, formtoken
from keel.core.identity.accounts import Accounts, LoggedIn, Session, User
from keel.core.identity.errors import CsrfFailed, LoginRequired
from keel.core.logging import get_logger

log = get_logger("keel.identity.web")

CSRF_REFUSED = Counter(
    "keel_identity_csrf_refused_total",
    "Unsafe requests refused for a missing or wrong CSRF token",
    ["app", "reason"],
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# What a cross-site <form> (or a no-cors fetch) can send without a CORS preflight.
CROSS_SITE_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_STATE_COOKIES = "keel.identity.cookies"
_STATE_ACCOUNTS = "keel.identity.accounts"
_STATE_LOGIN = "keel.identity.login_route"

AccountsOf = Callable[[Scope], "Accounts | None"]


@dataclass(frozen=True)
class CookiePolicy:
    """The product's cookies: ``name`` for the session, ``name_csrf`` for the pre-session
    nonce. ``path`` None means the product's mount path (or ``/``)."""

    name: str
    secure: bool = False
    path: str | None = None

    def __post_init__(self) -> None:
        if _COOKIE_NAME.fullmatch(self.name) is None:
            raise ValueError("a cookie name has 1-64 letters, digits, '_' or '-'")
        if self.secure and self.path not in (None, "/"):
            raise ValueError("__Host- cookies (secure) must have Path=/")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("a cookie path starts with '/'")

    @property
    def session_cookie(self) -> str:
        return f"__Host-{self.name}" if self.secure else self.name

    @property
    def nonce_cookie(self) -> str:
        return f"{self.session_cookie}_csrf"

    def path_for(self, scope: Scope) -> str:
        if self.secure:
            return "/"
        return self.path or str(scope.get("root_path") or "") or "/"

    def header(self, scope: Scope, name: str, value: str, *, max_age: int | None) -> bytes:
        """A ``Set-Cookie`` value; ``max_age`` 0 deletes, None lasts the browser session."""
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value
        morsel = jar[name]
        morsel["path"] = self.path_for(scope)
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if self.secure:
            morsel["secure"] = True
        if max_age is not None:
            morsel["max-age"] = max_age
        return morsel.OutputString().encode("latin-1")


class IdentityMiddleware:
    """Resolves the session cookie and enforces CSRF (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        accounts: AccountsOf,
        cookies: CookiePolicy,
        app_name: str,
        skip_prefixes: tuple[str, ...] = ("/static/",),
    ) -> None:
        self.app = app
        self.accounts = accounts
        self.cookies = cookies
        self.app_name = app_name
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.accounts(scope) if scope["type"] == "http" else None
        if service is None or _route_path(scope).startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        jar = cookie_parser(headers.get("cookie", ""))
        token = jar.get(self.cookies.session_cookie)
        nonce = jar.get(self.cookies.nonce_cookie)
        nonce = nonce if nonce is not None and csrf.well_formed_nonce(nonce) else None
        session, unknown = await _authenticate(service, token)
        fresh_nonce = None
        if session is not None:
            expected: str | None = service.csrf.for_session(session.token_hash)
            shown = expected
        elif nonce is not None:
            expected = shown = service.csrf.for_nonce(nonce)
        else:  # no token can be right yet; the page shown now gets a nonce cookie
            expected = None
            fresh_nonce = csrf.new_nonce()
            shown = service.csrf.for_nonce(fresh_nonce)
        state = scope.setdefault("state", {})
        state["user"] = session.user if session else None
        state["session"] = session
        state["csrf_token"] = shown

        stale = token is not None and session is None and not unknown

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and (fresh_nonce or stale):
                raw = list(message.get("headers", []))
                if fresh_nonce and _is_html(raw):
                    value = self.cookies.header(
                        scope, self.cookies.nonce_cookie, fresh_nonce, max_age=None
                    )
                    raw.append((b"set-cookie", value))
                if stale and not _sets_cookie(raw, self.cookies.session_cookie):
                    value = self.cookies.header(scope, self.cookies.session_cookie, "", max_age=0)
                    raw.append((b"set-cookie", value))
                message["headers"] = raw
            await send(message)

        if scope["method"] not in SAFE_METHODS and self._needs_token(headers, token, nonce):
            submitted, receive = await _submitted_token(headers, receive)
            if expected is None or not csrf.matches(expected, submitted):
                reason = "missing" if submitted is None else "mismatch"
                # Through send_with_cookies: a dead session's cookie goes even on a refusal,
                # or a client would keep sending it and be refused again.
                await self._refuse(scope, receive, send_with_cookies, reason)
                return

        await self.app(scope, receive, send_with_cookies)

    def _needs_token(self, headers: Headers, token: str | None, nonce: str | None) -> bool:
        media = headers.get("content-type", "").partition(";")[0].strip().lower()
        return token is not None or nonce is not None or media in CROSS_SITE_TYPES

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        CSRF_REFUSED.labels(self.app_name, reason).inc()
        log.info("csrf_refused", reason=reason, method=scope["method"], path=scope["path"])
        error = CsrfFailed()
        request = Request(scope, receive)
        response = problem_response(
            error.status, error.code, error.title, error.detail, request, None
        )
        await response(scope, receive, send)


async def _authenticate(service: Accounts, token: str | None) -> tuple[Session | None, bool]:
    """The session of ``token``, and whether it is unknown only because the database could
    not be asked (then the request goes on signed out, and its cookie is kept)."""
    if not token:
        return None, False
    try:
        return await service.authenticate(token), False
    except (Unavailable, DBAPIError, OSError) as exc:
        log.warning("session_lookup_failed", error=type(exc).__name__)
        return None, True


async def _submitted_token(headers: Headers, receive: Receive) -> tuple[str | None, Receive]:
    """The token from the header, else from the form body; and a ``receive`` that hands the
    route every body message, those read here first."""
    header = headers.get(csrf.HEADER)
    if header is not None:
        return header, receive
    media = headers.get("content-type", "")
    kind = media.partition(";")[0].strip().lower()
    read: list[Message] = []
    token: str | None = None
    if kind == "application/x-www-form-urlencoded":
        body = bytearray()
        while True:
            message = await receive()
            read.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        token = formtoken.from_urlencoded(bytes(body))
    elif kind == "multipart/form-data":
        first = formtoken.FirstPart(media)
        while True:
            message = await receive()
            read.append(message)
            done = first.feed(message.get("body", b""))
            if done or message["type"] != "http.request" or not message.get("more_body", False):
                break
        token = first.token
    else:
        return None, receive

    async def replay() -> Message:
        return read.pop(0) if read else await receive()

    return token, replay


def _route_path(scope: Scope) -> str:
    path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
    return path.removeprefix(root) if root else path


def _is_html(raw: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in raw)


def _sets_cookie(raw: list[tuple[bytes, bytes]], name: str) -> bool:
    prefix = f"{name}=".encode()
    return any(k.lower() == b"set-cookie" and v.startswith(prefix) for k, v in raw)


# -- what routes use ------------------------------------------------------------------------


def optional_user(request: Request) -> User | None:
    """The signed-in user, or None."""
    user: User | None = getattr(request.state, "user", None)
    return user


def current_user(request: Request) -> User:
    """The signed-in user; LoginRequired (401, or a redirect to log in) when there is none."""
    user = optional_user(request)
    if user is None:
        raise LoginRequired()
    return user


def current_session(request: Request) -> Session | None:
    session: Session | None = getattr(request.state, "session", None)
    return session


def accounts(request: Request) -> Accounts:
    """The app's :class:`Accounts` (as ``install`` was told to find it)."""
    found = getattr(request.app.state, _STATE_ACCOUNTS)(request.scope)
    if found is None:
        raise RuntimeError("identity is not started (the app's lifespan has not run)")
    service: Accounts = found
    return service


def session_token(request: Request) -> str | None:
    """The session cookie as sent (for ending it, or rotating it on login)."""
    return request.cookies.get(_cookies(request).session_cookie)


def start_session(response: Response, request: Request, logged_in: LoggedIn) -> None:
    """Put the new session's cookie on ``response``; it lasts as long as a session may."""
    cookies = _cookies(request)
    lifetime = int(accounts(request).policy.lifetime.total_seconds())
    value = cookies.header(request.scope, cookies.session_cookie, logged_in.token, max_age=lifetime)
    response.raw_headers.append((b"set-cookie", value))


def end_session(response: Response, request: Request) -> None:
    """Delete the session cookie on ``response``."""
    cookies = _cookies(request)
    value = cookies.header(request.scope, cookies.session_cookie, "", max_age=0)
    response.raw_headers.append((b"set-cookie", value))


def csrf_token_for(request: Request, logged_in: LoggedIn) -> str:
    """The CSRF token of a session just started (the request's own is the one before it)."""
    return accounts(request).csrf.for_session(logged_in.session.token_hash)


def client_address(request: Request) -> str:
    """Whom a limit counts: the client's address (an IPv6 client owns a whole /64)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"ip:{host[:64]}"
    if address.version == 6:
        return f"ip:{ipaddress.ip_network((address, 64), strict=False)}"
    return f"ip:{address}"


def safe_next(value: str | None) -> str | None:
    """``value`` when it is a path on this site to go back to after login, else None (no
    scheme, no host, no ``//`` or backslash tricks, no control characters)."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if value.startswith(("//", "/\\")) or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    return value


def install(
    app: FastAPI,
    *,
    accounts: AccountsOf,
    cookies: CookiePolicy,
    app_name: str,
    login_route: str | None = None,
) -> None:
    """Add the middleware and the LoginRequired handler to ``app``. ``accounts`` finds the
    service for a request (None before the lifespan has started it). Call it before adding
    ``RequestContextMiddleware``, so that one stays outermost."""
    setattr(app.state, _STATE_COOKIES, cookies)
    setattr(app.state, _STATE_ACCOUNTS, accounts)
    setattr(app.state, _STATE_LOGIN, login_route)
    app.add_middleware(IdentityMiddleware, accounts=accounts, cookies=cookies, app_name=app_name)

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        route = getattr(request.app.state, _STATE_LOGIN, None)
        wants_page = request.method in ("GET", "HEAD") and pages.prefers_html(
            request.headers.get("accept", "")
        )
        if route is not None and wants_page:
            here = request.url.path  # with the mount's prefix: where to come back to
            if request.url.query:
                here += "?" + request.url.query
            target = request.url_for(route).include_query_params(next=here)
            return RedirectResponse(str(target), status_code=303)
        return problem_response(exc.status, exc.code, exc.title, exc.detail, request, None)

    app.add_exception_handler(LoginRequired, login_required)


def _cookies(request: Request) -> CookiePolicy:
    policy: CookiePolicy = getattr(request.app.state, _STATE_COOKIES)
    return policy
