"""coach's background loops beside the bot: payments whose webhook never came."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from keel.coach.billing.coinpay import OutcomeKind
from keel.coach.billing.reconcile import reconcile
from keel.coach.bootstrap import Wired
from keel.core.logging import get_logger

log = get_logger("keel.coach")

RECONCILE_EVERY_SECONDS: Final = 300.0


async def reconcile_payments(
    wired: Wired, stop: asyncio.Event, *, every: float = RECONCILE_EVERY_SECONDS
) -> None:
    """Ask coinpay about old open invoices until ``stop``; tell users what unlocked."""
    if wired.coinpay is None:
        return
    while not stop.is_set():
        try:
            for outcome in await reconcile(wired.sessions, wired.coinpay, now=wired.clock.now()):
                if outcome.kind is OutcomeKind.UNLOCKED:
                    await wired.notify(outcome)
        except Exception:  # a bad pass must not end the loop; the next one retries
            log.exception("coach_reconcile_pass_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
