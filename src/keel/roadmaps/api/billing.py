"""LemonSqueezy's webhook: ``POST /api/billing/lemonsqueezy/webhook``.

LemonSqueezy counts only a 200 as delivered and retries anything else three times (5, 25 and
125 s), then shows the delivery as failed in the store's dashboard. So:

* a bad or missing signature is 401, whatever the cause;
* a signed body we cannot read (not JSON, fields missing) is 400: a retry sends the same bytes
  and fails the same way, but the failure shows in the dashboard, where it can be resent once
  fixed;
* an event we take no action on, a repeat of one already applied and an out-of-order report
  are 200 (``outcome`` says which), since retrying them would change nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel

from keel.core.app import read_body
from keel.core.openapi import problem_responses
from keel.roadmaps.billing import subscriptions, webhooks
from keel.roadmaps.billing.subscriptions import Outcome
from keel.roadmaps.bootstrap import Roadmaps

router = APIRouter(tags=["billing"])

# LemonSqueezy's events are a few KiB; anything much bigger is not from it.
MAX_WEBHOOK_BYTES = 256 * 1024


class WebhookReply(BaseModel):
    outcome: Outcome


async def _raw_body(request: Request) -> bytes:
    return await read_body(request, MAX_WEBHOOK_BYTES)


# The body is read raw (the signature covers its exact bytes), so FastAPI cannot infer it.
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["meta", "data"],
                "properties": {
                    "meta": {
                        "type": "object",
                        "description": "`event_name`, and `custom_data.user_id` (our user)",
                    },
                    "data": {"type": "object", "description": "A JSON:API resource object"},
                },
            }
        }
    },
}


@router.post(
    "/billing/lemonsqueezy/webhook",
    responses=problem_responses(400, 401, 413, 500, 503),
    summary="LemonSqueezy webhook",
    openapi_extra={"requestBody": _REQUEST_BODY},
)
async def lemonsqueezy_webhook(
    request: Request,
    x_signature: Annotated[
        str | None,
        Header(description="Hex HMAC-SHA256 of the raw body under the signing secret"),
    ] = None,
) -> WebhookReply:
    """Apply a LemonSqueezy event exactly once: `subscription_*` events change the
    subscription, `subscription_payment_*` events are recorded, others are acknowledged and
    ignored. `outcome` says which (`duplicate` for an event applied before, `stale` for a
    report older than the one held)."""
    wired: Roadmaps = request.app.state.roadmaps
    raw = await _raw_body(request)
    webhooks.verify(raw, x_signature, wired.settings.lemonsqueezy_signing_secret)
    event = webhooks.parse(raw)
    outcome = await subscriptions.handle(wired.database, event, now=wired.clock.now())
    return WebhookReply(outcome=outcome)
