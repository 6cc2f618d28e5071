"""Direct payment: an invoice to one of the operator's own addresses, paid by the user, who
then pastes the transaction's hash (``keel.coach.payments`` checks it on its chain).

What is offered comes from settings: USDT on Ethereum and on TRON at ``price_usd`` (6
decimals, no rate needed), ETH and SOL at their fixed ``price_eth``/``price_sol`` when set.
An open invoice for the same thing is handed back rather than a second one made.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach.billing import invoices
from keel.coach.billing.coins import format_units, to_units
from keel.coach.billing.errors import UnsupportedCoin
from keel.coach.billing.lifecycle import InvoiceStatus
from keel.coach.settings import CoachSettings

ROUTE: Final = "direct"
# Long enough to buy on an exchange and withdraw; a late payment still unlocks (billing).
VALID_FOR: Final = timedelta(hours=2)


@dataclass(frozen=True)
class Offer:
    """One way to pay directly: ``code`` is what the user types (/subscribe usdt-tron)."""

    code: str
    label: str
    chain: str
    asset: str
    decimals: int
    price: Decimal  # in the asset
    recipient: str

    @property
    def amount(self) -> int:
        return to_units(self.price, self.decimals)

    def shown(self) -> str:
        return f"{format_units(self.amount, self.decimals)} {self.asset}"


def offers(settings: CoachSettings) -> dict[str, Offer]:
    """The direct offers the settings make possible, by code."""
    usd = Decimal(settings.price_usd)
    found: list[Offer] = []
    if settings.eth_recipient:
        found.append(
            Offer("usdt-eth", "USDT on Ethereum", "ETH", "USDT", 6, usd, settings.eth_recipient)
        )
        if settings.price_eth:
            found.append(
                Offer(
                    "eth",
                    "ETH",
                    "ETH",
                    "ETH",
                    18,
                    Decimal(settings.price_eth),
                    settings.eth_recipient,
                )
            )
    if settings.tron_recipient:
        found.append(
            Offer("usdt-tron", "USDT on TRON", "TRON", "USDT", 6, usd, settings.tron_recipient)
        )
    if settings.sol_recipient and settings.price_sol:
        found.append(
            Offer(
                "sol", "SOL", "SOL", "SOL", 9, Decimal(settings.price_sol), settings.sol_recipient
            )
        )
    return {offer.code: offer for offer in found}


async def invoice(
    sessions: async_sessionmaker[AsyncSession],
    offer: Offer,
    *,
    user_id: int,
    days: int,
    now: datetime,
) -> invoices.Invoice:
    """The user's open invoice for ``offer``, made when there is none payable for an hour."""
    if offer.amount <= 0:
        raise UnsupportedCoin(f"{offer.code} has no price")
    async with sessions.begin() as session:
        existing = await invoices.open_for(
            session,
            user_id=user_id,
            route=ROUTE,
            chain=offer.chain,
            asset=offer.asset,
            after=now + timedelta(hours=1),
        )
        if existing is not None and existing.amount == offer.amount:
            return existing
        made = invoices.Invoice(
            id=uuid.uuid4().hex,
            user_id=user_id,
            route=ROUTE,
            chain=offer.chain,
            asset=offer.asset,
            amount=offer.amount,
            recipient=offer.recipient,
            coinpay_payment_id=None,
            status=InvoiceStatus.OPEN,
            days=days,
            created_at=now,
            expires_at=now + VALID_FOR,
        )
        await invoices.insert(session, made)
    return made
