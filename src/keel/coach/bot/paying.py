"""/subscribe and pasted transaction hashes, in words a chat can show.

Two routes: through coinpay (when configured), where coinpay watches the chain and its signed
webhook unlocks the plan; and directly to the operator's own addresses, where the user pastes
the transaction's hash and coach checks it on its chain. A code typed after /subscribe is first
a coinpay coin (``ETH``, ``USDC_SOL``), then a direct offer (``usdt-tron``).
"""

from __future__ import annotations

import html
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coach.adapters.coinpay import CoinpayApi, CoinpayError
from keel.coach.billing import coinpay as via_coinpay
from keel.coach.billing import coins, direct
from keel.coach.billing.coinpay import Plan
from keel.coach.billing.errors import BillingError
from keel.coach.payments import hashes
from keel.coach.payments.errors import InvalidHash
from keel.coach.payments.observed import Chain
from keel.coach.payments.verifier import AskChain, Outcome, PaymentVerifier, Unlocked
from keel.core.clock import Clock

# The coinpay coins offered in the menu (every coin in billing.coins is accepted when typed).
MENU_COINS: Final = ("USDC_ETH", "ETH", "USDC_SOL", "SOL", "BTC")
_PENDING_KEPT: Final = 10_000


@dataclass(frozen=True)
class Said:
    """What to send: Telegram HTML, and chain choices to offer as buttons (an ambiguous hash)."""

    html: str
    choices: tuple[str, ...] = ()


def looks_like_hash(text: str) -> bool:
    try:
        hashes.detect(text.strip())
    except InvalidHash:
        return False
    return True


class Paying:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        plan: Plan,
        offers: dict[str, direct.Offer],
        verifier: PaymentVerifier,
        coinpay: CoinpayApi | None,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.plan = plan
        self.offers = offers
        self.verifier = verifier
        self.coinpay = coinpay
        self.clock = clock
        # A hash that needs a chain chosen, per user, until a button says which.
        self._pending: OrderedDict[int, str] = OrderedDict()

    def menu(self) -> str:
        lines = [f"<b>Pro</b>: {self.plan.days} days of higher limits for ${self.plan.price_usd}."]
        if self.coinpay is not None:
            lines.append("Pay through coinpay: " + ", ".join(f"/subscribe {c}" for c in MENU_COINS))
        if self.offers:
            lines.append(
                "Pay directly and paste the transaction hash: "
                + ", ".join(f"/subscribe {code}" for code in self.offers)
            )
        if len(lines) == 1:
            lines.append("Payments are not set up on this bot yet.")
        return "\n".join(lines)

    async def subscribe(self, user_id: int, code: str) -> Said:
        code = code.strip()
        if not code:
            return Said(self.menu())
        now = self.clock.now()
        if self.coinpay is not None and code.upper() in coins.COINS:
            try:
                invoice = await via_coinpay.subscribe(
                    self.sessions, self.coinpay, self.plan, user_id=user_id, coin=code, now=now
                )
            except (BillingError, CoinpayError) as exc:
                return Said(html.escape(f"I couldn't make the invoice: {exc.detail or exc}"))
            coin = coins.of(invoice.chain, invoice.asset)
            amount = coins.format_units(invoice.amount, coin.decimals)
            return Said(
                f"Send exactly <b>{amount} {html.escape(invoice.asset)}</b> on "
                f"{html.escape(invoice.chain)} to\n<code>{html.escape(invoice.recipient)}</code>\n"
                f"before {invoice.expires_at:%H:%M} UTC. I'll unlock your plan as soon as "
                "the payment confirms; nothing to paste."
            )
        offer = self.offers.get(code.lower())
        if offer is None:
            return Said(html.escape(f"I don't take {code[:20]!r}.") + "\n" + self.menu())
        try:
            made = await direct.invoice(
                self.sessions, offer, user_id=user_id, days=self.plan.days, now=now
            )
        except BillingError as exc:
            return Said(html.escape(f"I couldn't make the invoice: {exc.detail or exc}"))
        return Said(
            f"Send <b>{html.escape(offer.shown())}</b> ({html.escape(offer.label)}) to\n"
            f"<code>{html.escape(made.recipient)}</code>\nwithin two hours, then paste the "
            "transaction hash here. One transaction unlocks one invoice."
        )

    async def pasted(self, user_id: int, text: str, chain: str | None = None) -> Said:
        """Check a pasted transaction hash (``chain`` once the user chose one)."""
        if chain is None:
            outcome = await self.verifier.verify(user_id=user_id, text=text.strip())
        else:
            outcome = await self.verifier.verify(
                user_id=user_id, text=text.strip(), chain=Chain(chain)
            )
        return self._said(user_id, text.strip(), outcome)

    async def chose(self, user_id: int, chain: str) -> Said:
        text = self._pending.pop(user_id, None)
        if text is None:
            return Said("Paste the transaction hash again, please.")
        return await self.pasted(user_id, text, chain)

    def _said(self, user_id: int, text: str, outcome: Outcome) -> Said:
        if isinstance(outcome, AskChain):
            self._pending[user_id] = text
            self._pending.move_to_end(user_id)
            while len(self._pending) > _PENDING_KEPT:
                self._pending.popitem(last=False)
            return Said(html.escape(outcome.line), tuple(c.value for c in outcome.chains))
        if isinstance(outcome, Unlocked):
            return Said(
                html.escape(outcome.line) + f" Pro until {outcome.paid_until:%Y-%m-%d %H:%M} UTC."
            )
        return Said(html.escape(outcome.line))
