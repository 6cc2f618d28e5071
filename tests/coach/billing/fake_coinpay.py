"""An in-memory coinpay for the billing unit tests (the end-to-end test runs the real one)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

from keel.coach.adapters.coinpay import CoinpayError, CoinpayPayment, CoinpayRefused

_RATES = {"BTC": Decimal(80_000), "ETH": Decimal(2600), "SOL": Decimal(150), "USDC_ETH": Decimal(1)}
_DECIMALS = {"BTC": 8, "ETH": 18, "SOL": 9, "USDC_ETH": 6}


class FakeCoinpay:
    """:class:`keel.coach.adapters.coinpay.CoinpayApi` in memory.

    A payment costs ``amount_usd / rates[coin]`` coins, rounded down to ``decimals[coin]``
    places, and expires ``expiry`` after ``now()``. Set ``fail_with`` to make every call raise.
    """

    def __init__(
        self,
        now: Callable[[], datetime],
        *,
        rates: Mapping[str, Decimal] | None = None,
        decimals: Mapping[str, int] | None = None,
        expiry: timedelta = timedelta(minutes=15),
    ) -> None:
        self._now = now
        self.rates = dict(rates or _RATES)
        self.decimals = dict(decimals or _DECIMALS)
        self.expiry = expiry
        self.payments: dict[str, CoinpayPayment] = {}
        self.calls = 0
        self.fail_with: CoinpayError | None = None
        self._by_key: dict[str, str] = {}

    async def create_payment(
        self,
        amount_usd: Decimal,
        blockchain: str,
        description: str,
        metadata: Mapping[str, str],
        *,
        idempotency_key: str | None = None,
    ) -> CoinpayPayment:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        if idempotency_key in self._by_key:
            return self.payments[self._by_key[idempotency_key]]
        coin = blockchain.upper()
        step = Decimal(1).scaleb(-self.decimals[coin])
        payment = CoinpayPayment(
            id=str(uuid.uuid4()),
            status="pending",
            blockchain=coin,
            payment_address=f"fake-{coin.lower()}-{len(self.payments)}",
            crypto_amount=(amount_usd / self.rates[coin]).quantize(step, rounding="ROUND_DOWN"),
            amount_usd=amount_usd,
            expires_at=self._now() + self.expiry,
            metadata=dict(metadata),
        )
        self.payments[payment.id] = payment
        if idempotency_key:
            self._by_key[idempotency_key] = payment.id
        return payment

    async def get_payment(self, payment_id: str) -> CoinpayPayment:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        if payment_id not in self.payments:
            raise CoinpayRefused(
                "coinpay: Payment not found", coinpay_status=404, coinpay_code="payment_not_found"
            )
        return self.payments[payment_id]

    def set_status(self, payment_id: str, status: str) -> None:
        self.payments[payment_id] = replace(self.payments[payment_id], status=status)
