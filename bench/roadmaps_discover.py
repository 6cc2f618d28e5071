"""roadmaps /discover: database queries per request and latency at 50 concurrent users,
computed per request (the original's cold path) against precomputed (the default), in one run.

The seed claims the precompute cut /discover's queries by 99.8 %. Both modes run the same app
as `keel serve` mounts it (root app, uvicorn, HTTP on 127.0.0.1) over the same database: a
catalogue of ``--roadmaps`` public roadmaps by ``--users`` people with ratings and follows.
Every SELECT the server sends is counted at the engine. Clients are ``--clients`` concurrent
keep-alive connections each sending GET /roadmaps/api/discover until ``--requests`` are done;
latency is client-side, per request.

    PYTHONPATH=src .venv/bin/python bench/roadmaps_discover.py               # SQLite, ~1 min
    PYTHONPATH=src .venv/bin/python bench/roadmaps_discover.py --engine postgresql \\
        --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy import event

from keel.core.app import Product, create_root_app
from keel.roadmaps import bootstrap, models
from keel.roadmaps.app import create_app
from keel.roadmaps.settings import RoadmapsSettings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def seed(url: str, users: int, roadmaps: int) -> None:
    """People, their public roadmaps (rated, cloned, viewed), and follows, in bulk."""
    rng = random.Random(7)
    engine = await bootstrap.open_database(url)
    user_ids = [uuid.uuid4().hex for _ in range(users)]
    async with engine.begin() as conn:
        await conn.execute(
            models.users.insert(),
            [
                {
                    "id": uid,
                    "email": f"user{i}@example.org",
                    "display_name": f"Learner {i}",
                    "password_hash": "x",
                    "created_at": NOW,
                    "password_changed_at": NOW,
                }
                for i, uid in enumerate(user_ids)
            ],
        )
        await conn.execute(
            models.profiles.insert(),
            [
                {
                    "user_id": uid,
                    "handle": f"learner-{i}",
                    "bio": "",
                    "followers": rng.randrange(0, 500),
                    "following": 0,
                    "public_roadmaps": 0,
                }
                for i, uid in enumerate(user_ids)
            ],
        )
        rows = []
        for i in range(roadmaps):
            count = rng.randrange(0, 40)
            rows.append(
                {
                    "id": uuid.uuid4().hex,
                    "owner_id": rng.choice(user_ids),
                    "title": f"Roadmap {i}",
                    "goal": f"goal {i}",
                    "source_kind": "text",
                    "status": "ready",
                    "progress": 100,
                    "stage": "ready",
                    "provider": "offline",
                    "model": "catalogue",
                    "visibility": "public",
                    "published_at": NOW - timedelta(minutes=rng.randrange(0, 90 * 24 * 60)),
                    "rating_sum": sum(rng.randrange(1, 6) for _ in range(count)),
                    "rating_count": count,
                    "clone_count": rng.randrange(0, 50),
                    "view_count": rng.randrange(0, 5000),
                    "step_count": 8,
                    "total_hours": Decimal("24.50"),
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
        for start in range(0, len(rows), 1000):
            await conn.execute(models.roadmaps.insert(), rows[start : start + 1000])
    await engine.dispose()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1 in a thread of its own; yields the base URL."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


async def load(base: str, clients: int, requests: int) -> list[float]:
    latencies: list[float] = []
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                reply = await http.get("/roadmaps/api/discover")
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    raise RuntimeError(f"{reply.status_code}: {reply.text[:200]}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


def run_mode(url: str, data_dir: str, precompute: bool, args: argparse.Namespace) -> dict[str, Any]:
    product: Product = create_app(
        RoadmapsSettings(
            database_url=url,
            run_workers=False,
            discover_precompute=precompute,
            rate_limit_api=10**9,  # the limit is not what this measures
        ),
        data_dir=data_dir,
    )
    selects = 0

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        nonlocal selects
        if statement.lstrip()[:6].upper() == "SELECT":
            selects += 1

    with serving(create_root_app([product])) as base:
        engine = product.app.state.roadmaps.database.primary.sync_engine
        asyncio.run(load(base, args.clients, 50))  # warm-up (and the first computation)
        event.listen(engine, "before_cursor_execute", count)
        started = time.perf_counter()
        latencies = asyncio.run(load(base, args.clients, args.requests))
        elapsed = time.perf_counter() - started
        event.remove(engine, "before_cursor_execute", count)
    ordered = sorted(latencies)
    return {
        "mode": "precomputed" if precompute else "per request",
        "queries_per_request": selects / len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(ordered),
        "p95_ms": 1000 * ordered[int(0.95 * len(ordered)) - 1],
    }


async def scratch_pg(admin_url: str) -> tuple[str, str]:
    name = f"bench_discover_{uuid.uuid4().hex[:8]}"
    dsn = admin_url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


async def drop_pg(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg", "postgresql"))
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--roadmaps", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg_name = None
        if args.engine == "postgresql":
            url, pg_name = asyncio.run(scratch_pg(args.pg_url))
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'roadmaps.db'}"
        try:
            asyncio.run(seed(url, args.users, args.roadmaps))
            results = [run_mode(url, tmp, precompute, args) for precompute in (False, True)]
        finally:
            if pg_name is not None:
                asyncio.run(drop_pg(args.pg_url, pg_name))
    print(
        f"roadmaps /discover, {args.engine}, {args.roadmaps} public roadmaps by {args.users} "
        f"people; {args.requests} requests from {args.clients} concurrent clients "
        f"(python {platform.python_version()})"
    )
    print(f"{'mode':<13} {'queries/req':>11} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for r in results:
        print(
            f"{r['mode']:<13} {r['queries_per_request']:>11.3f} {r['rps']:>8.0f} "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f}"
        )
    before, after = results
    cut = 1 - after["queries_per_request"] / before["queries_per_request"]
    print(
        f"queries per request cut by {100 * cut:.2f} %; "
        f"p95 ×{after['p95_ms'] / before['p95_ms']:.3f}; req/s ×{after['rps'] / before['rps']:.2f}"
    )


if __name__ == "__main__":
    main()
