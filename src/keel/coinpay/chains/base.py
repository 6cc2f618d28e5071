"""The seam every chain integration implements."""

from __future__ import annotations

from typing import Protocol

from keel.coinpay.lifecycle import Deposit


class ChainWatcher(Protocol):
    """Reports transfers to addresses on one network."""

    async def deposits_to(self, chain: str, address: str) -> list[Deposit]:
        """Every transfer to ``address`` on ``chain`` as the network sees it now (amounts in
        base units, current confirmations, reverted ones flagged), oldest first. A provider
        outage raises ``keel.core.errors.Unavailable``; "not seen yet" is an empty list."""
        ...
