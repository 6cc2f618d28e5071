"""Errors of billing. Each has a stable ``code``.

BillingError (KeelError)
├── InvalidSignature     the webhook's X-Signature is missing or wrong (401)
├── MalformedWebhook     a signed body that is not an event we can read (400)
└── ProviderError        LemonSqueezy's API could not tell us (503 if it ever reaches a client)
    ├── ProviderUnavailable  no usable answer: network, timeout, 401/403/429/5xx, open breaker
    └── ProviderRefused      an answer of no: another 4xx (e.g. an unknown subscription)
"""

from __future__ import annotations

from keel.core import errors


class BillingError(errors.KeelError):
    """A billing error."""


class InvalidSignature(BillingError, errors.Unauthorized):
    """The webhook signature is missing or invalid."""

    # One error for every cause (no header, not hex, wrong digest, no secret configured):
    # a caller probing the endpoint learns nothing about which part failed.
    code = "webhook_signature_invalid"


class MalformedWebhook(BillingError, errors.BadRequest):
    """The webhook body is not a LemonSqueezy event we can read."""

    code = "webhook_malformed"


class ProviderError(BillingError, errors.Unavailable):
    """LemonSqueezy's API could not tell us the subscription's state."""

    code = "billing_provider_error"


class ProviderUnavailable(ProviderError):
    """LemonSqueezy's API could not be asked (network, timeout, a refused API key, 429 or 5xx,
    or the breaker is open)."""

    code = "billing_provider_unavailable"


class ProviderRefused(ProviderError):
    """LemonSqueezy's API answered no (a 4xx such as 404 for an unknown subscription)."""

    code = "billing_provider_refused"
