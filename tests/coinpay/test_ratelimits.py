"""coinpay's request limits: per key and per (business, mode), headers on every reply, and
counters shared by several `keel serve` processes (and kept across a restart) on Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from keel.coinpay import apikeys
from keel.core.crypto import new_key
from keel.core.ratelimit import RateLimitStore
from tests.coinpay.conftest import Harness, make_harness
from tests.conftest import scratch_redis

# The reported flood: 1,250 test-key requests locked the same business's live key out.
PER_BUSINESS = 5


@pytest.fixture
async def per_business(db_url: str) -> AsyncIterator[Harness]:
    async for h in make_harness(
        db_url, None, rate_limit_per_key=1000, rate_limit_per_business=PER_BUSINESS
    ):
        yield h


async def _second_key(h: Harness, mode: str) -> str:
    async with h.gw.sessions() as session, session.begin():
        _, key = await apikeys.create_key(
            session, h.gw.box, h.operator, business_id=h.business_id, mode=mode
        )
    return key


async def test_a_test_key_flood_does_not_lock_out_the_live_key(per_business: Harness) -> None:
    h = per_business
    flood = [await h.client.get("/api/payments", headers=h.auth()) for _ in range(50)]
    assert [r.status_code for r in flood] == [200] * PER_BUSINESS + [429] * (50 - PER_BUSINESS)
    live = await h.client.get("/api/payments", headers=h.auth(h.live_key))
    assert live.status_code == 200
    assert live.headers["X-RateLimit-Remaining"] == str(PER_BUSINESS - 1)
    # Within the test mode the business's budget is shared: a fresh test key is refused too.
    other_test = await h.client.get("/api/payments", headers=h.auth(await _second_key(h, "test")))
    assert other_test.status_code == 429


async def test_every_reply_behind_a_key_carries_the_limit_headers(per_business: Harness) -> None:
    h = per_business
    found = await h.client.get("/api/payments", headers=h.auth())
    missing = await h.client.get("/api/payments/nope", headers=h.auth())
    assert missing.status_code == 404
    for _ in range(PER_BUSINESS):
        refused = await h.client.get("/api/payments", headers=h.auth())
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    for reply in (found, missing, refused):
        assert reply.headers["X-RateLimit-Limit"] == str(PER_BUSINESS)
        assert int(reply.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert [found.headers["X-RateLimit-Remaining"], missing.headers["X-RateLimit-Remaining"]] == [
        str(PER_BUSINESS - 1),
        str(PER_BUSINESS - 2),
    ]
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


async def test_an_unreachable_redis_lets_requests_by(db_url: str) -> None:
    # Port 1 on loopback: nothing listens there. Rate limits protect the service; a dead
    # store must not be the reason the payment API is down.
    store = RateLimitStore("redis", "redis://127.0.0.1:1/0", "keel-test-down")
    async for h in make_harness(db_url, None, rate_limits=store, rate_limit_per_key=1):
        replies = [await h.client.get("/api/payments", headers=h.auth()) for _ in range(3)]
        assert [r.status_code for r in replies] == [200, 200, 200]
        assert "X-RateLimit-Limit" not in replies[0].headers


# ---------------------------------------------------------------------------------------------
# Two real `keel serve coinpay` processes on loopback, sharing counters in Redis.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """`keel serve coinpay` on a free loopback port; its base URL once it answers."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "keel", "serve", "coinpay", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode() if process.stderr else ""
                raise AssertionError(f"keel serve did not come up: {err[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
async def test_two_processes_share_the_limit_and_a_restart_keeps_it(tmp_path: Path) -> None:
    async with scratch_redis() as store:
        master_key = new_key()
        db_url = f"sqlite+aiosqlite:///{tmp_path}/coinpay.db"
        async for h in make_harness(db_url, None, master_key=master_key):
            key = h.test_key
        env = {
            **os.environ,
            "KEEL_DATA_DIR": str(tmp_path),
            "KEEL_REDIS_URL": store.redis_url,
            "KEEL_REDIS_KEY_PREFIX": store.key_prefix,
            "KEEL_COINPAY_DATABASE_URL": db_url,
            "KEEL_COINPAY_MASTER_KEY": master_key,
            "KEEL_COINPAY_RUN_WORKERS": "false",
            "KEEL_COINPAY_RATE_LIMIT_PER_KEY": "10",
        }
        auth = {"Authorization": f"Bearer {key}"}

        def get(base: str) -> int:
            return httpx.get(f"{base}/coinpay/api/payments", headers=auth, timeout=10).status_code

        with serving(env) as a, serving(env) as b:
            statuses = await asyncio.to_thread(lambda: [get(u) for _ in range(8) for u in (a, b)])
        # Each process alone would have allowed 8 of its own 8.
        assert statuses.count(200) == 10
        assert statuses.count(429) == 6
        with serving(env) as restarted:
            assert await asyncio.to_thread(get, restarted) == 429
