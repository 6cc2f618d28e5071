"""Reading a real chain block by block, once, and keeping what concerns our payments.

The original polled every watched address's balance every 15 seconds, so its cost grew with the
number of open payments and it could not tell a confirmation from a reorg. Here a
:class:`Scanner` per chain asks its :class:`ChainSource` for each new block once, looks up the
block's recipients among live payment addresses with one indexed query, and stores the matches
with the block they are in. The block hashes it scanned are kept for a while, so when a new
block's parent is not the block it scanned at that height, it walks back to the common ancestor
and marks the transfers of the dropped blocks ``orphaned`` (a transfer mined again later, or
seen in the mempool again, loses the mark). Each block is stored in one transaction with the
cursor, so a restart resumes after the last block stored, never skipping or counting twice.

:class:`ObservedChain` answers a payment's question (what arrived at my address, how deep)
from those rows: confirmations are counted against the scanner's cursor.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import Counter, Gauge
from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keel.coinpay import models, tags
from keel.coinpay.assets import COINS, get_coin
from keel.coinpay.chains.base import Block, BlockRef, ChainSource, Transfer
from keel.coinpay.lifecycle import Deposit
from keel.core.clock import Clock
from keel.core.errors import Unavailable
from keel.core.logging import get_logger

log = get_logger("keel.coinpay.scanner")

SCAN_LAG = Gauge("coinpay_chain_scan_lag_blocks", "Blocks between the tip and the scan", ["chain"])
SCAN_HEIGHT = Gauge("coinpay_chain_scan_height", "Height of the last block scanned", ["chain"])
BLOCKS_SCANNED = Counter("coinpay_chain_blocks_scanned_total", "Blocks scanned", ["chain"])
TRANSFERS_MATCHED = Counter(
    "coinpay_chain_transfers_matched_total", "Transfers to payment addresses", ["chain", "where"]
)
REORGS = Counter("coinpay_chain_reorgs_total", "Blocks dropped by reorgs", ["chain"])
UNTAGGED = Counter(
    "coinpay_chain_untagged_transfers_total",
    "Transfers to a receiving account (XRP) with no destination tag, or one no payment has: "
    "credited to nothing, kept in coinpay_chain_transfers for an operator to refund",
    ["chain"],
)
UNSWEPT = Counter(
    "coinpay_chain_unswept_transfers_total",
    "Transfers to a payment address that its sweep cannot move (a Solana token account other "
    "than the address's associated one): credited to nothing, logged for an operator",
    ["chain", "reason"],
)

# Block hashes kept per chain to find a reorg's common ancestor; deeper reorgs need an operator.
KEEP_BLOCKS = 200
# Addresses per IN (...) lookup: well under SQLite's and PostgreSQL's parameter limits.
_LOOKUP_CHUNK = 500


class ReorgTooDeep(Unavailable):
    """The chain replaced more blocks than the scanner keeps: scanning stops for an operator."""

    code = "reorg_too_deep"


@dataclass(frozen=True, slots=True)
class SetAside:
    """A transfer to ``transfer.address`` that a sweep of that address cannot move, so it
    credits no payment: ``reason`` (a metric label) and ``held_at``, the account holding the
    money (a Solana token account that is not the owner's associated one)."""

    transfer: Transfer
    reason: str
    held_at: str


@runtime_checkable
class SetsAside(Protocol):
    """A source whose blocks hold transfers it leaves out of ``Block.transfers`` because the
    sweep could not move them (Solana). The scanner logs and counts those paying a payment."""

    def set_aside(self, ref: BlockRef) -> Sequence[SetAside]:
        """The transfers left out of the block ``ref`` that :meth:`ChainSource.block` last
        returned; each block's are answered once."""
        ...


@dataclass(frozen=True, slots=True)
class ScanReport:
    """What one :meth:`Scanner.step` did: the blocks stored, the blocks a reorg dropped, and
    the payments whose transfers changed, by :func:`watch_key` (their payments need a fresh
    look)."""

    chain: str
    scanned: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    touched: frozenset[str] = field(default_factory=frozenset)
    tip: int | None = None
    height: int | None = None


class Scanner:
    """Follows one chain through ``source``; :meth:`step` is called by the chain's watcher."""

    def __init__(
        self,
        source: ChainSource,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        max_blocks_per_step: int = 100,
    ) -> None:
        self.source = source
        self.chain = source.chain
        self._sessions = sessions
        self._clock = clock
        self._max_blocks = max_blocks_per_step
        self._aside = source if isinstance(source, SetsAside) else None
        self.last_error: str | None = None
        self.last_report: ScanReport | None = None

    async def step(self) -> ScanReport:
        """Scan the blocks that appeared since the last step (up to ``max_blocks_per_step``),
        following a reorg back first if there was one, then look at the mempool. The outcome
        (a report, or the error) is kept for :meth:`health`."""
        try:
            report = await self._step()
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            raise
        self.last_error, self.last_report = None, report
        return report

    async def health(self) -> dict[str, Any]:
        """How the chain is followed: the stored cursor and its age (from the database, so any
        process can answer), the lag and the last error this process saw."""
        t = models.chain_cursors
        async with self._sessions() as session:
            row = (await session.execute(select(t).where(t.c.chain == self.chain))).one_or_none()
        if row is None:
            return {"status": "not started", "error": self.last_error}
        age = (self._clock.now() - row.updated_at).total_seconds()
        lag = None
        if self.last_report is not None and self.last_report.tip is not None:
            lag = self.last_report.tip - row.height
        status = "failing" if self.last_error else ("lagging" if lag and lag > 10 else "ok")
        return {
            "status": status,
            "height": row.height,
            "lag_blocks": lag,
            "cursor_age_seconds": round(age, 1),
            "error": self.last_error,
        }

    async def _step(self) -> ScanReport:
        # The mempool first: a transfer missing from it was mined at or below the tip read
        # next, or dropped; either way the blocks up to that tip tell which.
        mempool = await self.source.pending()
        tip = await self.source.tip()
        cursor = await self._cursor()
        if cursor is None:
            # A chain configured now starts at its tip: payments created from now on live there.
            cursor = BlockRef(tip.height - 1, tip.parent_hash, "")
        scanned: list[int] = []
        dropped: list[int] = []
        touched: set[str] = set()
        if tip.height <= cursor.height and tip.hash != cursor.hash:
            # The chain we followed was replaced by one no longer than it (or shorter).
            cursor, lost, orphaned = await self._rewind(cursor, tip)
            dropped.extend(lost)
            touched |= orphaned
        while cursor.height < tip.height and len(scanned) < self._max_blocks:
            block = await self.source.block(cursor.height + 1)
            if block.ref.parent_hash != cursor.hash:
                cursor, lost, orphaned = await self._rewind(cursor, tip)
                dropped.extend(lost)
                touched |= orphaned
                continue
            touched |= await self._store(block)
            scanned.append(block.ref.height)
            cursor = block.ref
        touched |= await self._store_pending(mempool.transfers)
        if mempool.complete and cursor.height == tip.height:
            touched |= await self._drop_vanished(mempool.transfers)
        BLOCKS_SCANNED.labels(self.chain).inc(len(scanned))
        SCAN_HEIGHT.labels(self.chain).set(cursor.height)
        SCAN_LAG.labels(self.chain).set(max(0, tip.height - cursor.height))
        if dropped:
            REORGS.labels(self.chain).inc(len(dropped))
            log.warning("chain_reorg", chain=self.chain, dropped=dropped)
        return ScanReport(
            self.chain,
            tuple(scanned),
            tuple(dropped),
            frozenset(touched),
            tip.height,
            cursor.height,
        )

    async def _cursor(self) -> BlockRef | None:
        t = models.chain_cursors
        async with self._sessions() as session:
            row = (await session.execute(select(t).where(t.c.chain == self.chain))).one_or_none()
        return None if row is None else BlockRef(row.height, row.hash, "")

    async def _store(self, block: Block) -> set[str]:
        """One block, its matching transfers and the cursor, in one transaction."""
        ref = block.ref
        aside = {(a.transfer.tx_hash, a.transfer.position): a for a in self._set_aside(ref)}
        async with self._sessions() as session, session.begin():
            matched = await _ours(session, block.transfers)
            unclaimed = await _unclaimed(session, block.transfers, matched)
            unswept = await _ours(session, (a.transfer for a in aside.values()))
            for transfer in (*matched, *unclaimed):
                await _upsert(session, self.chain, transfer, ref, self._clock)
            await session.execute(
                models.chain_blocks.insert().values(
                    chain=self.chain, height=ref.height, hash=ref.hash, parent_hash=ref.parent_hash
                )
            )
            await session.execute(
                delete(models.chain_blocks).where(
                    models.chain_blocks.c.chain == self.chain,
                    models.chain_blocks.c.height <= ref.height - KEEP_BLOCKS,
                )
            )
            await self._move_cursor(session, ref)
        TRANSFERS_MATCHED.labels(self.chain, "block").inc(len(matched))
        for transfer in unclaimed:
            UNTAGGED.labels(self.chain).inc()
            log.warning(
                "chain_transfer_untagged",
                chain=self.chain,
                tx_hash=transfer.tx_hash,
                address=transfer.address,
                destination_tag=transfer.memo,
                amount=transfer.amount,
                height=ref.height,
            )
        for transfer in unswept:
            why = aside[(transfer.tx_hash, transfer.position)]
            UNSWEPT.labels(self.chain, why.reason).inc()
            log.warning(
                "chain_transfer_unswept",
                chain=self.chain,
                reason=why.reason,
                tx_hash=transfer.tx_hash,
                address=transfer.address,
                held_at=why.held_at,
                coin=transfer.coin,
                amount=transfer.amount,
                height=ref.height,
            )
        return {watch_key(t.address, t.memo) for t in matched}

    def _set_aside(self, ref: BlockRef) -> Sequence[SetAside]:
        return () if self._aside is None else self._aside.set_aside(ref)

    async def _store_pending(self, transfers: Sequence[Transfer]) -> set[str]:
        if not transfers:
            return set()
        async with self._sessions() as session, session.begin():
            matched = await _ours(session, transfers)
            changed = [
                t for t in matched if await _upsert(session, self.chain, t, None, self._clock)
            ]
        TRANSFERS_MATCHED.labels(self.chain, "mempool").inc(len(changed))
        return {watch_key(t.address, t.memo) for t in changed}

    async def _drop_vanished(self, mempool: Sequence[Transfer]) -> set[str]:
        """Transfers last seen in the mempool that are neither there nor in any block scanned up
        to the tip: dropped (replaced, expired, or reverted with their block). Orphaned."""
        t = models.chain_transfers
        waiting = and_(t.c.chain == self.chain, t.c.block_hash.is_(None), t.c.orphaned.is_(False))
        present = {(m.tx_hash, m.position) for m in mempool}
        async with self._sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.id, t.c.tx_hash, t.c.position, t.c.address, t.c.memo).where(waiting)
                )
            ).all()
            gone = [r for r in rows if (r.tx_hash, r.position) not in present]
            if gone:
                await session.execute(
                    update(t).where(t.c.id.in_([r.id for r in gone])).values(orphaned=True)
                )
        return {watch_key(r.address, r.memo) for r in gone}

    async def _move_cursor(self, session: AsyncSession, ref: BlockRef) -> None:
        t = models.chain_cursors
        now = self._clock.now()
        moved = await session.execute(
            update(t)
            .where(t.c.chain == self.chain)
            .values(height=ref.height, hash=ref.hash, updated_at=now)
        )
        if not getattr(moved, "rowcount", 0):
            await session.execute(
                t.insert().values(
                    chain=self.chain, height=ref.height, hash=ref.hash, updated_at=now
                )
            )

    async def _rewind(
        self, cursor: BlockRef, tip: BlockRef
    ) -> tuple[BlockRef, list[int], set[str]]:
        """Walk back from ``cursor`` to the last block the source still has; every block above
        it is forgotten and its transfers orphaned. Returns the new cursor, the heights dropped
        and the addresses whose transfers were orphaned."""
        b = models.chain_blocks
        dropped: list[int] = []
        orphaned: set[str] = set()
        height = cursor.height
        while True:
            async with self._sessions() as session:
                stored = (
                    await session.execute(
                        select(b).where(b.c.chain == self.chain, b.c.height == height)
                    )
                ).one_or_none()
            if stored is None or len(dropped) >= KEEP_BLOCKS:
                raise ReorgTooDeep(
                    f"{self.chain}: the chain replaced blocks below height {height + 1}, past "
                    f"the {KEEP_BLOCKS} block hashes kept; an operator must rescan"
                )
            current = tip if height == tip.height else None
            if height < tip.height:
                current = (await self.source.block(height)).ref
            if current is not None and current.hash == stored.hash:
                return BlockRef(stored.height, stored.hash, stored.parent_hash), dropped, orphaned
            async with self._sessions() as session, session.begin():
                orphaned |= await _orphan(session, self.chain, stored.height, stored.hash)
                await session.execute(
                    delete(b).where(b.c.chain == self.chain, b.c.height == stored.height)
                )
                previous = BlockRef(stored.height - 1, stored.parent_hash, "")
                await self._move_cursor(session, previous)
            dropped.append(height)
            height -= 1


_TAG_SEPARATOR = "?dt="


def watch_key(address: str, memo: str | None) -> str:
    """How a transfer names the payment it may pay: its address, and where it carries a memo (an
    XRP destination tag) ``<address>?dt=<memo>`` (XLS-2's notation). Untagged keys are bare
    addresses, as before tags existed."""
    return address if memo is None else f"{address}{_TAG_SEPARATOR}{memo}"


def _split(key: str) -> tuple[str, int | None]:
    address, _, memo = key.partition(_TAG_SEPARATOR)
    tag = int(memo) if memo.isdigit() and len(memo) <= 10 else None
    return address, tag if tag is not None and tag <= tags.MAX_TAG else None


@dataclass(frozen=True, slots=True)
class MinedTransfer:
    """A stored transfer in a block of the followed chain: what a sweep may spend."""

    address: str
    tx_hash: str
    position: int
    amount: int


async def mined_transfers(
    sessions: async_sessionmaker[AsyncSession], chain: str, addresses: Iterable[str]
) -> list[MinedTransfer]:
    """The transfers the scanner stored to ``addresses`` on ``chain`` that are in a block and
    not orphaned by a reorg, oldest first (a UTXO sweep checks each is still unspent)."""
    t = models.chain_transfers
    async with sessions() as session:
        rows = (
            await session.execute(
                select(t.c.address, t.c.tx_hash, t.c.position, t.c.amount)
                .where(
                    t.c.chain == chain,
                    t.c.address.in_(sorted(set(addresses))),
                    t.c.block_hash.is_not(None),
                    t.c.orphaned.is_(False),
                )
                .order_by(t.c.id)
            )
        ).all()
    return [MinedTransfer(r.address, r.tx_hash, int(r.position), int(r.amount)) for r in rows]


async def live_payments_at(
    session: AsyncSession, keys: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """The live payments waiting at ``keys`` (:func:`watch_key`): key -> (payment id, coin).

    A tagged key names the payment with that destination tag at that address; failing that, the
    untagged payment at the address (a chain whose transfers carry a memo that is no tag). A
    tagged chain's account has no untagged payment, so a transfer to it without a tag, or with
    a tag nobody was given, finds none. One indexed lookup per chunk of keys, whatever the
    number of open payments."""
    wanted = sorted(set(keys))
    p = models.payments
    split = {key: _split(key) for key in wanted}
    addresses = sorted({address for address, _ in split.values()})
    pairs = sorted({pair for pair in split.values() if pair[1] is not None})
    untagged: dict[str, tuple[str, str]] = {}
    for start in range(0, len(addresses), _LOOKUP_CHUNK):
        rows = await session.execute(
            select(p.c.payment_address, p.c.id, p.c.blockchain).where(
                p.c.payment_address.in_(addresses[start : start + _LOOKUP_CHUNK]),
                p.c.mode == "live",
                p.c.destination_tag.is_(None),
            )
        )
        untagged.update({address: (payment_id, coin) for address, payment_id, coin in rows.all()})
    by_tag: dict[tuple[str, int], tuple[str, str]] = {}
    for start in range(0, len(pairs), _LOOKUP_CHUNK):
        chunk = pairs[start : start + _LOOKUP_CHUNK]
        tagged = await session.execute(
            select(p.c.payment_address, p.c.destination_tag, p.c.id, p.c.blockchain).where(
                p.c.payment_address.in_({address for address, _ in chunk}),
                p.c.destination_tag.in_({tag for _, tag in chunk}),
                p.c.mode == "live",
            )
        )
        for address, tag, payment_id, coin in tagged.all():
            by_tag[(address, int(tag))] = (payment_id, coin)
    found: dict[str, tuple[str, str]] = {}
    for key, (address, tag) in split.items():
        match = by_tag.get((address, tag)) if tag is not None else None
        match = match or untagged.get(address)
        if match is not None:
            found[key] = match
    return found


async def _ours(session: AsyncSession, transfers: Iterable[Transfer]) -> list[Transfer]:
    """The transfers paying a live payment (by address, and destination tag where the chain has
    them) in that payment's coin."""
    transfers = list(transfers)
    payments = await live_payments_at(session, (watch_key(t.address, t.memo) for t in transfers))
    ours = []
    for transfer in transfers:
        found = payments.get(watch_key(transfer.address, transfer.memo))
        if found is not None and found[1] == transfer.coin:
            ours.append(transfer)
    return ours


async def _unclaimed(
    session: AsyncSession, transfers: Iterable[Transfer], matched: Sequence[Transfer]
) -> list[Transfer]:
    """Transfers of a tagged chain (XRP) to one of our live receiving accounts that paid no
    payment: no destination tag, or one nobody was given. Its money is at our account and
    belongs to a customer who must get it back, so it is kept and counted, never credited."""
    paid = {(t.tx_hash, t.position) for t in matched}
    candidates = [
        t
        for t in transfers
        if (t.tx_hash, t.position) not in paid
        and t.coin in COINS
        and COINS[t.coin].family in tags.TAGGED_FAMILIES
    ]
    if not candidates:
        return []
    a = models.receiving_accounts
    accounts = set(
        (
            await session.execute(
                select(a.c.address).where(
                    a.c.address.in_({t.address for t in candidates}), a.c.mode == "live"
                )
            )
        ).scalars()
    )
    return [t for t in candidates if t.address in accounts]


async def _upsert(
    session: AsyncSession, chain: str, transfer: Transfer, block: BlockRef | None, clock: Clock
) -> bool:
    """Record ``transfer`` as in ``block`` (None: in the mempool). A transfer already in a block
    is not moved back to the mempool by a mempool sighting. Returns whether anything changed."""
    t = models.chain_transfers
    existing = (
        await session.execute(
            select(t.c.id, t.c.block_hash, t.c.orphaned).where(
                t.c.chain == chain,
                t.c.tx_hash == transfer.tx_hash,
                t.c.position == transfer.position,
            )
        )
    ).one_or_none()
    where = {
        "block_height": block.height if block else None,
        "block_hash": block.hash if block else None,
        "orphaned": False,
    }
    if existing is None:
        await session.execute(
            t.insert().values(
                chain=chain,
                coin=transfer.coin,
                tx_hash=transfer.tx_hash,
                position=transfer.position,
                address=transfer.address,
                amount=transfer.amount,
                memo=transfer.memo,
                first_seen_at=clock.now(),
                **where,
            )
        )
        return True
    if block is None and (existing.block_hash is not None or not existing.orphaned):
        return False  # mined already, or already known in the mempool
    if block is not None and existing.block_hash == block.hash:
        return False
    await session.execute(update(t).where(t.c.id == existing.id).values(**where))
    return True


async def _orphan(session: AsyncSession, chain: str, height: int, block_hash: str) -> set[str]:
    t = models.chain_transfers
    in_block = and_(t.c.chain == chain, t.c.block_height == height, t.c.block_hash == block_hash)
    rows = (await session.execute(select(t.c.address, t.c.memo).where(in_block))).all()
    addresses = {watch_key(address, memo) for address, memo in rows}
    await session.execute(
        update(t).where(in_block).values(block_height=None, block_hash=None, orphaned=True)
    )
    return addresses


class ObservedChain:
    """The :class:`~keel.coinpay.chains.base.ChainWatcher` of a scanned chain: a payment's
    deposits as the scanner stored them, confirmations counted against its cursor."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def deposits_to(self, chain: str, address: str, memo: str | None = None) -> list[Deposit]:
        coin = get_coin(chain)
        t, c = models.chain_transfers, models.chain_cursors
        query = select(t).where(t.c.address == address, t.c.coin == coin.symbol)
        if memo is not None:
            query = query.where(t.c.memo == memo)
        async with self._sessions() as session:
            height = await session.scalar(select(c.c.height).where(c.c.chain == coin.chain))
            rows = (await session.execute(query.order_by(t.c.id))).all()
        return _deposits(rows, height)


def _deposits(rows: Sequence[Any], height: int | None) -> list[Deposit]:
    """One deposit per transaction (outputs of one transaction to one address add up)."""
    by_tx: dict[str, list[Any]] = {}
    for row in rows:
        by_tx.setdefault(row.tx_hash, []).append(row)
    deposits = []
    for tx_hash, outputs in by_tx.items():
        first = outputs[0]
        block: int | None = first.block_height
        depth = max(0, height - block + 1) if block is not None and height is not None else 0
        deposits.append(
            Deposit(
                tx_hash,
                sum(int(o.amount) for o in outputs),
                depth,
                reverted=block is None and bool(first.orphaned),
            )
        )
    return deposits
