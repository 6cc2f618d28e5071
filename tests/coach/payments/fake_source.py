"""An in-memory chain source: the bot's offline mode and tests that need no network."""

from __future__ import annotations

from keel.coach.payments.errors import SourceUnavailable, TransactionNotFound
from keel.coach.payments.observed import Chain, ObservedPayment

__all__ = ["FakeSource"]


class FakeSource:
    """:class:`~keel.coach.payments.adapters.base.PaymentSource` answering from the payments
    it was given; with ``down`` set it raises that instead, like a source that is down."""

    def __init__(self, chain: Chain, *payments: ObservedPayment, name: str = "fake") -> None:
        self.chain = chain
        self.name = name
        self.down: SourceUnavailable | None = None
        self.asked: list[str] = []
        self._payments = {p.tx_hash: p for p in payments}

    def add(self, payment: ObservedPayment) -> None:
        """Make ``payment`` known (or replace what was known of it: a new confirmation)."""
        self._payments[payment.tx_hash] = payment

    async def observe(self, tx_hash: str) -> ObservedPayment:
        """The payment given for ``tx_hash``; TransactionNotFound when none was."""
        self.asked.append(tx_hash)
        if self.down is not None:
            raise self.down
        try:
            return self._payments[tx_hash]
        except KeyError:
            raise TransactionNotFound(f"{self.name}: no transaction {tx_hash}") from None
