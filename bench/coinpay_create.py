"""coinpay payment creation: our index allocator against the original's CAS counter row.

For each engine (SQLite file, fresh PostgreSQL database) and each allocator

* ``ours``     — ``keel.coinpay.addresses.SequenceAllocator`` (a SEQUENCE per family on
  PostgreSQL, an upsert counter inside the payment's transaction on SQLite);
* ``baseline`` — ``CasCounterAllocator`` below: the original's one counter row per chain,
  read then ``UPDATE … WHERE next_index = :n`` (compare-and-swap) in its own short transaction
  on its own connection, retried up to 10 times, an error after that;

and, on SQLite only,

* ``ours-old-sessions`` — ``ours`` again, on sessions as ``keel.core.db`` made them before
  reads were deferred and writers queued on an in-process lock: every transaction opens
  ``BEGIN IMMEDIATE`` and concurrent writers wait in SQLite's busy handler;

this runs ``--requests`` calls of the real service function ``keel.coinpay.payments.create``
(not HTTP) on one chain (ETH) at 1, 8 and 32 concurrent clients, and reports throughput,
p50/p99 latency, CAS retries and errors. Each contender gets its own database (all start at
index 0, so they would otherwise hand out each other's addresses); their cells are
interleaved so machine noise hits all alike. Compare ratios within one run only.

    .venv/bin/python bench/coinpay_create.py [--engines sqlite,postgresql] [--requests N]
        [--rounds R] [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
from sqlalchemy import BigInteger, Column, MetaData, String, Table, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from keel.coinpay import addresses, apikeys, audit, bootstrap, businesses, models, payments, wallets
from keel.coinpay.addresses import IndexAllocator
from keel.coinpay.apikeys import Principal
from keel.coinpay.assets import get_coin
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.core import db
from keel.core.clock import SystemClock
from keel.core.crypto import new_key

COIN = "ETH"
CONCURRENCY: tuple[int, ...] = (1, 8, 32)
ALLOCATORS: tuple[str, ...] = ("ours", "baseline")
OLD_SESSIONS = "ours-old-sessions"
LABELS = {"ours": "ours", "baseline": "baseline (CAS row)", OLD_SESSIONS: "ours, old sessions"}
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
# The well-known BIP39 test vector: a bench seed, never a real one.
SEED_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
PAYOUT_MNEMONIC = " ".join(["zoo"] * 11 + ["wrong"])
CAS_MAX_ATTEMPTS = 10

# ---------------------------------------------------------------------------------------------
# The baseline: the original's counter row with compare-and-swap.

cas_metadata = MetaData()
cas_counters = Table(
    "bench_cas_counters",
    cas_metadata,
    Column("family_key", String(80), primary_key=True),
    Column("next_index", BigInteger, nullable=False),
)


class CasExhausted(RuntimeError):
    """The original gave up after losing the compare-and-swap race this many times."""


class CasCounterAllocator:
    """One counter row per family, bumped with compare-and-swap (the original's way).

    Each attempt reads ``next_index`` and runs ``UPDATE … SET next_index = n + 1 WHERE
    family_key = :f AND next_index = n`` in its own short transaction on its own connection
    (from its own pool, sized like the gateway's), retrying at once when another creator won,
    at most ``CAS_MAX_ATTEMPTS`` times. The index is committed before the payment is, so a
    failed payment burns it (as in the original).

    SQLite exception: the payment's transaction already holds SQLite's single write lock
    (``BEGIN IMMEDIATE``) when it asks for an index, so a second connection could never take
    it (it would wait out the busy timeout, then fail). There the same read + CAS update runs
    inside the caller's transaction, where it cannot lose.
    """

    def __init__(self, engine: AsyncEngine, *, max_attempts: int = CAS_MAX_ATTEMPTS) -> None:
        self.engine = engine
        self._max_attempts = max_attempts
        self.attempts = 0
        self.retries = 0
        self.failures = 0

    async def setup(self, family_keys: Sequence[str]) -> None:
        """Create the counter table and one row per family (the original seeded them)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(cas_metadata.create_all)
            for key in family_keys:
                await conn.execute(cas_counters.insert().values(family_key=key, next_index=0))

    def reset_counts(self) -> None:
        self.attempts = self.retries = self.failures = 0

    async def allocate(self, session: AsyncSession, family_key: str) -> int:
        for attempt in range(self._max_attempts):
            self.attempts += 1
            if session.get_bind().dialect.name == "sqlite":
                won = await _compare_and_swap(session, family_key)
            else:
                async with self.engine.begin() as conn:
                    won = await _compare_and_swap(conn, family_key)
            if won is not None:
                if won > wallets.MAX_INDEX:
                    raise RuntimeError(f"{family_key}: index space exhausted")
                return won
            if attempt + 1 < self._max_attempts:
                self.retries += 1
        self.failures += 1
        raise CasExhausted(f"{family_key}: lost the counter race {self._max_attempts} times")


async def _compare_and_swap(conn: AsyncConnection | AsyncSession, family_key: str) -> int | None:
    """The index won, or None when another creator bumped the row first."""
    current = (
        await conn.execute(
            select(cas_counters.c.next_index).where(cas_counters.c.family_key == family_key)
        )
    ).scalar_one()
    result = await conn.execute(
        update(cas_counters)
        .where(cas_counters.c.family_key == family_key, cas_counters.c.next_index == current)
        .values(next_index=current + 1)
    )
    return int(current) if result.rowcount == 1 else None  # type: ignore[attr-defined]


def old_style_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """What ``keel.core.db.session_factory`` returned before deferred reads and the write
    lock: plain sessions on the engine itself, whose "begin" listener still opens every
    unmarked transaction with ``BEGIN IMMEDIATE``, and no in-process queue for writers."""
    return async_sessionmaker(engine, expire_on_commit=False)


def contenders(engine: str) -> tuple[str, ...]:
    return (*ALLOCATORS, OLD_SESSIONS) if engine == "sqlite" else ALLOCATORS


# ---------------------------------------------------------------------------------------------
# Fixture: a gateway with a seed, a business with an ETH payout wallet, and an API key.


@dataclass
class Subject:
    name: str
    gw: Gateway
    principal: Principal
    request: payments.NewPayment
    cas: CasCounterAllocator | None
    addresses: list[str] = field(default_factory=list)


async def open_subject(name: str, url: str, data_dir: str, master_key: str) -> Subject:
    settings = CoinpaySettings(database_url=url, master_key=master_key, run_workers=False)
    clock = SystemClock()
    cas: CasCounterAllocator | None = None
    allocator: IndexAllocator | None = None
    if name == "baseline":
        cas = CasCounterAllocator(db.create_engine(url))
        allocator = cas
    gw = await bootstrap.open_gateway(
        settings, data_dir=data_dir, clock=clock, allocator=allocator, migrate=True
    )
    if cas is not None:
        gw.closers.append(cas.engine.dispose)
        await cas.setup([addresses.system_family_key(get_coin(COIN).family)])
    if name == OLD_SESSIONS:
        # payments.create reaches the database only through gw.sessions (the allocator, the
        # outbox and the event log use the session it opens; the seed and rates are cached).
        gw.sessions = old_style_sessions(gw.engine)
    await gw.custody.init_seed(clock, SEED_MNEMONIC)
    payout = wallets.HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(get_coin(COIN).family, 7)
    async with gw.sessions() as session, session.begin():
        business_id = await businesses.create_business(session, clock, name="Bench shop")
        operator = audit.Actor.cli(gw.queue, clock)
        await businesses.set_wallet(
            session, operator, business_id=business_id, mode="test", coin=COIN, address=payout
        )
        _, token = await apikeys.create_key(
            session, gw.box, operator, business_id=business_id, mode="test"
        )
    principal = await apikeys.authenticate(gw.lookups, gw.box, token)
    request = payments.NewPayment(
        business_id=business_id,
        amount=Decimal("25.00"),
        currency="USD",
        blockchain=COIN,
        description="bench",
        metadata={"order": "bench"},
    )
    return Subject(name, gw, principal, request, cas)


# ---------------------------------------------------------------------------------------------
# Measurement.


@dataclass
class Cell:
    """Pooled results of one (allocator, concurrency) over all rounds."""

    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)  # successful creates
    failed_latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    cas_attempts: int = 0
    cas_retries: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def percentile(self, q: float, *, with_failed: bool = False) -> float:
        data = sorted(self.latencies + self.failed_latencies if with_failed else self.latencies)
        if not data:
            return float("nan")
        pos = (len(data) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)


async def run_cell(subject: Subject, requests: int, clients: int, cell: Cell | None) -> None:
    """``requests`` creates by ``clients`` workers pulling from one shared counter."""
    if subject.cas is not None:
        subject.cas.reset_counts()
    issued = 0
    latencies: list[float] = []
    failed_latencies: list[float] = []
    errors: Counter[str] = Counter()

    async def client() -> None:
        nonlocal issued
        while issued < requests:
            issued += 1
            start = time.perf_counter()
            try:
                row = await payments.create(subject.gw, subject.principal, subject.request)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                failed_latencies.append(time.perf_counter() - start)
                continue
            latencies.append(time.perf_counter() - start)
            subject.addresses.append(row.payment_address)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    if cell is None:  # warm-up
        return
    cell.wall += wall
    cell.latencies.extend(latencies)
    cell.failed_latencies.extend(failed_latencies)
    cell.errors.update(errors)
    if subject.cas is not None:
        cell.cas_attempts += subject.cas.attempts
        cell.cas_retries += subject.cas.retries


async def warm_up(subject: Subject) -> None:
    # One create alone first: it creates the family's SEQUENCE (ours on PostgreSQL), loads the
    # seed and the rate table. Then a burst at the highest concurrency opens pool connections.
    await run_cell(subject, 5, 1, None)
    await run_cell(subject, 2 * max(CONCURRENCY), max(CONCURRENCY), None)


async def verify(subject: Subject) -> tuple[int, int, int, int]:
    """(rows, distinct addresses, distinct indexes) in the database, and collected in-process
    duplicates."""
    t = models.payments
    async with subject.gw.sessions() as session:
        rows, distinct_addr, distinct_idx = (
            await session.execute(
                select(
                    func.count(),
                    func.count(t.c.payment_address.distinct()),
                    func.count(t.c.derivation_index.distinct()),
                )
            )
        ).one()
    duplicates = len(subject.addresses) - len(set(subject.addresses))
    return int(rows), int(distinct_addr), int(distinct_idx), duplicates


# ---------------------------------------------------------------------------------------------
# Engines.


@asynccontextmanager
async def scratch_databases(engine: str, pg_url: str, count: int) -> AsyncIterator[list[str]]:
    """``count`` empty databases of ``engine``; dropped (or deleted) afterwards."""
    if engine == "sqlite":
        with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
            yield [f"sqlite+aiosqlite:///{tmp}/coinpay-{i}.db" for i in range(count)]
        return
    parsed = make_url(pg_url)
    names = [f"keel_bench_{uuid.uuid4().hex[:10]}" for _ in range(count)]

    async def admin() -> asyncpg.Connection:
        return await asyncpg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            database=parsed.database or "postgres",
        )

    conn = await admin()
    try:
        for name in names:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield [
            parsed.set(database=n, drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            )
            for n in names
        ]
    finally:
        conn = await admin()
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def engine_version(gw: Gateway) -> str:
    if db.is_sqlite(gw.engine):
        return f"SQLite {sqlite3.sqlite_version}"
    async with gw.engine.connect() as conn:
        return "PostgreSQL " + str((await conn.execute(text("SHOW server_version"))).scalar_one())


@dataclass
class EngineResult:
    engine: str
    version: str
    cells: dict[tuple[str, int], Cell]
    checks: dict[str, tuple[int, int, int, int]]


async def bench_engine(
    engine: str, pg_url: str, requests: int, rounds: int, master_key: str
) -> EngineResult:
    names = contenders(engine)
    async with scratch_databases(engine, pg_url, len(names)) as urls:
        with tempfile.TemporaryDirectory(prefix="keel-bench-data-") as data_dir:
            subjects: dict[str, Subject] = {}
            try:
                for name, url in zip(names, urls, strict=True):
                    subjects[name] = await open_subject(name, url, data_dir, master_key)
                version = await engine_version(subjects["ours"].gw)
                for subject in subjects.values():
                    await warm_up(subject)
                subjects_addresses_reset(subjects)
                cells = {(a, c): Cell() for a in names for c in CONCURRENCY}
                for rnd in range(rounds):
                    for i, clients in enumerate(CONCURRENCY):
                        # Rotate who goes first, so no contender always follows the same one.
                        k = (rnd + i) % len(names)
                        order = names[k:] + names[:k]
                        for name in order:
                            await run_cell(
                                subjects[name], requests, clients, cells[(name, clients)]
                            )
                            print(
                                f"  {engine:<10} round {rnd + 1}/{rounds} {clients:>2} clients "
                                f"{name:<17} done",
                                file=sys.stderr,
                                flush=True,
                            )
                checks = {name: await verify(s) for name, s in subjects.items()}
            finally:
                for subject in subjects.values():
                    await bootstrap.close_gateway(subject.gw)
    return EngineResult(engine, version, cells, checks)


def subjects_addresses_reset(subjects: dict[str, Subject]) -> None:
    # Warm-up addresses stay in the database and are checked there; the in-process duplicate
    # check covers the measured creates.
    for subject in subjects.values():
        subject.addresses.clear()


# ---------------------------------------------------------------------------------------------
# Report.


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def _errors(cell: Cell) -> str:
    if not cell.errors:
        return "0"
    return ", ".join(f"{n} {name}" for name, n in sorted(cell.errors.items()))


def _ratio_row(clients: int, label: str, ours: Cell, other: Cell) -> str:
    thr = ours.throughput / other.throughput if other.throughput else float("inf")
    p50 = ours.percentile(0.5) / other.percentile(0.5)
    p99 = ours.percentile(0.99) / other.percentile(0.99)
    p99_all = ours.percentile(0.99, with_failed=True) / other.percentile(0.99, with_failed=True)
    return (
        f"| {clients} | **{label}** | **×{thr:.2f}** | ×{p50:.2f} | **×{p99:.2f}** "
        f"| ×{p99_all:.2f} | | |"
    )


def table(result: EngineResult) -> str:
    lines = [
        "| clients | contender | creates/s | p50 ms | p99 ms | p99 incl. failed ms "
        "| CAS retries | errors |",
        "|--:|:--|--:|--:|--:|--:|--:|:--|",
    ]
    names = sorted({name for name, _ in result.cells}, key=list(LABELS).index)
    for clients in CONCURRENCY:
        for name in names:
            cell = result.cells[(name, clients)]
            retries = f"{cell.cas_retries}" if name == "baseline" else "—"
            lines.append(
                f"| {clients} | {LABELS[name]} | {cell.throughput:.0f} "
                f"| {_ms(cell.percentile(0.5))} | {_ms(cell.percentile(0.99))} "
                f"| {_ms(cell.percentile(0.99, with_failed=True))} | {retries} | {_errors(cell)} |"
            )
        ours = result.cells[("ours", clients)]
        for name in names:
            if name != "ours":
                other = result.cells[(name, clients)]
                lines.append(_ratio_row(clients, f"ours / {LABELS[name]}", ours, other))
    return "\n".join(lines)


def summary(result: EngineResult) -> str:
    top = max(CONCURRENCY)
    ours, base = result.cells[("ours", top)], result.cells[("baseline", top)]
    retries = sum(result.cells[("baseline", c)].cas_retries for c in CONCURRENCY)
    failed = sum(sum(result.cells[("baseline", c)].errors.values()) for c in CONCURRENCY)
    failed_ours = sum(sum(result.cells[("ours", c)].errors.values()) for c in CONCURRENCY)
    distinct = all(
        rows == addr == idx and dup == 0 for rows, addr, idx, dup in result.checks.values()
    )
    line = (
        f"{result.engine}: at {top} clients ours {ours.throughput:.0f} creates/s vs baseline "
        f"{base.throughput:.0f} (×{ours.throughput / base.throughput:.2f}), p99 "
        f"{_ms(ours.percentile(0.99))} ms vs {_ms(base.percentile(0.99))} ms "
        f"(×{ours.percentile(0.99) / base.percentile(0.99):.2f}); baseline {retries} CAS "
        f"retries, {failed} failed creates; ours {failed_ours} failed; "
        f"addresses distinct: {'yes' if distinct else 'NO'}"
    )
    old = result.cells.get((OLD_SESSIONS, top))
    if old is not None:
        line += (
            f"\n{result.engine}: at {top} clients ours {ours.throughput:.0f} creates/s vs old "
            f"sessions {old.throughput:.0f} (×{ours.throughput / old.throughput:.2f}), p99 "
            f"{_ms(ours.percentile(0.99))} ms vs {_ms(old.percentile(0.99))} ms "
            f"(×{ours.percentile(0.99) / old.percentile(0.99):.2f})"
        )
    return line


def report(results: list[EngineResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"coinpay payment creation — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    print(
        f"Through the service function keel.coinpay.payments.create (not HTTP), chain {COIN}, "
        f"{args.requests} creates per cell x {args.rounds} rounds, "
        f"clients = concurrent asyncio tasks in one process."
    )
    print(
        "creates/s counts successful creates; p50/p99 are over successful creates, "
        "'p99 incl. failed' also counts the time callers waited for an error."
    )
    for result in results:
        print()
        print(f"### {result.engine} ({result.version})")
        print()
        print(table(result))
        print()
        for name, (rows, addr, idx, dup) in result.checks.items():
            print(
                f"- {name}: {rows} payments in the database, {addr} distinct addresses, "
                f"{idx} distinct indexes, {dup} duplicates among measured creates"
            )
    print()
    for result in results:
        print(summary(result))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=400, help="creates per cell per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - {"sqlite", "postgresql"}
    if unknown or not engines:
        parser.error(f"--engines takes sqlite and/or postgresql, not {sorted(unknown)}")
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds must be positive")
    args.engine_list = engines
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    master_key = new_key()
    results = [
        await bench_engine(engine, args.pg_url, args.requests, args.rounds, master_key)
        for engine in args.engine_list
    ]
    report(results, args)
    ok = all(
        rows == addr == idx and dup == 0
        for r in results
        for rows, addr, idx, dup in r.checks.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
