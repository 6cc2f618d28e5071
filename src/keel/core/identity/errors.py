"""What identity refuses, each with a stable code; ``keel.core.app`` renders them as problems.

KeelError
├── BadRequest
│   └── InvalidResetToken     a reset link forged, malformed, used, or expired (400)
├── Unauthorized
│   ├── InvalidCredentials    wrong email or password; never says which (401)
│   └── LoginRequired         the route needs a signed-in user (401, or a redirect to log in)
├── Forbidden
│   └── CsrfFailed            an unsafe request without its CSRF token (403)
├── Conflict
│   └── EmailUnavailable      sign-up with an email that cannot be used (409)
├── Unprocessable
│   ├── InvalidEmail          not an email address we accept (422)
│   ├── InvalidDisplayName    empty, too long, or control characters (422)
│   └── PasswordRejected      too short, too long, or the email itself (422)
└── RateLimited
    └── TooManyAttempts       too many failed logins, sign-ups or reset requests (429)

Messages never tell whether an account exists for an email (ADR 0029).
"""

from __future__ import annotations

from keel.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    RateLimited,
    Unauthorized,
    Unprocessable,
)


class InvalidCredentials(Unauthorized):
    """Wrong email or password."""

    code = "invalid_credentials"


class LoginRequired(Unauthorized):
    """Sign in first."""

    code = "login_required"


class CsrfFailed(Forbidden):
    """The request's CSRF token is missing or wrong; reload the page and try again."""

    code = "csrf_failed"


class EmailUnavailable(Conflict):
    """This email cannot be used to sign up; if it is yours, sign in or reset your password."""

    code = "email_unavailable"


class InvalidEmail(Unprocessable):
    """That is not an email address we can use."""

    code = "invalid_email"


class InvalidDisplayName(Unprocessable):
    """A display name has 1 to 80 characters, none of them control characters."""

    code = "invalid_display_name"


class PasswordRejected(Unprocessable):
    """The password does not meet the policy."""

    code = "password_rejected"


class InvalidResetToken(BadRequest):
    """This reset link is invalid, already used or expired; ask for a new one."""

    code = "invalid_reset_token"


class TooManyAttempts(RateLimited):
    """Too many attempts; wait before trying again."""

    code = "too_many_attempts"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after
