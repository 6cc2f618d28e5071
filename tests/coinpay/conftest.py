"""A running coinpay (no background workers: tests drive them), a merchant, a webhook sink."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from keel.coinpay import apikeys, audit, bootstrap, businesses, lifecycle, notify
from keel.coinpay.app import create_app
from keel.coinpay.assets import COINS
from keel.coinpay.chains.base import ChainSource
from keel.coinpay.chains.scanner import ObservedChain
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.coinpay.wallets import Family, HDRoot, Network
from keel.core.clock import Clock, FrozenClock
from keel.core.crypto import new_key
from keel.core.jobs import Periodic
from keel.core.ratelimit import RateLimitStore

ABANDON = " ".join(["abandon"] * 11 + ["about"])
# Payout addresses come from a different seed so they never collide with payment addresses.
PAYOUT_MNEMONIC = " ".join(["zoo"] * 11 + ["wrong"])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    """A real HTTP server on loopback recording what it is sent."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        bodies = [r.json() for r in self.received]
        return [b for b in bodies if event_type is None or b["type"] == event_type]


@pytest.fixture
def webhook_sink() -> Iterator[WebhookSink]:
    sink = WebhookSink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            sink.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(sink.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sink
    server.shutdown()
    server.server_close()


def payout_address(coin_symbol: str) -> str:
    root = HDRoot.from_mnemonic(PAYOUT_MNEMONIC)
    return root.address(COINS[coin_symbol].family, 7)


@dataclass
class Harness:
    gw: Gateway
    client: httpx.AsyncClient
    clock: FrozenClock
    business_id: str
    test_key: str
    live_key: str
    webhook_secret: str | None

    @property
    def operator(self) -> audit.Actor:
        """The server's CLI as the author of a configuration change."""
        return audit.Actor.cli(self.gw.queue, self.clock)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.test_key}"}

    async def create_payment(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "business_id": self.business_id,
            "amount": "100.00",
            "currency": "USD",
            "blockchain": "BTC",
            "metadata": {"order": "42"},
        }
        body.update(overrides)
        response = await self.client.post("/api/payments/create", json=body, headers=self.auth())
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()["payment"]
        return payment

    async def simulate(self, payment_id: str, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/payments/{payment_id}/simulate", json=body, headers=self.auth()
        )
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()["payment"]
        return payment

    async def run_jobs(self) -> int:
        return await bootstrap.build_worker(self.gw).drain()

    def periodic(self, name: str) -> Periodic:
        """The worker's periodic task ``name`` (``scan:ETH``, ``expire``), to run by hand."""
        [task] = [p for p in bootstrap.build_worker(self.gw).periodic if p.name == name]
        return task

    async def add_live_endpoint(self, url: str) -> str:
        """A live webhook endpoint for the payment events; returns its signing secret."""
        async with self.gw.sessions() as session, session.begin():
            _, secret = await notify.create_endpoint(
                session,
                self.gw.box,
                self.operator,
                business_id=self.business_id,
                mode="live",
                url=url,
                events=list(lifecycle.EVENT_TYPES),
                allow_private=True,
            )
        return secret

    async def create_live_payment(self, coin: str, amount: str = "25.00") -> dict[str, Any]:
        body = {"business_id": self.business_id, "amount": amount, "blockchain": coin}
        response = await self.client.post(
            "/api/payments/create", json=body, headers=self.auth(self.live_key)
        )
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()["payment"]
        assert payment["mode"] == "live"
        return payment

    async def live_payment(self, payment_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/payments/{payment_id}", headers=self.auth(self.live_key)
        )
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()["payment"]
        return payment


async def seed_merchant(gw: Gateway, clock: Clock) -> tuple[str, str]:
    """The abandon seed, a business receiving every coin in both modes (payout wallets from
    another seed) and a test key; returns (business id, test key)."""
    await gw.custody.init_seed(clock, ABANDON)
    operator = audit.Actor.cli(gw.queue, clock)
    async with gw.sessions() as session, session.begin():
        business_id = await businesses.create_business(session, clock, name="Shop")
        for mode in apikeys.MODES:
            for symbol in COINS:
                await businesses.set_wallet(
                    session,
                    operator,
                    business_id=business_id,
                    mode=mode,
                    coin=symbol,
                    address=payout_address(symbol),
                )
        _, test_key = await apikeys.create_key(
            session, gw.box, operator, business_id=business_id, mode="test"
        )
    return business_id, test_key


async def make_harness(
    db_url: str,
    sink_url: str | None,
    *,
    rate_limits: RateLimitStore | None = None,
    sources: Sequence[ChainSource] = (),
    networks: Mapping[str, Network] | None = None,
    **settings: Any,
) -> AsyncIterator[Harness]:
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    options: dict[str, Any] = {
        "database_url": db_url,
        "master_key": new_key(),
        "webhook_allow_private": True,
        "run_workers": False,
        **settings,
    }
    product = create_app(
        CoinpaySettings(**options),
        clock=clock,
        run_workers=False,
        rate_limits=rate_limits,
        sources=sources,
        networks=networks,
    )
    async with product.lifespan():
        gw: Gateway = product.app.state.gateway
        # The live world watches BTC and ETH as scanned chains whose scanners are not running
        # here (no node): live payments can be created on them, and nothing ever arrives.
        observed = ObservedChain(gw.sessions)
        live = {"BTC": observed, "ETH": observed, **gw.watchers["live"]}
        gw.watchers = {**gw.watchers, "live": live}
        business_id, test_key = await seed_merchant(gw, clock)
        secret = None
        operator = audit.Actor.cli(gw.queue, clock)
        async with gw.sessions() as session, session.begin():
            _, live_key = await apikeys.create_key(
                session, gw.box, operator, business_id=business_id, mode="live"
            )
            if sink_url:  # receives the test world's events, where the harness's payments are
                _, secret = await notify.create_endpoint(
                    session,
                    gw.box,
                    operator,
                    business_id=business_id,
                    mode="test",
                    url=sink_url,
                    events=list(lifecycle.EVENT_TYPES),  # payments only: no business.updated
                    allow_private=True,
                )
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coinpay.test") as client:
            yield Harness(gw, client, clock, business_id, test_key, live_key, secret)


@pytest.fixture
async def harness(db_url: str, webhook_sink: WebhookSink) -> AsyncIterator[Harness]:
    async for h in make_harness(db_url, webhook_sink.url):
        yield h


__all__ = ["ABANDON", "Family", "Harness", "WebhookSink", "make_harness"]
