"""Coins and exchange rates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from keel.coinpay import businesses, presentation
from keel.coinpay.api.deps import errors, gateway, ok, principal
from keel.coinpay.apikeys import Principal
from keel.coinpay.assets import get_coin
from keel.coinpay.money import parse_currency
from keel.core.errors import Forbidden

router = APIRouter(tags=["coins"])


@router.get("/supported-coins", responses=errors())
async def supported_coins(
    request: Request,
    caller: Annotated[Principal, Depends(principal)],
    business_id: Annotated[str | None, Query(max_length=64)] = None,
    active_only: bool = False,
) -> Response:
    """Coins this gateway supports and whether the business can receive each."""
    chosen = business_id or caller.business_id
    if chosen != caller.business_id:
        raise Forbidden("This API key belongs to another business")
    gw = gateway(request)
    async with gw.sessions() as session:
        coins = await businesses.supported_coins(
            session, chosen, caller.mode, active_only=active_only
        )
    return ok(coins=coins, business_id=chosen, total=len(coins))


@router.get("/rates", responses=errors(503, keyed=False))
async def exchange_rate(
    request: Request,
    crypto: Annotated[str, Query(min_length=1, max_length=16)],
    fiat: Annotated[str, Query(min_length=3, max_length=8)] = "USD",
) -> Response:
    """The current rate (fiat per whole coin) the gateway would freeze on a new payment."""
    coin = get_coin(crypto)
    currency = parse_currency(fiat)
    quote = await gateway(request).rates.get(coin.asset, currency)
    return ok(
        crypto=coin.symbol,
        fiat=currency,
        rate=str(quote.rate),
        source=quote.source,
        as_of=presentation.iso(quote.as_of),
    )
