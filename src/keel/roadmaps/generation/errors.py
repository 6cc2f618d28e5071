"""Errors of roadmap generation. Each has a stable ``code``.

GenerationError (KeelError)
├── InvalidRequest         the goal is empty or too long, or level / hours out of range (422)
└── ProviderUnavailable    no configured model produced a roadmap; ``retry_after`` when known (503)
    ├── ProviderRejected   the provider refused our credentials or account (401/402/403)
    └── ProviderOutputInvalid  every attempt answered, but never with a valid roadmap
"""

from __future__ import annotations

from keel.core import errors


class GenerationError(errors.KeelError):
    """Roadmap generation failed."""


class InvalidRequest(GenerationError, errors.Unprocessable):
    """The generation request is not usable (goal, level or hours per week)."""

    code = "invalid_generation_request"


class ProviderUnavailable(GenerationError, errors.Unavailable):
    """The roadmap generator is unavailable; try again later."""

    code = "generator_unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int | None = None) -> None:
        if retry_after is None:
            super().__init__(detail)
        else:
            super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class ProviderRejected(ProviderUnavailable):
    """The generation provider refused our credentials or account (key, credits, access)."""

    code = "generator_rejected"


class ProviderOutputInvalid(ProviderUnavailable):
    """The generation provider answered, but never with a roadmap that passed validation."""

    code = "generator_output_invalid"
