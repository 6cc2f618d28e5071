"""A worker killed (SIGKILL) mid-delivery loses no event, and the delivery log lists every
request the receiver saw, including the ones the dead worker never heard back from."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import keel
from keel.coinpay import models, notify
from keel.core import db
from keel.core.crypto import new_key
from tests.coinpay.conftest import make_harness

EVENTS = 60
ANSWER_FIRST = 22  # then hold what arrives, so the kill lands with requests in flight
WEBHOOK_TIMEOUT_SECONDS = 3  # delivery lease = 3 + 5 s: the held events come back in ~8 s
SRC = str(Path(keel.__file__).resolve().parents[1])  # the tree under test, for the subprocess


class HoldingReceiver:
    """Answers the first ``answer_first`` deliveries at once; from then on, while ``holding``,
    it takes each request and never answers it (the worker is killed meanwhile)."""

    def __init__(self, answer_first: int) -> None:
        self.lock = threading.Lock()
        self.requests: list[str] = []  # event id of every request that arrived, in order
        self.answered: set[str] = set()
        self.bodies: dict[str, bytes] = {}
        self.holding = True
        self.held = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event_id = self.headers["X-CoinPay-Event-Id"]
                with receiver.lock:
                    receiver.requests.append(event_id)
                    hold = receiver.holding and len(receiver.requests) > answer_first
                if hold:
                    receiver.held.set()
                    receiver.release.wait(60)
                    return  # never answered: the worker that sent it is dead by now
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.answered.add(event_id)
                    receiver.bodies[event_id] = body

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop_holding(self) -> None:
        with self.lock:
            self.holding = False
        self.release.set()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    r = HoldingReceiver(ANSWER_FIRST)
    yield r
    r.close()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "keel", "coinpay", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


async def delivery_state(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    dl, jobs = models.webhook_deliveries, models.jobs
    async with sessions() as session:
        rows = await session.execute(select(dl.c.outcome, func.count()).group_by(dl.c.outcome))
        outcomes = {str(outcome): int(n) for outcome, n in rows.all()}
        unfinished = await session.scalar(
            select(func.count()).where(jobs.c.kind == notify.DELIVER_JOB, jobs.c.status != "done")
        )
    return {**outcomes, "unfinished_jobs": int(unfinished or 0)}


@pytest.mark.slow
async def test_sigkilled_worker_loses_no_webhook_and_logs_every_attempt(
    db_url: str, tmp_path: Path, receiver: HoldingReceiver
) -> None:
    master_key = new_key()
    event_ids: list[str] = []
    async for h in make_harness(db_url, receiver.url, master_key=master_key):
        for _ in range(EVENTS):
            await h.create_payment()
        async with h.gw.sessions() as session:
            ev = models.webhook_events  # the payments' events (setup's business.updated aside)
            event_ids = list(
                await session.scalars(select(ev.c.id).where(ev.c.payment_id.is_not(None)))
            )
    assert len(event_ids) == EVENTS
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]),
        "KEEL_COINPAY_DATABASE_URL": db_url,
        "KEEL_COINPAY_MASTER_KEY": master_key,
        "KEEL_COINPAY_WEBHOOK_ALLOW_PRIVATE": "true",
        "KEEL_COINPAY_WORKER_POLL_SECONDS": "0.2",
        "KEEL_COINPAY_WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS),
        "KEEL_DATA_DIR": str(tmp_path),
    }
    log = tmp_path / "worker.log"
    engine = db.create_engine(db_url)
    sessions = db.session_factory(engine)
    started = time.monotonic()
    first = start_worker(env, log)
    try:
        assert await asyncio.to_thread(receiver.held.wait, 30), log.read_text()[-3000:]
        # The rest of the worker's batch reaches the receiver well within a second; the
        # requests are held far longer than that (until the webhook timeout, 3 s).
        await asyncio.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    with receiver.lock:
        in_flight = len(receiver.requests) - ANSWER_FIRST
    assert in_flight >= 1
    state = await delivery_state(sessions)
    assert state.get(notify.SENDING) == in_flight  # logged before it was sent
    receiver.stop_holding()

    second = start_worker(env, log)
    try:
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            state = await delivery_state(sessions)
            with receiver.lock:
                answered = set(receiver.answered)
            if answered == set(event_ids) and state["unfinished_jobs"] == 0:
                break
            await asyncio.sleep(0.2)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
        await engine.dispose()
    elapsed = time.monotonic() - started

    assert answered == set(event_ids), "some event was never delivered"
    state = await delivery_state(sessions)
    attempts = sum(n for outcome, n in state.items() if outcome != "unfinished_jobs")
    with receiver.lock:
        requests = list(receiver.requests)
    # At least once: every event arrived; the interrupted ones arrived twice.
    assert len(requests) == EVENTS + in_flight
    # The log matches what the receiver saw: one attempt per request, none left open.
    assert attempts == len(requests), (state, len(requests))
    assert state == {"success": EVENTS, notify.INTERRUPTED: in_flight, "unfinished_jobs": 0}
    for event_id in event_ids:
        body = json.loads(receiver.bodies[event_id])
        assert body["id"] == event_id
        assert body["type"] == "payment.created"
    # About 15 s here; a one-minute lease alone would take over 60.
    assert elapsed < 45, f"took {elapsed:.1f} s: the crashed worker's jobs came back too late"
