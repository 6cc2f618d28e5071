"""coinpay's webhook: ``POST /coinpay/webhook`` (``/coach/coinpay/webhook`` under keel serve).

coinpay signs each delivery ``X-CoinPay-Signature: t=<unix s>,v1=<hex HMAC-SHA256>`` over
``"<t>.<raw body>"`` and retries anything but a 2xx (1 min … 12 h, eight attempts). So:

* a missing, malformed, wrong or stale signature (more than 300 s from our clock either way)
  is 401, checked on the raw bytes before the body is parsed;
* a signed body we cannot read is 400: retrying sends the same bytes, but the failure shows
  in coinpay's delivery log, where the event can be redelivered once we are fixed;
* every applied event, a repeat of one applied before, and one about a payment we do not
  know are 200 ``{"received": true}``: retrying them would change nothing.

The route's dependencies are ``request.app.state.coach``, a :class:`CoinpayWebhookContext`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach.billing import coinpay, events
from keel.coach.billing.coinpay import Outcome, OutcomeKind
from keel.coach.settings import CoachSettings
from keel.core import webhooks
from keel.core.app import read_body
from keel.core.clock import Clock
from keel.core.logging import get_logger
from keel.core.openapi import problem_responses

log = get_logger("keel.coach.billing")

router = APIRouter(tags=["billing"])

SIGNATURE_HEADER = "X-CoinPay-Signature"
TOLERANCE_SECONDS = 300  # CoinPayPortal's window, symmetric
# coinpay's events are a few KiB; anything much bigger is not from it.
MAX_WEBHOOK_BYTES = 64 * 1024


class CoinpayWebhookContext(Protocol):
    """What the route needs from ``app.state.coach``."""

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions on coach's database (keel.core.db.session_factory)."""
        ...

    @property
    def settings(self) -> CoachSettings:
        """``coinpay_webhook_secret`` is the secret coinpay showed when the endpoint was made."""
        ...

    @property
    def clock(self) -> Clock:
        """When an event is applied (``paid_until`` counts from it). Signatures are checked
        against the wall clock, which is what coinpay signs with."""
        ...

    @property
    def notify(self) -> Callable[[Outcome], Awaitable[None]]:
        """Tell the user, after the change committed; called for ``UNLOCKED`` outcomes only.
        An error is logged and the event still acknowledged: it is applied, and a
        redelivery would be a duplicate that notifies nobody."""
        ...


class WebhookReply(BaseModel):
    received: bool
    outcome: OutcomeKind


async def _raw_body(request: Request) -> bytes:
    return await read_body(request, MAX_WEBHOOK_BYTES)


# The body is read raw (the signature covers its exact bytes), so FastAPI cannot infer it.
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string", "description": "The event id (deduplicated)"},
                    "type": {"type": "string", "examples": ["payment.confirmed"]},
                    "data": {
                        "type": "object",
                        "description": "`payment_id`, `status`, `metadata` of the payment",
                    },
                },
            }
        }
    },
}


@router.post(
    "/coinpay/webhook",
    responses=problem_responses(400, 401, 413, 500),
    summary="coinpay webhook",
    openapi_extra={
        "requestBody": _REQUEST_BODY,
        "parameters": [
            {
                "name": SIGNATURE_HEADER,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>",
            }
        ],
    },
)
async def coinpay_webhook(request: Request) -> WebhookReply:
    """Apply a coinpay payment event exactly once: a confirmed payment unlocks its invoice's
    days, an expired one closes it. `outcome` says what happened (`duplicate` for an event
    applied before, `unknown_payment` for a payment that is not an invoice of ours)."""
    context: CoinpayWebhookContext = request.app.state.coach
    raw = await _raw_body(request)
    secret = context.settings.coinpay_webhook_secret
    if secret is None or not secret.get_secret_value():
        log.warning("coinpay_webhook_refused", reason="no coinpay_webhook_secret configured")
        raise webhooks.SignatureMismatch()  # the same answer as a wrong secret: no hint
    header = request.headers.get(SIGNATURE_HEADER)
    if header is None:
        raise webhooks.MalformedSignature(f"Missing {SIGNATURE_HEADER} header")
    webhooks.verify(
        header,
        raw,
        [secret.get_secret_value()],
        now=int(time.time()),
        tolerance=TOLERANCE_SECONDS,
    )
    event = events.parse(raw)
    outcome = await coinpay.apply_coinpay_event(context.sessions, event, now=context.clock.now())
    if outcome.kind is OutcomeKind.UNLOCKED:
        try:
            await context.notify(outcome)
        except Exception:  # the unlock is committed either way; only the message is lost
            log.exception("coinpay_unlock_notify_failed", event_id=event.id)
    return WebhookReply(received=True, outcome=outcome.kind)
