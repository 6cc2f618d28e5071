"""LemonSqueezy webhooks: the ``X-Signature`` check and the event the body carries.

The signature is the hex HMAC-SHA256 of the raw body under the webhook's signing secret. It is
checked before the body is parsed, and the event name is read from the signed body
(``meta.event_name``), never from the unsigned ``X-Event-Name`` header.

LemonSqueezy documents no event id, so an event's id is the SHA-256 of its raw body (ADR 0033):
a retry or a resend carries the same bytes, and two events that differ in anything differ in
their hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from keel.core.logging import get_logger
from keel.roadmaps.billing import resources
from keel.roadmaps.billing.errors import InvalidSignature, MalformedWebhook
from keel.roadmaps.billing.resources import InvoiceReport, ResourceError, SubscriptionReport

log = get_logger("keel.roadmaps.billing")

SIGNATURE_HEADER = "X-Signature"
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_EVENT_NAME = re.compile(r"[a-z_]{1,64}")

SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription_created",
        "subscription_updated",
        "subscription_cancelled",
        "subscription_resumed",
        "subscription_expired",
        "subscription_paused",
        "subscription_unpaused",
    }
)
PAYMENT_EVENTS = frozenset(
    {
        "subscription_payment_success",
        "subscription_payment_failed",
        "subscription_payment_recovered",
        "subscription_payment_refunded",
    }
)


@dataclass(frozen=True)
class SubscriptionEvent:
    """A ``subscription_*`` event: the subscription's state, for our user ``user_id``."""

    id: str
    name: str
    webhook_id: str | None
    user_id: str
    subscription: SubscriptionReport


@dataclass(frozen=True)
class PaymentEvent:
    """A ``subscription_payment_*`` event: one invoice's state."""

    id: str
    name: str
    webhook_id: str | None
    user_id: str | None
    invoice: InvoiceReport


@dataclass(frozen=True)
class OtherEvent:
    """An event we take no action on (orders, license keys, affiliates, ...)."""

    id: str
    name: str
    webhook_id: str | None


Event = SubscriptionEvent | PaymentEvent | OtherEvent


def verify(raw: bytes, signature: str | None, secret: SecretStr | None) -> None:
    """Accept ``raw`` only if ``signature`` is its HMAC-SHA256 under ``secret``; otherwise
    raise :class:`InvalidSignature`, the same for every cause."""
    if secret is None:
        log.warning("lemonsqueezy_webhook_refused", reason="no signing secret configured")
        raise InvalidSignature()
    if signature is None or not _HEX_SHA256.fullmatch(signature.strip()):
        raise InvalidSignature()
    expected = hmac.new(secret.get_secret_value().encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise InvalidSignature()


def sign(raw: bytes, secret: str) -> str:
    """The ``X-Signature`` LemonSqueezy sends with ``raw`` (for tests and local tools)."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def event_id(raw: bytes) -> str:
    """The event's id: hex SHA-256 of its raw body (module docstring)."""
    return hashlib.sha256(raw).hexdigest()


def parse(raw: bytes) -> Event:
    """The event in a verified body; :class:`MalformedWebhook` names what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise MalformedWebhook("The body is not JSON") from None
    if not isinstance(body, Mapping):
        raise MalformedWebhook("The body is not a JSON object")
    meta = body.get("meta")
    if not isinstance(meta, Mapping):
        raise MalformedWebhook("meta: expected an object")
    name = meta.get("event_name")
    if not isinstance(name, str) or not _EVENT_NAME.fullmatch(name):
        raise MalformedWebhook("meta.event_name: expected an event name")
    webhook_id = meta.get("webhook_id")
    webhook_id = webhook_id[:64] if isinstance(webhook_id, str) else None
    id_ = event_id(raw)
    try:
        if name in SUBSCRIPTION_EVENTS:
            user_id = _user_id(meta)
            if user_id is None:
                raise ResourceError("meta.custom_data.user_id: expected our user's id")
            report = resources.subscription(body.get("data"))
            return SubscriptionEvent(id_, name, webhook_id, user_id, report)
        if name in PAYMENT_EVENTS:
            return PaymentEvent(
                id_, name, webhook_id, _user_id(meta), resources.invoice(body.get("data"))
            )
    except ResourceError as exc:
        raise MalformedWebhook(str(exc)) from None
    return OtherEvent(id_, name, webhook_id)


def _user_id(meta: Mapping[str, object]) -> str | None:
    custom = meta.get("custom_data")
    if not isinstance(custom, Mapping) or custom.get("user_id") is None:
        return None
    return resources.identifier(custom.get("user_id"), "meta.custom_data.user_id")
