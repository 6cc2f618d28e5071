"""Settlement: moving confirmed custodial funds to the merchant's payout wallet.

Real sweeps (with the commission split) come with the real chain integrations; the seam and
the simulated implementation exist now so the state machine runs end to end in test mode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class SweepStatus(StrEnum):
    SENT = "sent"
    PENDING = "pending"  # outcome unknown yet (timeout, mempool): ask again later
    FAILED = "failed"


@dataclass(frozen=True)
class SweepResult:
    status: SweepStatus
    tx_hash: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class SweepOrder:
    payment_id: str
    chain: str
    coin: str
    from_address: str
    derivation_index: int
    to_address: str
    amount: int  # base units received


class Settlement(Protocol):
    async def sweep(self, order: SweepOrder) -> SweepResult:
        """Send ``order.amount`` (less fees) from the payment address to the merchant.
        Idempotent per payment: asking twice never sends twice."""
        ...


class SimulatedSettlement:
    """Test mode: every sweep succeeds at once with a deterministic fake hash."""

    async def sweep(self, order: SweepOrder) -> SweepResult:
        digest = hashlib.sha256(f"sweep:{order.payment_id}".encode()).hexdigest()
        return SweepResult(SweepStatus.SENT, tx_hash=f"sim_{digest[:56]}")


class UnconfiguredSettlement:
    """Live mode until real sweeps exist: leaves funds where they are, loudly."""

    async def sweep(self, order: SweepOrder) -> SweepResult:
        return SweepResult(SweepStatus.PENDING, error=f"no settlement backend for {order.chain}")
