"""The platform's commission on a forwarded payment: one function, in exact integers.

The original computed it twice (at address creation, then again at forwarding on the actual
balance minus a gas reserve) as JavaScript floats rounded to 8 places. Here it is computed once,
when forwarding starts, on the base units actually received, and stored on the payment before
anything is sent: the sweep only carries out a split that is already written down.
"""

from __future__ import annotations

from dataclasses import dataclass

# Basis points (1/100 of a percent) per business plan.
PLANS: dict[str, int] = {"free": 100, "paid": 50}  # 1 %, 0.5 %
DEFAULT_PLAN = "free"
_BPS = 10_000


@dataclass(frozen=True, slots=True)
class Split:
    """Where ``received`` base units go: ``commission`` to the platform, the rest (before the
    network's fee, which the sweep pays from the merchant's share) to the merchant."""

    received: int
    rate_bps: int
    commission: int

    @property
    def merchant(self) -> int:
        return self.received - self.commission


def split(received: int, plan: str) -> Split:
    """The split of ``received`` base units under ``plan``. The commission is rounded down to a
    whole base unit: the merchant never pays a fraction of a unit more than the rate."""
    if received < 0:
        raise ValueError("received must not be negative")
    try:
        rate = PLANS[plan]
    except KeyError:
        raise ValueError(f"unknown plan {plan!r}; known: {', '.join(sorted(PLANS))}") from None
    return Split(received, rate, received * rate // _BPS)
