"""A chain that exists in coinpay's own database: test-mode customers "pay" into it through
``POST /payments/{id}/simulate`` and the same watcher path as a real chain reads it back."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import models
from keel.coinpay.chains.base import SignedSweep, SweepInput
from keel.coinpay.lifecycle import Deposit
from keel.core.clock import Clock


class SimulatedChain:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def deposits_to(self, chain: str, address: str, memo: str | None = None) -> list[Deposit]:
        t = models.simulated_transfers
        query = select(t).where(t.c.chain == chain, t.c.address == address)
        if memo is not None:
            query = query.where(t.c.memo == memo)
        async with self._sessions() as session:
            rows = await session.execute(query.order_by(t.c.id))
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
        memo: str | None = None,
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
                    memo=memo,
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


class SimulatedSender:
    """Test mode's sweeps: signed, sent and buried under a million blocks at once, one payment a
    sweep (so the forward job forwards it at once). The hash is derived from the payments it
    carries, so asking twice gives the same transaction."""

    batch_limit = 1

    def __init__(self, chain: str) -> None:
        self.chain = chain

    async def sign(self, inputs: tuple[SweepInput, ...], platform_address: str) -> SignedSweep:
        ids = ",".join(sorted(i.payment_id for i in inputs))
        digest = hashlib.sha256(f"sweep:{self.chain}:{ids}".encode()).hexdigest()
        return SignedSweep(
            f"sim_{digest[:56]}", f"simulated:{ids}", {i.payment_id: 0 for i in inputs}
        )

    async def broadcast(self, raw: str) -> None:
        """Nothing to send: the simulated chain has no other side."""

    async def confirmations(self, tx_hash: str) -> int | None:
        return 1_000_000
