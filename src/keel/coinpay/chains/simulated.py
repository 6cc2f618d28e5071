"""A chain that exists in coinpay's own database: test-mode customers "pay" into it through
``POST /payments/{id}/simulate`` and the same watcher path as a real chain reads it back."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import models
from keel.coinpay.lifecycle import Deposit
from keel.core.clock import Clock


class SimulatedChain:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def deposits_to(self, chain: str, address: str) -> list[Deposit]:
        t = models.simulated_transfers
        async with self._sessions() as session:
            rows = await session.execute(
                select(t).where(t.c.chain == chain, t.c.address == address).order_by(t.c.id)
            )
            return [Deposit(r.tx_hash, r.amount, r.confirmations, r.reverted) for r in rows.all()]

    async def record(
        self,
        session: AsyncSession,
        *,
        chain: str,
        address: str,
        tx_hash: str,
        amount: int,
        confirmations: int,
        reverted: bool,
    ) -> None:
        """Add a transfer, or update confirmations/reversal of one already sent."""
        t = models.simulated_transfers
        existing = (
            await session.execute(select(t.c.id, t.c.address).where(t.c.tx_hash == tx_hash))
        ).one_or_none()
        if existing is None:
            await session.execute(
                t.insert().values(
                    chain=chain,
                    address=address,
                    tx_hash=tx_hash,
                    amount=amount,
                    confirmations=confirmations,
                    reverted=reverted,
                    created_at=self._clock.now(),
                )
            )
        else:
            await session.execute(
                t.update()
                .where(t.c.id == existing.id)
                .values(confirmations=confirmations, reverted=reverted)
            )
