"""Errors of billing. Each has a stable ``code``.

BillingError (KeelError)
├── UnsupportedCoin      /subscribe asked for a coin coach does not sell (400)
├── UnknownUser          /subscribe for a Telegram user coach has no row for (404)
├── MalformedEvent       a signed coinpay webhook body we cannot read (400)
└── InconsistentPayment  coinpay's payment is not the one asked for (502)

Signature errors are keel.core.webhooks' (401); coinpay's API errors are
keel.coach.adapters.coinpay's (CoinpayUnavailable 503, CoinpayRefused 502).
"""

from __future__ import annotations

from keel.core import errors


class BillingError(errors.KeelError):
    """A billing error."""


class UnsupportedCoin(BillingError, errors.BadRequest):
    """coach does not sell subscriptions in this coin."""

    code = "coin_unsupported"


class UnknownUser(BillingError, errors.NotFound):
    """No such coach user (the bot creates the user on their first message)."""

    code = "user_unknown"


class MalformedEvent(BillingError, errors.BadRequest):
    """The webhook body is not a coinpay event we can read."""

    code = "coinpay_event_malformed"


class InconsistentPayment(BillingError):
    """coinpay's payment does not match what was asked (coin, amount or expiry)."""

    code = "coinpay_payment_inconsistent"
    status = 502
    title = "Payment gateway error"
