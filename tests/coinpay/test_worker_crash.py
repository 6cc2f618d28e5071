"""A worker killed (SIGKILL) mid-delivery loses no event; the restarted one delivers it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from keel.core.crypto import new_key
from tests.coinpay.conftest import make_harness


class SlowThenFastReceiver:
    """Hangs on the first delivery (so the worker can be killed mid-request), then answers."""

    def __init__(self) -> None:
        self.first_request = threading.Event()
        self.release = threading.Event()
        self.delivered: list[tuple[str, bytes]] = []
        self.got_delivery = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not receiver.first_request.is_set():
                    receiver.first_request.set()
                    receiver.release.wait(30)
                    return  # the worker is dead by now; never answer
                receiver.delivered.append((self.headers["X-CoinPay-Event-Id"], body))
                receiver.got_delivery.set()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[SlowThenFastReceiver]:
    r = SlowThenFastReceiver()
    yield r
    r.close()


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "keel", "coinpay", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.slow
async def test_sigkilled_worker_loses_no_webhook(
    db_url: str, tmp_path: Path, receiver: SlowThenFastReceiver
) -> None:
    master_key = new_key()
    async for h in make_harness(db_url, receiver.url, master_key=master_key):
        payment = await h.create_payment()
    env = {
        **os.environ,
        "KEEL_COINPAY_DATABASE_URL": db_url,
        "KEEL_COINPAY_MASTER_KEY": master_key,
        "KEEL_COINPAY_WEBHOOK_ALLOW_PRIVATE": "true",
        "KEEL_COINPAY_JOB_LEASE_SECONDS": "5",
        "KEEL_COINPAY_WORKER_POLL_SECONDS": "0.2",
        "KEEL_COINPAY_WEBHOOK_TIMEOUT_SECONDS": "20",
        "KEEL_DATA_DIR": str(tmp_path),
    }
    first = start_worker(env)
    try:
        assert receiver.first_request.wait(30), "worker never attempted the delivery"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert receiver.delivered == []
    second = start_worker(env)
    try:
        await asyncio.to_thread(receiver.got_delivery.wait, 40)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
    assert receiver.delivered, "the restarted worker did not deliver the event"
    event_id, body = receiver.delivered[0]
    assert b'"payment.created"' in body
    assert payment["id"].encode() in body
    assert event_id.startswith("evt_")
