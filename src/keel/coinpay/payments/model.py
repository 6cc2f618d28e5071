"""A payment as the domain sees it: a frozen value read from its row, and what the lifecycle
state machine needs from it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from keel.coinpay import lifecycle
from keel.coinpay.lifecycle import Status


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment: what was asked (fiat amount, frozen rate, crypto amount), where it is paid
    (address, custody, payout), and what the chain showed so far. Amounts in base units."""

    id: str
    business_id: str
    mode: str
    amount: Decimal
    currency: str
    blockchain: str
    crypto_amount: int
    rate: Decimal
    rate_source: str
    payment_address: str
    destination_tag: int | None  # XRP: the tag that tells this payment apart at its account
    family_key: str
    derivation_index: int
    custody: str
    payout_address: str | None
    status: str
    paid_partial: bool
    paid_over: bool
    paid_late: bool
    received_amount: int
    confirmations: int
    required_confirmations: int
    tolerance_percent: Decimal
    tx_hash: str | None
    forward_tx_hash: str | None
    description: str | None
    metadata: Mapping[str, Any]
    expires_at: datetime
    monitor_until: datetime
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    forwarded_at: datetime | None
    commission_bps: int | None
    commission_amount: int | None
    sweep_id: str | None
    network_fee: int | None
    settlement_note: str | None

    @classmethod
    def from_row(cls, row: Any) -> Payment:
        """From a row of ``coinpay_payments`` (any object with its columns as attributes)."""
        return cls(**{name: getattr(row, name) for name in _FIELDS})

    @property
    def custodial(self) -> bool:
        """Funds arrive at an address we hold the key of, and are forwarded."""
        return self.custody == "system"

    def state(self) -> lifecycle.State:
        return lifecycle.State(
            status=Status(self.status),
            expected=self.crypto_amount,
            received=self.received_amount,
            confirmations=self.confirmations,
            paid_partial=self.paid_partial,
            paid_over=self.paid_over,
            paid_late=self.paid_late,
            tx_hash=self.tx_hash,
        )

    def policy(self) -> lifecycle.Policy:
        return lifecycle.Policy(
            required_confirmations=self.required_confirmations,
            tolerance_percent=self.tolerance_percent,
            expires_at=self.expires_at,
            monitor_until=self.monitor_until,
            custodial=self.custodial,
        )


_FIELDS = tuple(Payment.__dataclass_fields__)
