"""API requests per second with rate limits on: today's limiter against the new one.

Two endpoints, through a real ``keel serve coinpay bittorrented`` process (uvicorn, the path
users run) on 127.0.0.1:

* ``GET /coinpay/api/payments/{id}`` with a test API key (authenticate, two limit buckets,
  load the payment, render it with its QR code);
* ``GET /bittorrented/api/search?q=...`` without a key (one bucket per client address) over a
  generated corpus of ``--rows`` releases.

Stores (``KEEL_RATE_LIMIT_STORE``), each in its own server process on the same databases:

* ``database``: today's limiter, a write transaction with an upsert per bucket on every
  request, in the product's own database;
* ``memory``: the new default, ``limits``' moving window in the server's memory;
* ``redis``: the same moving window in Redis (``--redis-url``), shared by processes;
* ``today`` (with ``--today-src``): the server run from another checkout's ``src`` (e.g. the
  main branch before this change: its database limiter, and whatever else it did per request).

For each engine (SQLite files, fresh PostgreSQL databases) and each store, every endpoint runs
at 1, 16 and 64 concurrent keep-alive connections for ``--seconds`` after a warm-up; the
client is a minimal HTTP/1.1 client on asyncio (uvloop), so that it costs the server's machine
as little as possible. Limits are set so high that nothing is refused (a 1 s window keeps the
moving window's lists as short as production limits would), so every store does its full work
on every request. Non-200 replies are counted and reported. Stores take turns going first in
each round. Compare ratios within one run only.

    .venv/bin/python bench/api_ratelimit.py [--engines sqlite,postgresql]
        [--stores database,memory,redis] [--clients 1,16,64] [--seconds 5] [--rounds 1]
        [--pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/14] [--today-src ../main]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import redis.asyncio
import uvloop
from sqlalchemy import text
from sqlalchemy.engine import make_url

import bittorrented_names as names
from keel.bittorrented import bootstrap as bt_bootstrap
from keel.bittorrented.catalog import bulk
from keel.coinpay import apikeys, audit, businesses, payments, wallets
from keel.coinpay import bootstrap as cp_bootstrap
from keel.coinpay.assets import get_coin
from keel.coinpay.settings import CoinpaySettings
from keel.core import db
from keel.core.clock import SystemClock
from keel.core.crypto import new_key

DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
STORES = ("today", "database", "memory", "redis")
OLD = "database"
LABELS = {
    "today": "before (branch point)",
    "database": "database (today's)",
    "memory": "memory (new)",
    "redis": "redis (new)",
}
ENDPOINTS = ("payment", "search")
# The well-known BIP39 test vector: a bench seed, never a real one.
SEED_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
PAYOUT_MNEMONIC = " ".join(["zoo"] * 11 + ["wrong"])
SEARCH_QUERY = "dark"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
UNLIMITED = "1000000"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client: httpx would cost more CPU than the server's work.


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def get(self, request: bytes) -> int:
        """Send one prepared request; the reply's status once its body has been read."""
        self.writer.write(request)
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def request_bytes(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Cell:
    """Pooled results of one (endpoint, clients, store) over all rounds."""

    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    not_ok: int = 0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    def percentile(self, q: float) -> float:
        data = sorted(self.latencies)
        if not data:
            return float("nan")
        pos = (len(data) - 1) * q
        lo = int(pos)
        hi = min(lo + 1, len(data) - 1)
        return data[lo] + (data[hi] - data[lo]) * (pos - lo)


async def load(port: int, request: bytes, clients: int, seconds: float, cell: Cell | None) -> None:
    """``clients`` connections, each sending ``request`` back to back for ``seconds``."""
    connections = [await Connection.open(port) for _ in range(clients)]
    latencies: list[float] = []
    not_ok = 0
    stop_at = time.perf_counter() + seconds

    async def client(conn: Connection) -> None:
        nonlocal not_ok
        while (start := time.perf_counter()) < stop_at:
            status = await conn.get(request)
            latencies.append(time.perf_counter() - start)
            not_ok += status != 200

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for c in connections:
            c.close()
    if cell is not None:
        cell.wall += time.perf_counter() - started
        cell.latencies.extend(latencies)
        cell.not_ok += not_ok


# ---------------------------------------------------------------------------------------------
# Databases and their contents.


@asynccontextmanager
async def scratch_databases(engine: str, pg_url: str, tmp: str) -> AsyncIterator[dict[str, str]]:
    """An empty database per product; PostgreSQL ones are dropped afterwards."""
    if engine == "sqlite":
        yield {p: f"sqlite+aiosqlite:///{tmp}/{p}.db" for p in ("coinpay", "bittorrented")}
        return
    parsed = make_url(pg_url)
    dbs = {p: f"keel_bench_{p[:2]}_{uuid.uuid4().hex[:8]}" for p in ("coinpay", "bittorrented")}

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
        for name in dbs.values():
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield {
            p: parsed.set(database=n, drivername="postgresql+asyncpg").render_as_string(
                hide_password=False
            )
            for p, n in dbs.items()
        }
    finally:
        conn = await admin()
        try:
            for name in dbs.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def seed_coinpay(url: str, master_key: str, data_dir: str) -> tuple[str, str, str]:
    """A business with an ETH wallet, a test key and one payment: (key, payment id, version)."""
    settings = CoinpaySettings(database_url=url, master_key=master_key, run_workers=False)
    clock = SystemClock()
    gw = await cp_bootstrap.open_gateway(settings, data_dir=data_dir, clock=clock)
    try:
        await gw.custody.init_seed(clock, SEED_MNEMONIC)
        payout = wallets.HDRoot.from_mnemonic(PAYOUT_MNEMONIC).address(get_coin("ETH").family, 7)
        operator = audit.Actor.cli(gw.queue, clock)
        async with gw.sessions() as session, session.begin():
            business_id = await businesses.create_business(session, clock, name="Bench shop")
            await businesses.set_wallet(
                session, operator, business_id=business_id, mode="test", coin="ETH", address=payout
            )
            _, token = await apikeys.create_key(
                session, gw.box, operator, business_id=business_id, mode="test"
            )
        principal = await apikeys.authenticate(gw.lookups, gw.box, token)
        row = await payments.create(
            gw,
            principal,
            payments.NewPayment(
                business_id=business_id,
                amount=Decimal("25.00"),
                currency="USD",
                blockchain="ETH",
                description="bench",
                metadata={"order": "bench"},
            ),
        )
        return token, str(row.id), await engine_version(gw.engine)
    finally:
        await cp_bootstrap.close_gateway(gw)


async def seed_bittorrented(url: str, rows: int) -> None:
    engine = await bt_bootstrap.open_database(url)
    try:
        corpus = names.Corpus(rows=rows)
        await bulk.load(engine, names.entries(corpus, rows), now=NOW)
        if db.is_postgres(engine):
            async with engine.connect() as conn:
                await conn.execute(text("COMMIT"))
                await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


async def step_back_for_today(url: str) -> None:
    """Undo bittorrented's migration 0007 (this change's rate-limit table), which the other
    checkout does not know and would refuse to start on; the next server of this checkout
    migrates it forward again."""
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS bittorrented_rate_limits"))
            await conn.execute(text("UPDATE bittorrented_alembic_version SET version_num = '0006'"))
    finally:
        await engine.dispose()


async def engine_version(engine: db.AsyncEngine) -> str:
    if db.is_sqlite(engine):
        return f"SQLite {sqlite3.sqlite_version}"
    async with engine.connect() as conn:
        return "PostgreSQL " + str((await conn.execute(text("SHOW server_version"))).scalar_one())


# ---------------------------------------------------------------------------------------------
# The server: `keel serve`, configured by environment as users configure it.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def keel_serve(env: dict[str, str]) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "keel", "serve", "coinpay", "bittorrented", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(request_bytes("/readyz", {"Connection": "close"}))
                    if b" 200 " in s.recv(64):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise SystemExit(f"keel serve did not come up: {err[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_env(
    store: str, urls: dict[str, str], master_key: str, data_dir: str, args: argparse.Namespace
) -> dict[str, str]:
    env = {
        **os.environ,
        "KEEL_DATA_DIR": data_dir,
        "KEEL_RATE_LIMIT_STORE": store,
        "KEEL_COINPAY_DATABASE_URL": urls["coinpay"],
        "KEEL_COINPAY_MASTER_KEY": master_key,
        "KEEL_COINPAY_RUN_WORKERS": "false",
        "KEEL_COINPAY_RATE_LIMIT_WINDOW_SECONDS": "1",
        "KEEL_COINPAY_RATE_LIMIT_PER_KEY": UNLIMITED,
        "KEEL_COINPAY_RATE_LIMIT_PER_BUSINESS": UNLIMITED,
        "KEEL_BITTORRENTED_DATABASE_URL": urls["bittorrented"],
        "KEEL_BITTORRENTED_RUN_WORKERS": "false",
        "KEEL_BITTORRENTED_RATE_LIMIT_WINDOW_SECONDS": "1",
        "KEEL_BITTORRENTED_RATE_LIMIT_SEARCH": UNLIMITED,
    }
    if store == "redis":
        env["KEEL_REDIS_URL"] = args.redis_url
        env["KEEL_REDIS_KEY_PREFIX"] = args.redis_prefix
    if store == "today":
        # That checkout ignores the settings it does not know: its limiter is its own.
        env["PYTHONPATH"] = os.path.join(args.today_src, "src")
        env["KEEL_RATE_LIMIT_STORE"] = "auto"
    return env


# ---------------------------------------------------------------------------------------------
# The run.


@dataclass
class EngineResult:
    engine: str
    version: str
    cells: dict[tuple[str, int, str], Cell]


async def bench_engine(engine: str, args: argparse.Namespace) -> EngineResult:
    master_key = new_key()
    with tempfile.TemporaryDirectory(prefix="keel-bench-rl-") as tmp:
        async with scratch_databases(engine, args.pg_url, tmp) as urls:
            log(f"{engine}: seeding ({args.rows} releases)")
            token, payment_id, version = await seed_coinpay(urls["coinpay"], master_key, tmp)
            await seed_bittorrented(urls["bittorrented"], args.rows)
            requests = {
                "payment": request_bytes(
                    f"/coinpay/api/payments/{payment_id}", {"Authorization": f"Bearer {token}"}
                ),
                "search": request_bytes(f"/bittorrented/api/search?q={SEARCH_QUERY}", {}),
            }
            cells = {
                (e, c, s): Cell() for e in ENDPOINTS for c in args.clients for s in args.stores
            }
            try:
                for rnd in range(args.rounds):
                    k = rnd % len(args.stores)
                    for store in args.stores[k:] + args.stores[:k]:
                        env = server_env(store, urls, master_key, tmp, args)
                        if store == "today":
                            await step_back_for_today(urls["bittorrented"])
                        with keel_serve(env) as port:
                            for endpoint in ENDPOINTS:
                                for clients in args.clients:
                                    req = requests[endpoint]
                                    await load(port, req, clients, args.warmup, None)
                                    cell = cells[(endpoint, clients, store)]
                                    await load(port, req, clients, args.seconds, cell)
                                    log(
                                        f"  {engine:<10} round {rnd + 1}/{args.rounds} "
                                        f"{LABELS[store]:<17} {endpoint:<7} {clients:>2} clients "
                                        f"{cell.throughput:>7,.0f} req/s"
                                    )
            finally:
                if "redis" in args.stores:
                    await drop_redis_keys(args.redis_url, args.redis_prefix)
    return EngineResult(engine, version, cells)


async def drop_redis_keys(url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def report(results: Sequence[EngineResult], args: argparse.Namespace) -> None:
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; {args.seconds:g} s per cell after {args.warmup:g} s "
        f"warm-up, {args.rounds} round(s); server: keel serve (uvicorn) on 127.0.0.1\n"
    )
    for result in results:
        print(f"### {result.version}\n")
        print("| endpoint | clients | limiter | req/s | p50 ms | p95 ms | p99 ms | non-200 |")
        print("|:--|--:|:--|--:|--:|--:|--:|--:|")
        for endpoint in ENDPOINTS:
            for clients in args.clients:
                for store in args.stores:
                    c = result.cells[(endpoint, clients, store)]
                    print(
                        f"| {endpoint} | {clients} | {LABELS[store]} | {c.throughput:,.0f} | "
                        f"{c.percentile(0.5) * 1000:.1f} | {c.percentile(0.95) * 1000:.1f} | "
                        f"{c.percentile(0.99) * 1000:.1f} | {c.not_ok} |"
                    )
        bases = [b for b in ("today", OLD) if b in args.stores]
        new = [s for s in args.stores if s in ("memory", "redis")]
        pairs = [(n, b) for b in bases for n in new]
        if pairs:
            print("\nRatio new/old (req/s, same run):\n")
            short = {"today": "before"}
            print(
                "| endpoint | clients | "
                + " | ".join(f"{n}/{short.get(b, b)}" for n, b in pairs)
                + " |"
            )
            print("|:--|--:|" + "--:|" * len(pairs))
            for endpoint in ENDPOINTS:
                for clients in args.clients:
                    c = result.cells
                    ratios = [
                        c[(endpoint, clients, n)].throughput / c[(endpoint, clients, b)].throughput
                        if c[(endpoint, clients, b)].throughput
                        else 0.0
                        for n, b in pairs
                    ]
                    print(
                        f"| {endpoint} | {clients} | "
                        + " | ".join(f"{r:.2f}x" for r in ratios)
                        + " |"
                    )
        print()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--stores", default="database,memory,redis")
    parser.add_argument("--clients", default="1,16,64")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000, help="bittorrented corpus size")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--today-src", default="", help="checkout whose src/ is 'today'")
    args = parser.parse_args(argv)
    args.redis_prefix = f"keel-bench-{uuid.uuid4().hex[:8]}"
    args.engines = [e for e in args.engines.split(",") if e]
    args.stores = [s for s in args.stores.split(",") if s]
    args.clients = [int(c) for c in args.clients.split(",") if c]
    unknown = set(args.stores) - set(STORES)
    if unknown:
        parser.error(f"unknown stores {sorted(unknown)}; known: {', '.join(STORES)}")
    if "today" in args.stores and not args.today_src:
        parser.error("the 'today' store needs --today-src")
    if args.today_src and "today" not in args.stores:
        args.stores.insert(0, "today")
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = [await bench_engine(engine, args) for engine in args.engines]
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
