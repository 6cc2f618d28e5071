"""Account pages that work without JavaScript: sign up, sign in, sign out, password reset.

Each form posts back to its own URL with the CSRF token as its first field (the middleware
refuses it otherwise). A refusal the person can fix (a taken email, a short password, a wrong
password, too many attempts) shows the form again with the message and the matching status;
success is a 303, so a reload never posts twice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from keel.core.errors import KeelError
from keel.core.identity import emails, passwords
from keel.core.identity import web as identity_web
from keel.core.identity.errors import InvalidResetToken, TooManyAttempts
from keel.roadmaps import referrals
from keel.roadmaps.api import auth
from keel.roadmaps.web.render import page

router = APIRouter(include_in_schema=False)

# Generous caps: a form field past them is tampering; the domain applies the real rules.
FormEmail = Annotated[str, Form(max_length=emails.MAX_EMAIL_CHARS + 64)]
FormPassword = Annotated[str, Form(max_length=passwords.MAX_PASSWORD_BYTES)]
FormNext = Annotated[str, Form(max_length=2000)]
QueryNext = Annotated[str, Query(max_length=2000)]
DASHBOARD = "roadmaps-dashboard"


def _signed_in(request: Request, target: str | None) -> RedirectResponse:
    return RedirectResponse(target or auth.path_to(request, DASHBOARD), status_code=303)


def _show(
    request: Request, template: str, *, status_code: int = 200, **context: object
) -> HTMLResponse:
    response = page(request, template, status_code=status_code, **context)
    # Forms carrying CSRF tokens (and a reset page, its token) are for this browser only.
    response.headers["Cache-Control"] = "no-store"
    return response


def _refused(request: Request, template: str, error: KeelError, **context: object) -> HTMLResponse:
    response = _show(request, template, status_code=error.status, error=error.detail, **context)
    if isinstance(error, TooManyAttempts):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


@router.get("/signup", name="roadmaps-signup", response_class=HTMLResponse)
async def signup_page(request: Request) -> Response:
    if identity_web.optional_user(request) is not None:
        return _signed_in(request, None)
    code = request.query_params.get("ref", "")[:20]
    return _show(request, "accounts/signup.html", email="", display_name="", referral_code=code)


@router.post("/signup", name="roadmaps-signup-submit", response_class=HTMLResponse)
async def signup_submit(
    request: Request,
    email: FormEmail = "",
    password: FormPassword = "",
    display_name: Annotated[str, Form(max_length=200)] = "",
    referral_code: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    wired = request.app.state.roadmaps
    try:
        code = (
            await referrals.check_code(wired.database, referral_code)
            if referral_code.strip()
            else None
        )
        logged_in = await auth.accounts(request).sign_up(
            email=email,
            password=password,
            display_name=display_name or None,
            client=identity_web.client_address(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except KeelError as exc:
        context = {"email": email, "display_name": display_name, "referral_code": referral_code}
        return _refused(request, "accounts/signup.html", exc, **context)
    if code is not None:
        await wired.referred(logged_in.user.id, code)
    response = _signed_in(request, None)
    identity_web.start_session(response, request, logged_in)
    return response


@router.get("/login", name="roadmaps-login", response_class=HTMLResponse)
async def login_page(request: Request, next: QueryNext = "", reset: str = "") -> Response:
    target = identity_web.safe_next(next)
    if identity_web.optional_user(request) is not None:
        return _signed_in(request, target)
    notice = "Your password was changed. Sign in with the new one." if reset else None
    return _show(request, "accounts/login.html", email="", next=target or "", notice=notice)


@router.post("/login", name="roadmaps-login-submit", response_class=HTMLResponse)
async def login_submit(
    request: Request,
    email: FormEmail = "",
    password: FormPassword = "",
    next: FormNext = "",
) -> Response:
    target = identity_web.safe_next(next)
    try:
        logged_in = await auth.accounts(request).log_in(
            email=email,
            password=password,
            client=identity_web.client_address(request),
            previous_token=identity_web.session_token(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except KeelError as exc:
        return _refused(request, "accounts/login.html", exc, email=email, next=target or "")
    response = _signed_in(request, target)
    identity_web.start_session(response, request, logged_in)
    return response


@router.post("/logout", name="roadmaps-logout")
async def logout(request: Request) -> Response:
    token = identity_web.session_token(request)
    if token is not None:
        await auth.accounts(request).log_out(token)
    response = RedirectResponse(auth.path_to(request, "roadmaps-login"), status_code=303)
    identity_web.end_session(response, request)
    return response


@router.get("/reset", name="roadmaps-reset", response_class=HTMLResponse)
async def reset_page(request: Request) -> Response:
    return _show(request, "accounts/reset_request.html", email="", sent=False)


@router.post("/reset", name="roadmaps-reset-submit", response_class=HTMLResponse)
async def reset_submit(
    request: Request, background: BackgroundTasks, email: FormEmail = ""
) -> Response:
    service = auth.accounts(request)
    try:
        await service.limit_password_resets(
            email=email, client=identity_web.client_address(request)
        )
    except TooManyAttempts as exc:
        return _refused(request, "accounts/reset_request.html", exc, email=email, sent=False)
    # After the page is sent: its timing must not tell whether the email has an account.
    background.add_task(service.request_password_reset, email=email, link=auth.reset_link(request))
    return _show(request, "accounts/reset_request.html", email=email, sent=True)


@router.get("/reset/confirm", name="roadmaps-reset-confirm", response_class=HTMLResponse)
async def reset_confirm_page(
    request: Request, token: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    try:
        await auth.accounts(request).check_reset_token(token)
    except InvalidResetToken as exc:
        return _refused(request, "accounts/reset_confirm.html", exc, token="")
    return _show(request, "accounts/reset_confirm.html", token=token)


@router.post("/reset/confirm", name="roadmaps-reset-confirm-submit", response_class=HTMLResponse)
async def reset_confirm_submit(
    request: Request,
    token: Annotated[str, Form(max_length=200)] = "",
    password: FormPassword = "",
) -> Response:
    try:
        await auth.accounts(request).reset_password(token=token, new_password=password)
    except InvalidResetToken as exc:
        return _refused(request, "accounts/reset_confirm.html", exc, token="")
    except KeelError as exc:
        return _refused(request, "accounts/reset_confirm.html", exc, token=token)
    target = auth.path_to(request, "roadmaps-login") + "?reset=done"
    response = RedirectResponse(target, status_code=303)
    identity_web.end_session(response, request)
    return response
