"""Accounts over JSON, under ``/api/accounts``: sign up, log in and out, who am I, reset.

A session lives in an HttpOnly cookie; a script sends the CSRF token it was given (the
``csrf_token`` of a login or sign-up reply, or the page's ``<meta name="csrf-token">``) in
``X-CSRF-Token`` with every unsafe request that carries the cookie.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from keel.core.identity import LoggedIn, User, emails, passwords
from keel.core.identity import web as identity_web
from keel.core.openapi import problem_responses
from keel.roadmaps import referrals
from keel.roadmaps.api import auth
from keel.roadmaps.api.auth import CurrentUser

router = APIRouter(prefix="/api/accounts", tags=["accounts"])

_DESCRIPTIONS = {
    401: "Wrong email or password (never which), or not signed in",
    403: "The CSRF token is missing or wrong (send X-CSRF-Token with the session cookie)",
    409: "This email cannot be used to sign up",
    422: "The email, display name or password breaks a rule (code names it)",
    429: "Too many attempts from this address or for this email; see Retry-After",
}
_RESET_SENT = "If an account exists for this address, a link to reset its password is on its way."


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return problem_responses(*sorted({400, 500, *statuses}), descriptions=_DESCRIPTIONS)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Email = Annotated[str, Field(min_length=1, max_length=emails.MAX_EMAIL_CHARS + 64)]
# Chars, not bytes: the edge only stops absurd bodies; the policy counts the bytes.
Password = Annotated[str, Field(min_length=1, max_length=passwords.MAX_PASSWORD_BYTES)]


class Credentials(_Body):
    email: Email
    password: Password


class SignUp(Credentials):
    display_name: Annotated[
        str | None,
        Field(max_length=emails.MAX_DISPLAY_NAME_CHARS * 2, description="Default: the email's"),
    ] = None
    referral_code: Annotated[
        str | None, Field(max_length=20, description="A friend's referral code")
    ] = None


class ResetRequest(_Body):
    email: Email


class ResetConfirm(_Body):
    token: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password


def _user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "created_at": user.created_at.isoformat(),
    }


def _signed_in(request: Request, response: Response, logged_in: LoggedIn) -> dict[str, Any]:
    identity_web.start_session(response, request, logged_in)
    return {
        "user": _user(logged_in.user),
        "csrf_token": identity_web.csrf_token_for(request, logged_in),
        "expires_at": logged_in.session.expires_at.isoformat(),
    }


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


@router.post("/signup", status_code=201, responses=problems(403, 409, 422, 429))
async def sign_up(request: Request, response: Response, body: SignUp) -> dict[str, Any]:
    """Create an account and sign in: the session cookie is set, and the reply carries the
    user and the CSRF token for later unsafe requests."""
    wired = request.app.state.roadmaps
    code = (
        await referrals.check_code(wired.database, body.referral_code)
        if body.referral_code and body.referral_code.strip()
        else None
    )
    logged_in = await auth.accounts(request).sign_up(
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        client=identity_web.client_address(request),
        user_agent=_user_agent(request),
    )
    if code is not None:
        await wired.referred(logged_in.user.id, code)
    return _signed_in(request, response, logged_in)


@router.post("/login", responses=problems(401, 403, 429))
async def log_in(request: Request, response: Response, body: Credentials) -> dict[str, Any]:
    """Sign in with email and password: a new session (any the request came with ends)."""
    logged_in = await auth.accounts(request).log_in(
        email=body.email,
        password=body.password,
        client=identity_web.client_address(request),
        previous_token=identity_web.session_token(request),
        user_agent=_user_agent(request),
    )
    return _signed_in(request, response, logged_in)


@router.post("/logout", status_code=204, responses=problems(403))
async def log_out(request: Request) -> Response:
    """End this session and delete its cookie (204 whether or not there was one)."""
    token = identity_web.session_token(request)
    if token is not None:
        await auth.accounts(request).log_out(token)
    response = Response(status_code=204)
    identity_web.end_session(response, request)
    return response


@router.post("/logout-everywhere", status_code=204, responses=problems(401, 403))
async def log_out_everywhere(request: Request, user: CurrentUser) -> Response:
    """End every session of the signed-in account, this one included."""
    await auth.accounts(request).log_out_everywhere(user.id)
    response = Response(status_code=204)
    identity_web.end_session(response, request)
    return response


@router.get("/me", responses=problems(401))
async def me(user: CurrentUser) -> dict[str, Any]:
    """The signed-in user."""
    return {"user": _user(user)}


@router.post("/password-reset", status_code=202, responses=problems(403, 429))
async def request_password_reset(
    request: Request, body: ResetRequest, background: BackgroundTasks
) -> dict[str, Any]:
    """Mail a reset link to the account with this email, if there is one. The answer is the
    same either way, and comes before the mail is sent, so neither it nor its timing tells
    whether the address has an account."""
    service = auth.accounts(request)
    await service.limit_password_resets(
        email=body.email, client=identity_web.client_address(request)
    )
    background.add_task(
        service.request_password_reset, email=body.email, link=auth.reset_link(request)
    )
    return {"detail": _RESET_SENT}


@router.post("/password-reset/confirm", status_code=204, responses=problems(403, 422))
async def confirm_password_reset(request: Request, body: ResetConfirm) -> Response:
    """Set a new password with the token from a reset link. Every session of the account
    ends (sign in again); the link works once, and not after it expires."""
    await auth.accounts(request).reset_password(token=body.token, new_password=body.password)
    response = Response(status_code=204)
    identity_web.end_session(response, request)
    return response
