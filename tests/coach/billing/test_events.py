"""coinpay's webhook bodies read into events, and the ones refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from keel.coach.billing import events
from keel.coach.billing.errors import MalformedEvent


def body(**fields: Any) -> bytes:
    event = {
        "id": "evt_1",
        "type": "payment.confirmed",
        "business_id": "biz",
        "created_at": "2026-03-02T12:00:00Z",
        "livemode": False,
        "data": {
            "payment_id": "pay-1",
            "status": "confirmed",
            "amount": 10.00,
            "amount_crypto": "0.0038",
            "metadata": {"coach_invoice_id": "inv"},
        },
    }
    event.update(fields)
    return json.dumps(event).encode()


def test_coinpays_envelope_is_read() -> None:
    event = events.parse(body())
    assert event == events.CoinpayEvent(
        id="evt_1",
        type="payment.confirmed",
        payment_id="pay-1",
        payment_status="confirmed",
        business_id="biz",
        livemode=False,
        created_at=datetime(2026, 3, 2, 12, tzinfo=UTC),
        metadata={"coach_invoice_id": "inv"},
    )


def test_the_readmes_nested_payment_is_read_too() -> None:
    nested = {"payment": {"id": "pay-2", "status": "confirmed", "metadata": {"a": "b"}}}
    event = events.parse(body(data=nested))
    assert (event.payment_id, event.payment_status, event.metadata) == (
        "pay-2",
        "confirmed",
        {"a": "b"},
    )


def test_an_event_about_no_payment_has_no_payment_id() -> None:
    event = events.parse(body(type="business.updated", data={"action": "webhook.created"}))
    assert event.payment_id is None


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (body(id=None), "id"),
        (body(id="x" * 129), "id"),
        (body(id="evt 1"), "id"),
        (body(type="confirmed"), "type"),
        (body(type=7), "type"),
        (body(data=[]), "data"),
        (body(data={"status": "confirmed"}), "names its payment"),
        (body(data={"payment_id": 12}), "payment_id"),
        (body(data={"payment_id": "p" * 65}), "payment_id"),
    ],
)
def test_unreadable_bodies_are_refused_naming_why(raw: bytes, why: str) -> None:
    with pytest.raises(MalformedEvent, match=why):
        events.parse(raw)


def test_odd_optional_fields_are_dropped_not_refused() -> None:
    event = events.parse(body(created_at="yesterday", livemode="no", business_id=3))
    assert (event.created_at, event.livemode, event.business_id) == (None, None, None)
