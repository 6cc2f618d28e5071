"""Errors every product shares.

KeelError                 base: carries a stable ``code`` and an HTTP ``status``
├── BadRequest            the input is malformed or out of range (400)
├── Unauthorized          no or unknown credentials (401)
├── Forbidden             credentials valid, action not allowed (403)
├── NotFound              the resource does not exist for this caller (404)
├── Conflict              the request clashes with current state (409)
├── Unprocessable         well-formed but semantically wrong (422)
├── RateLimited           too many requests (429)
└── Unavailable           a dependency is down; try again later (503)

Products subclass these so ``keel.core.app`` can render any of them as
``application/problem+json`` with the product's own ``code``.
"""

from __future__ import annotations


class KeelError(Exception):
    """Base of every error Keel raises on purpose."""

    code: str = "error"
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str | None = None, **extra: object) -> None:
        self.detail = detail or (self.__doc__ or self.title).strip().splitlines()[0]
        self.extra = extra
        super().__init__(self.detail)


class BadRequest(KeelError):
    """The request is malformed."""

    code = "bad_request"
    status = 400
    title = "Bad request"


class Unauthorized(KeelError):
    """Missing or unknown credentials."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class Forbidden(KeelError):
    """The credentials do not allow this action."""

    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(KeelError):
    """No such resource."""

    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(KeelError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409
    title = "Conflict"


class Unprocessable(KeelError):
    """The request is well-formed but cannot be processed."""

    code = "unprocessable"
    status = 422
    title = "Unprocessable request"


class RateLimited(KeelError):
    """Too many requests; retry after the window resets."""

    code = "rate_limited"
    status = 429
    title = "Too many requests"


class Unavailable(KeelError):
    """A dependency is unavailable; retry later."""

    code = "unavailable"
    status = 503
    title = "Service unavailable"
