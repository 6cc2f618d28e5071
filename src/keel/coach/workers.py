"""coach's background loops beside the bot: payments whose webhook never came."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final

from keel.coach.billing.coinpay import OutcomeKind
from keel.coach.billing.reconcile import reconcile
from keel.coach.bootstrap import Wired
from keel.core.jobs import Periodic, run_periodic

RECONCILE_EVERY: Final = timedelta(minutes=5)


async def reconcile_payments(
    wired: Wired, stop: asyncio.Event, *, every: timedelta = RECONCILE_EVERY
) -> None:
    """Ask coinpay about old open invoices until ``stop``; tell users what unlocked."""
    coinpay = wired.coinpay
    if coinpay is None:
        return

    async def once() -> None:
        for outcome in await reconcile(wired.sessions, coinpay, now=wired.clock.now()):
            if outcome.kind is OutcomeKind.UNLOCKED:
                await wired.notify(outcome)

    await run_periodic(Periodic("coach-reconcile-payments", every, once), stop)
