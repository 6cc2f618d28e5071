"""coinpay's webhook events, read from a body whose signature the web layer has checked.

coinpay's envelope (CoinPayPortal's SDK reads the same fields)::

    {"id": "evt_…", "type": "payment.confirmed", "business_id": "…", "created_at": "…Z",
     "livemode": false, "data": {"payment_id": "…", "status": "confirmed", "metadata": {…}, …}}

CoinPayPortal's README nests the payment as ``data.payment`` {``id``, ``status``, ``metadata``};
both shapes are read. Events that are not about a payment (``business.updated``) have no
payment id. Delivery is at least once: ``id`` is what makes applying one idempotent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from keel.coach.billing.errors import MalformedEvent

_EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")  # fits coach_coinpay_events.id
_EVENT_TYPE = re.compile(r"[a-z_]{1,30}(?:\.[a-z_]{1,30}){1,2}")
_PAYMENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")  # fits coach_invoices.coinpay_payment_id


@dataclass(frozen=True)
class CoinpayEvent:
    """One webhook event. ``payment_status`` is the payment's status when coinpay wrote it."""

    id: str
    type: str
    payment_id: str | None = None
    payment_status: str | None = None
    business_id: str | None = None
    livemode: bool | None = None
    created_at: datetime | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


def parse(raw: bytes) -> CoinpayEvent:
    """The event in a verified body; :class:`MalformedEvent` names what is wrong."""
    try:
        # Amounts are not used here, but a number must never become a float on our side.
        body = json.loads(raw, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise MalformedEvent("The body is not JSON") from None
    if not isinstance(body, dict):
        raise MalformedEvent("The body is not a JSON object")
    event_id, event_type = body.get("id"), body.get("type")
    if not isinstance(event_id, str) or not _EVENT_ID.fullmatch(event_id):
        raise MalformedEvent("id: expected an event id")
    if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
        raise MalformedEvent("type: expected an event type such as payment.confirmed")
    data = body.get("data", {})
    if not isinstance(data, dict):
        raise MalformedEvent("data: expected an object")
    nested = data.get("payment")
    payment = nested if isinstance(nested, dict) else {}
    payment_id = data.get("payment_id", payment.get("id"))
    if payment_id is not None and (
        not isinstance(payment_id, str) or not _PAYMENT_ID.fullmatch(payment_id)
    ):
        raise MalformedEvent("data.payment_id: expected a payment id")
    if event_type.startswith("payment.") and payment_id is None:
        raise MalformedEvent("data.payment_id: a payment event names its payment")
    status = data.get("status", payment.get("status"))
    metadata = data.get("metadata", payment.get("metadata"))
    business_id = body.get("business_id")
    livemode = body.get("livemode")
    return CoinpayEvent(
        id=event_id,
        type=event_type,
        payment_id=payment_id,
        payment_status=status[:32] if isinstance(status, str) else None,
        business_id=business_id[:64] if isinstance(business_id, str) else None,
        livemode=livemode if isinstance(livemode, bool) else None,
        created_at=_instant(body.get("created_at")),
        metadata=metadata if isinstance(metadata, dict) else {},
    )


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
