"""LemonSqueezy's JSON:API resources (a subscription, a subscription invoice) as our values.

Webhooks and the API send the same resource object (``{"type", "id", "attributes"}``), so both
read it here. Anything missing or of the wrong type raises :class:`ResourceError` naming the
field; callers translate it (a malformed webhook, or an API that is not answering properly).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class ResourceError(ValueError):
    """A resource lacks a field we need, or has one of the wrong type."""


class SubscriptionStatus(enum.StrEnum):
    ON_TRIAL = "on_trial"
    ACTIVE = "active"
    PAUSED = "paused"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True)
class SubscriptionReport:
    """A subscription as LemonSqueezy reported it at ``updated_at`` (its clock)."""

    id: str
    status: SubscriptionStatus
    variant_id: str
    renews_at: datetime | None
    ends_at: datetime | None
    trial_ends_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class InvoiceReport:
    """A subscription invoice (the resource of ``subscription_payment_*`` events)."""

    id: str
    subscription_id: str
    status: str  # paid | pending | void | refunded | partial_refund
    billing_reason: str  # initial | renewal | updated
    total_minor: int  # in the currency's smallest unit (cents)
    currency: str
    updated_at: datetime


def subscription(resource: object) -> SubscriptionReport:
    """Read a ``subscriptions`` resource object."""
    attributes = _attributes(resource, "subscriptions")
    status = _text(attributes, "status")
    try:
        parsed = SubscriptionStatus(status)
    except ValueError:
        raise ResourceError(f"data.attributes.status: unknown status {status[:32]!r}") from None
    return SubscriptionReport(
        id=identifier(_field(resource, "id"), "data.id"),
        status=parsed,
        variant_id=identifier(attributes.get("variant_id"), "data.attributes.variant_id"),
        renews_at=_moment(attributes, "renews_at", optional=True),
        ends_at=_moment(attributes, "ends_at", optional=True),
        trial_ends_at=_moment(attributes, "trial_ends_at", optional=True),
        updated_at=_required_moment(attributes, "updated_at"),
    )


def invoice(resource: object) -> InvoiceReport:
    """Read a ``subscription-invoices`` resource object."""
    attributes = _attributes(resource, "subscription-invoices")
    total = attributes.get("total")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise ResourceError("data.attributes.total: expected a non-negative integer")
    currency = _text(attributes, "currency")
    if not _CURRENCY.fullmatch(currency):
        raise ResourceError("data.attributes.currency: expected a 3-letter ISO 4217 code")
    return InvoiceReport(
        id=identifier(_field(resource, "id"), "data.id"),
        subscription_id=identifier(
            attributes.get("subscription_id"), "data.attributes.subscription_id"
        ),
        status=_text(attributes, "status", max_length=16),
        billing_reason=_text(attributes, "billing_reason", max_length=16),
        total_minor=total,
        currency=currency,
        updated_at=_required_moment(attributes, "updated_at"),
    )


def identifier(value: object, where: str) -> str:
    """An id as a string: LemonSqueezy sends resource ids as strings and foreign ids as
    integers; ours are strings of at most 32 safe characters."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ResourceError(f"{where}: expected an id (1-32 letters, digits, '-' or '_')")
    return value


def _field(resource: object, key: str) -> object:
    if not isinstance(resource, Mapping):
        raise ResourceError("data: expected a JSON:API resource object")
    return resource.get(key)


def _attributes(resource: object, kind: str) -> Mapping[str, object]:
    if _field(resource, "type") != kind:
        raise ResourceError(f"data.type: expected {kind!r}")
    attributes = _field(resource, "attributes")
    if not isinstance(attributes, Mapping):
        raise ResourceError("data.attributes: expected an object")
    return attributes


def _text(attributes: Mapping[str, object], key: str, *, max_length: int = 32) -> str:
    value = attributes.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise ResourceError(f"data.attributes.{key}: expected a string")
    return value


def _moment(attributes: Mapping[str, object], key: str, *, optional: bool) -> datetime | None:
    value = attributes.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ResourceError(f"data.attributes.{key}: expected an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(value)  # "2024-01-31T12:00:00.000000Z" on 3.11+
    except ValueError:
        raise ResourceError(f"data.attributes.{key}: expected an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ResourceError(f"data.attributes.{key}: expected a time with its UTC offset")
    return moment.astimezone(UTC)


def _required_moment(attributes: Mapping[str, object], key: str) -> datetime:
    moment = _moment(attributes, key, optional=False)
    assert moment is not None
    return moment
