"""Errors of the risk radar. Each has a stable ``code`` and a one-line human ``detail`` that
the bot may show as it is.

RiskError (KeelError)
├── BadAddress            not a token address we can scan; also GoPlus code 2004 (400)
├── UnsupportedChain      a chain name or id GoPlus token security does not cover (400)
├── TokenNotFound         GoPlus answered, but knows nothing about this token (404)
├── RateLimited           GoPlus code 4029 or HTTP 429; ``retry_after`` seconds (429)
├── ScanPending           GoPlus code 2: it is still analysing the token; ``retry_after`` (503)
├── ScanUnavailable       code 5000, HTTP 5xx, a timeout, an open breaker, refused auth (503)
│   └── MalformedReply    GoPlus answered with something that is not a token security reply
└── StoredReportInvalid   a stored report's JSON is not one ``RiskReport.to_json`` wrote
"""

from __future__ import annotations

from keel.core import errors


class RiskError(errors.KeelError):
    """The risk scan failed."""


class BadAddress(RiskError, errors.BadRequest):
    """That is not a token address: EVM tokens are 0x and 40 hex digits, Solana mints are
    32-44 base58 characters."""

    code = "bad_token_address"


class UnsupportedChain(RiskError, errors.BadRequest):
    """That chain is not one the risk scan covers."""

    code = "unsupported_chain"


class TokenNotFound(RiskError, errors.NotFound):
    """GoPlus has no security data for this token (is it a token contract on that chain?)."""

    code = "token_not_found"


class _RetryLater(RiskError):
    """Base of the errors that carry a ``retry_after`` hint in seconds."""

    def __init__(self, detail: str | None = None, *, retry_after: float) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class RateLimited(_RetryLater, errors.RateLimited):
    """GoPlus is rate limiting our scans; try again in a minute."""

    code = "scan_rate_limited"


class ScanPending(_RetryLater, errors.Unavailable):
    """GoPlus is still analysing this token; try again in a few seconds."""

    code = "scan_pending"


class ScanUnavailable(_RetryLater, errors.Unavailable):
    """The token scanner (GoPlus) is unavailable right now; try again later."""

    code = "scan_unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: float = 30.0) -> None:
        super().__init__(detail, retry_after=retry_after)


class MalformedReply(ScanUnavailable):
    """GoPlus answered with something that is not a token security reply."""

    code = "scan_malformed_reply"


class StoredReportInvalid(RiskError, ValueError):
    """A stored risk report could not be read back (written by another version?)."""

    code = "stored_report_invalid"
