"""Payment routes, wire-compatible with CoinPayPortal's merchant API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import Response

from keel.coinpay import payments, presentation, qr
from keel.coinpay.api.deps import WireJSONResponse, errors, gateway, ok, principal
from keel.coinpay.api.schemas import CreatePaymentBody, SimulateBody
from keel.coinpay.apikeys import Principal
from keel.coinpay.lifecycle import Status
from keel.core.jsonbody import ExactJSONRoute

# Bodies carry amounts: read JSON numbers from their digits, never through a float.
router = APIRouter(tags=["payments"], route_class=ExactJSONRoute)

Caller = Annotated[Principal, Depends(principal)]


def _payment_reply(request: Request, row: payments.Payment) -> WireJSONResponse:
    wire = presentation.to_wire(row, gateway(request).live_chains)
    wire["qr_code"] = qr.data_uri(wire["payment_uri"])
    return ok(payment=wire)


@router.post("/payments/create", status_code=201, responses=errors(422, 503))
async def create_payment(
    body: CreatePaymentBody,
    request: Request,
    caller: Caller,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    """Create a payment at a rate frozen now, on a fresh address."""
    row = await payments.create(
        gateway(request),
        caller,
        payments.NewPayment(
            business_id=body.business_id,
            amount=body.amount,
            currency=body.currency,
            blockchain=body.blockchain,
            description=body.description,
            metadata=body.metadata,
            expires_in_minutes=body.expires_in_minutes,
        ),
        idempotency_key=idempotency_key,
    )
    reply = _payment_reply(request, row)
    reply.status_code = 201
    return reply


@router.get("/payments/{payment_id}", responses=errors(404))
async def get_payment(payment_id: str, request: Request, caller: Caller) -> Response:
    """One payment of the caller's business."""
    return _payment_reply(request, await payments.get(gateway(request), caller, payment_id))


@router.get("/payments", responses=errors())
async def list_payments(
    request: Request,
    caller: Caller,
    business_id: Annotated[str | None, Query(alias="businessId", max_length=64)] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """The caller's payments, newest first."""
    rows = await payments.list_payments(
        gateway(request),
        caller,
        business_id=business_id,
        status=status,
        limit=limit,
        offset=offset,
    )
    chains = gateway(request).live_chains
    wires = [presentation.to_wire(r, chains) for r in rows]
    return ok(payments=wires, limit=limit, offset=offset)


@router.get(
    "/payments/{payment_id}/qr",
    responses={200: {"content": {"image/png": {}}}, **errors(404, keyed=False)},
    response_class=Response,
)
async def payment_qr(payment_id: str, request: Request) -> Response:
    """A PNG QR code of the payment's wallet URI (public: the id is the capability)."""
    row = await payments.get_public(gateway(request), payment_id)
    return Response(
        qr.png(presentation.payment_uri(row, gateway(request).live_chains)),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.post("/payments/{payment_id}/simulate", responses=errors(404, 409))
async def simulate_payment(
    payment_id: str, body: SimulateBody, request: Request, caller: Caller
) -> Response:
    """Test mode only: play the customer paying (full, partial, over, late), a new block
    (same ``tx_hash``, more confirmations) or a reorg (``reverted: true``)."""
    amount = format(body.amount_crypto, "f") if body.amount_crypto is not None else None
    row = await payments.simulate(
        gateway(request),
        caller,
        payment_id,
        amount_crypto=amount,
        confirmations=body.confirmations,
        tx_hash=body.tx_hash,
        reverted=body.reverted,
    )
    return _payment_reply(request, row)


@router.get("/payments/{payment_id}/events", responses=errors(404))
async def payment_events(payment_id: str, request: Request, caller: Caller) -> Response:
    """The payment's append-only event log: every transition with its cause."""
    events = await payments.events(gateway(request), caller, payment_id)
    return ok(events=events)
