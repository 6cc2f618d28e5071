"""Errors of payment verification. Each has a stable ``code``.

PaymentError (KeelError)
├── InvalidHash            the pasted text is no transaction hash of a chain we accept (400)
├── TransactionNotFound    the source has no such transaction (404)
└── SourceUnavailable      the source gave no usable answer; try again later (503)
    ├── SourceRateLimited      it throttles us (HTTP 429, Etherscan's "Max rate limit reached")
    ├── SourceMisconfigured    it refuses our key, or serves another chain than configured
    └── MalformedResponse      an answer we cannot read (a missing field, a float amount)

Adapters raise only these (library errors are translated, the cause kept); a circuit breaker
counts :class:`SourceUnavailable` as the source failing, never :class:`TransactionNotFound`.
"""

from __future__ import annotations

from keel.core import errors


class PaymentError(errors.KeelError):
    """A payment verification error."""


class InvalidHash(PaymentError, errors.BadRequest):
    """That is not a transaction hash."""

    code = "invalid_tx_hash"


class TransactionNotFound(PaymentError, errors.NotFound):
    """No transaction with that hash was found."""

    code = "tx_not_found"


class SourceUnavailable(PaymentError, errors.Unavailable):
    """The chain source did not answer; try again later."""

    code = "chain_source_unavailable"


class SourceRateLimited(SourceUnavailable):
    """The chain source is rate limiting us; try again later."""

    code = "chain_source_rate_limited"


class SourceMisconfigured(SourceUnavailable):
    """The chain source refused our credentials or serves another chain."""

    code = "chain_source_misconfigured"


class MalformedResponse(SourceUnavailable):
    """The chain source answered something we cannot read."""

    code = "chain_source_malformed"
