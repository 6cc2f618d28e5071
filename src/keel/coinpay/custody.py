"""The installation's master seed: created or imported once, encrypted at rest under the
master key, decrypted into memory on first use. Per-payment private keys are never stored:
they are re-derived from the seed when a sweep needs one."""

from __future__ import annotations

import hashlib
import threading

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import models, wallets
from keel.coinpay.errors import SeedMissing
from keel.core.clock import Clock
from keel.core.crypto import SecretBox
from keel.core.errors import Conflict

_SEED_ROW = 1
_CONTEXT = "coinpay:master-seed"


def fingerprint(root: wallets.HDRoot) -> str:
    """A public identifier of a seed: a hash of its first BTC address (no secret involved)."""
    return hashlib.sha256(root.address(wallets.Family.BTC, 0).encode()).hexdigest()[:16]


class Custody:
    """Loads the seed once per process and hands out the derivation root."""

    def __init__(self, box: SecretBox, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._box = box
        self._sessions = sessions
        self._root: wallets.HDRoot | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "Custody(<sealed>)"

    async def init_seed(self, clock: Clock, mnemonic: str | None = None) -> tuple[str, bool]:
        """Store a seed (generated when ``mnemonic`` is None). Returns (fingerprint, created).

        Initialising again with the same mnemonic is a no-op; with another one it is refused,
        since addresses already handed out would no longer be ours.
        """
        phrase = mnemonic if mnemonic is not None else wallets.generate_mnemonic(24)
        root = wallets.HDRoot.from_mnemonic(phrase)
        print_ = fingerprint(root)
        async with self._sessions() as session, session.begin():
            row = (
                await session.execute(select(models.master_seed.c.fingerprint))
            ).scalar_one_or_none()
            if row is not None:
                if mnemonic is not None and row == print_:
                    return print_, False
                if mnemonic is None:
                    return row, False
                raise Conflict(
                    f"A different master seed (fingerprint {row}) is already installed; "
                    "refusing to replace it."
                )
            normalised = " ".join(phrase.lower().split())
            await session.execute(
                models.master_seed.insert().values(
                    id=_SEED_ROW,
                    mnemonic_enc=self._box.encrypt(normalised.encode(), context=_CONTEXT),
                    kek_id=self._box.kek_id,
                    fingerprint=print_,
                    created_at=clock.now(),
                )
            )
        self._root = root
        return print_, True

    async def root_if_initialised(self) -> wallets.HDRoot | None:
        """The derivation root, or None before ``keel coinpay init``."""
        try:
            return await self.root()
        except SeedMissing:
            return None

    async def root(self) -> wallets.HDRoot:
        """The derivation root; raises SeedMissing before ``keel coinpay init``."""
        if self._root is not None:
            return self._root
        async with self._sessions() as session:
            blob = await _load(session)
        if blob is None:
            raise SeedMissing()
        phrase = self._box.decrypt(blob, context=_CONTEXT).decode()
        with self._lock:
            if self._root is None:
                self._root = wallets.HDRoot.from_mnemonic(phrase)
        return self._root


async def _load(session: AsyncSession) -> bytes | None:
    result = await session.execute(select(models.master_seed.c.mnemonic_enc))
    blob = result.scalar_one_or_none()
    return bytes(blob) if blob is not None else None
