"""The delivery log records an attempt before its request leaves and closes it after, so it
lists every request a receiver may have seen, including one whose worker died mid-flight."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from keel.coinpay import bootstrap, models, notify
from tests.coinpay.conftest import Harness, make_harness


class GatedReceiver:
    """Takes each request, then waits for ``gate`` before answering 200."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.gate = threading.Event()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests += 1
                receiver.arrived.set()
                if not receiver.gate.wait(10):
                    return
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[GatedReceiver]:
    r = GatedReceiver()
    yield r
    r.close()


@pytest.fixture
async def gated(db_url: str, receiver: GatedReceiver) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, receiver.url):
        yield h


async def _attempts(h: Harness) -> list[Any]:
    dl = models.webhook_deliveries
    async with h.gw.sessions() as session:
        rows = await session.execute(
            select(dl.c.attempt, dl.c.outcome, dl.c.status_code, dl.c.error).order_by(dl.c.id)
        )
    return list(rows.all())


def _deliverer(h: Harness) -> notify.Deliverer:
    return notify.Deliverer(h.gw.sessions, h.gw.box, h.gw.clock, h.gw.http, timeout=5)


async def test_an_attempt_is_logged_as_sending_before_its_request_leaves(
    gated: Harness, receiver: GatedReceiver
) -> None:
    await gated.create_payment()
    [job] = await gated.gw.queue.claim("w", lease=timedelta(seconds=30))
    delivery = asyncio.create_task(_deliverer(gated)(job))
    assert await asyncio.to_thread(receiver.arrived.wait, 10)
    # The receiver holds the request: the log already shows it, still open.
    assert [(a.attempt, a.outcome) for a in await _attempts(gated)] == [(1, notify.SENDING)]
    receiver.gate.set()
    await delivery
    [attempt] = await _attempts(gated)
    assert (attempt.attempt, attempt.outcome, attempt.status_code) == (1, "success", 200)


async def test_an_attempt_cut_short_is_closed_as_interrupted_when_the_job_comes_back(
    gated: Harness, receiver: GatedReceiver
) -> None:
    payment = await gated.create_payment()
    [job] = await gated.gw.queue.claim("doomed", lease=bootstrap.delivery_lease(gated.gw.settings))
    delivery = asyncio.create_task(_deliverer(gated)(job))
    assert await asyncio.to_thread(receiver.arrived.wait, 10)
    delivery.cancel()  # the worker dies with the request in flight: nothing more runs
    with pytest.raises(asyncio.CancelledError):
        await delivery
    receiver.gate.set()
    assert await bootstrap.build_worker(gated.gw).drain() == 0  # still leased
    gated.clock.advance(bootstrap.delivery_lease(gated.gw.settings) + timedelta(seconds=1))
    assert await bootstrap.build_worker(gated.gw).drain() == 1
    attempts = await _attempts(gated)
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, notify.INTERRUPTED),
        (2, "success"),
    ]
    assert "may have been received" in attempts[0].error
    assert receiver.requests == 2  # one log entry per request the receiver saw
    log = await gated.client.get(f"/api/webhooks?payment_id={payment['id']}", headers=gated.auth())
    [event] = log.json()["events"]
    assert [d["outcome"] for d in event["deliveries"]] == [notify.INTERRUPTED, "success"]


def test_the_delivery_lease_outlasts_the_http_timeout_with_a_margin(gated: Harness) -> None:
    settings = gated.gw.settings.model_copy(update={"webhook_timeout_seconds": 2.5})
    assert bootstrap.delivery_lease(settings) == timedelta(seconds=8)
    worker = bootstrap.build_worker(gated.gw)
    timeout = gated.gw.settings.webhook_timeout_seconds
    assert worker.leases[notify.DELIVER_JOB] > timedelta(seconds=timeout)
    assert worker.leases[notify.DELIVER_JOB] < worker.lease  # back in seconds, not a minute
