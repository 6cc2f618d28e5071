"""Per-payment address indexes: one counter per derivation family, never a duplicate.

The original kept one counter row per chain and bumped it with compare-and-swap, so every
payment creator of a chain serialised on that row (and retried when it lost). Here:

* PostgreSQL: one ``SEQUENCE`` per family. ``nextval`` never blocks on another transaction
  and never returns a value twice; a rolled-back payment leaves a gap, which costs nothing
  (see docs/decisions/0002-hd-index-allocation.md on gap limits).
* SQLite: one upsert on the family's row inside the payment's own transaction. SQLite has a
  single writer anyway, so this adds no contention beyond what the engine already imposes.

A UTXO family on a test network (``KEEL_COINPAY_<CHAIN>_NETWORK``) counts apart from its
mainnet (``system_family_key``): its keys lie on another path (coin type 1), so sharing the
counter would only leave holes in both.

The ``UNIQUE`` on ``coinpay_payments.payment_address`` backs both up.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Gauge
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keel.coinpay import models, wallets
from keel.coinpay.errors import IndexExhausted
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.addresses")

HD_INDEX = Gauge("coinpay_hd_index", "Last HD index handed out per derivation family", ["family"])
HD_INDEX_HEADROOM = Gauge(
    "coinpay_hd_index_headroom_ratio",
    "Share of the family's index space still unused (alert when low)",
    ["family"],
)
_WARN_RATIO = 0.9


def system_family_key(
    family: wallets.Family, network: wallets.Network = wallets.Network.MAINNET
) -> str:
    """The index counter of the installation's own addresses of ``family`` on ``network``:
    ``system:LTC`` on mainnet (as before networks existed), ``system:LTC:regtest`` on a test
    network, so a test network's indexes never advance or reuse mainnet's."""
    if network is wallets.Network.MAINNET:
        return f"system:{family.value}"
    return f"system:{family.value}:{wallets.Network(network).value}"


def watch_only_family_key(business_id: str, family: wallets.Family) -> str:
    return f"xpub:{business_id}:{family.value}"


class IndexAllocator(Protocol):
    async def allocate(self, session: AsyncSession, family_key: str) -> int:
        """The next unused index of ``family_key``, inside the caller's transaction."""
        ...


def _metric_label(family_key: str) -> str:
    # Watch-only families are per business: label by family only to bound cardinality.
    return family_key if family_key.startswith("system:") else "xpub:" + family_key.split(":")[-1]


def _check(family_key: str, index: int) -> int:
    if index > wallets.MAX_INDEX:
        raise IndexExhausted(
            f"Derivation family {family_key} has used all {wallets.MAX_INDEX} indexes"
        )
    label = _metric_label(family_key)
    HD_INDEX.labels(label).set(index)
    headroom = 1 - index / wallets.MAX_INDEX
    HD_INDEX_HEADROOM.labels(label).set(headroom)
    if headroom < 1 - _WARN_RATIO:
        log.warning("hd_index_space_low", family=family_key, index=index)
    return index


class SequenceAllocator:
    """PostgreSQL sequences per family; an upsert counter on SQLite."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._known: set[str] = set()
        # Creating a sequence takes a second pooled connection while the caller holds one;
        # one creator at a time keeps a burst of first creates from exhausting the pool.
        self._creating = asyncio.Lock()

    async def prepare(self, family_keys: Iterable[str]) -> None:
        """Create the sequences of the given families now (at startup, before traffic)."""
        if self._engine.dialect.name != "postgresql":
            return
        for family_key in family_keys:
            await self._ensure_sequence(family_key, sequence_name(family_key))
            self._known.add(family_key)

    async def allocate(self, session: AsyncSession, family_key: str) -> int:
        if session.get_bind().dialect.name != "postgresql":
            return _check(family_key, await _upsert_counter(session, family_key))
        name = sequence_name(family_key)
        if family_key not in self._known:
            async with self._creating:
                if family_key not in self._known:
                    await self._ensure_sequence(family_key, name)
                    self._known.add(family_key)
        value = (await session.execute(text(f"SELECT nextval('{_identifier(name)}')"))).scalar_one()
        return _check(family_key, int(value))

    async def _ensure_sequence(self, family_key: str, name: str) -> None:
        # Committed on its own connection: the sequence must outlive a rolled-back payment.
        for attempt in range(3):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        text(
                            f"CREATE SEQUENCE IF NOT EXISTS {_identifier(name)} MINVALUE 0 START 0"
                        )
                    )
                    await conn.execute(
                        pg_insert(models.hd_families)
                        .values(family_key=family_key, next_index=0, sequence_name=name)
                        .on_conflict_do_nothing()
                    )
                return
            except DBAPIError:
                # Two processes creating the same sequence at once: one wins, retry sees it.
                if attempt == 2:
                    raise


def sequence_name(family_key: str) -> str:
    """A SQL-safe identifier: a fixed prefix and hex digits only, whatever the key holds."""
    return "coinpay_hd_" + hashlib.sha256(family_key.encode()).hexdigest()[:24]


_SEQUENCE = re.compile(r"^coinpay_hd_[0-9a-f]{24}$")


def _identifier(name: str) -> str:
    # Sequence names cannot be bound parameters; only our own hex names ever reach SQL.
    if not _SEQUENCE.match(name):
        raise ValueError(f"unexpected sequence name {name!r}")
    return name


async def _upsert_counter(session: AsyncSession, family_key: str) -> int:
    table = models.hd_families
    stmt = (
        sqlite_insert(table)
        .values(family_key=family_key, next_index=1)
        .on_conflict_do_update(
            index_elements=["family_key"], set_={"next_index": table.c.next_index + 1}
        )
        .returning(table.c.next_index)
    )
    return int((await session.execute(stmt)).scalar_one()) - 1


async def current_indexes(session: AsyncSession) -> dict[str, int]:
    """Next index per family (for metrics and the CLI)."""
    rows = (await session.execute(select(models.hd_families))).all()
    result: dict[str, int] = {}
    for row in rows:
        if row.sequence_name:
            seq = await session.execute(
                text(f"SELECT last_value, is_called FROM {_identifier(row.sequence_name)}")  # noqa: S608
            )
            last_value, is_called = seq.one()
            result[row.family_key] = int(last_value) + 1 if is_called else int(last_value)
        else:
            result[row.family_key] = int(row.next_index)
    return result
