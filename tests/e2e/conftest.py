"""Browser tests' fixtures: a real app served over HTTP on loopback (``serve``; coinpay's is
``live_coinpay``, both products under `keel serve`'s root ``live_keel``), headless Chromium,
and ``watch``, which collects what went wrong in a page.

The browser needs a real server (Server-Sent Events over a socket), so coinpay runs under
uvicorn in a thread with its own event loop; the database is seeded beforehand, through the
Product's own lifespan on a throwaway loop, into the same SQLite file. Chromium is Debian's
(``/usr/bin/chromium``), driven by Playwright's sync API (no ``playwright install``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from keel.bittorrented.app import create_app as create_bittorrented
from keel.bittorrented.settings import BittorrentedSettings
from keel.coinpay.app import create_app
from keel.coinpay.gateway import Gateway
from keel.coinpay.settings import CoinpaySettings
from keel.core.app import Product, create_root_app
from keel.core.clock import SystemClock
from keel.core.crypto import new_key
from tests.coinpay.conftest import seed_merchant
from tests.conftest import need_service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("KEEL_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 15.0


@dataclass(frozen=True)
class LiveCoinpay:
    """A coinpay answering on ``base_url``, with one merchant and its test key."""

    base_url: str
    business_id: str
    test_key: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.test_key}"},
            timeout=10.0,
        )

    def create_payment(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "business_id": self.business_id,
            "amount": "100.00",
            "currency": "USD",
            "blockchain": "BTC",
            "description": "Order 42",
        }
        body.update(overrides)
        with self.client() as client:
            response = client.post("/api/payments/create", json=body)
        assert response.status_code == 201, response.text
        payment: dict[str, Any] = response.json()["payment"]
        return payment

    def simulate(self, payment_id: str, **body: Any) -> dict[str, Any]:
        with self.client() as client:
            response = client.post(f"/api/payments/{payment_id}/simulate", json=body)
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()["payment"]
        return payment


async def _seed(product: Product) -> tuple[str, str]:
    """A business receiving every coin (payout wallets like the harness's) and a test key."""
    clock = SystemClock()
    async with product.lifespan():
        gw: Gateway = product.app.state.gateway
        return await seed_merchant(gw, clock)


@contextmanager
def serve(app: ASGIApp, *, name: str) -> Iterator[str]:
    """Serve ``app`` under uvicorn (lifespan on) on 127.0.0.1 at a free port, in a thread;
    yields its base URL and shuts it down afterwards."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_level="warning",
            access_log=False,
            # An open event stream must not hold the shutdown up.
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-uvicorn", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not server.started:
            if not thread.is_alive():
                pytest.fail("uvicorn exited during startup (see the captured log)")
            if time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start within {SERVER_START_SECONDS} s")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture
def live_coinpay(tmp_path: Path) -> Iterator[LiveCoinpay]:
    """coinpay on SQLite under uvicorn on 127.0.0.1 (a free port), shut down afterwards."""
    product = create_app(
        CoinpaySettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path}/coinpay.db",
            master_key=new_key(),
            webhook_allow_private=True,
            run_workers=False,
            rates="fixture",  # no network, whatever the environment says
        ),
        run_workers=False,
    )
    business_id, test_key = asyncio.run(_seed(product))
    with serve(product.app, name="coinpay") as base_url:
        yield LiveCoinpay(base_url, business_id, test_key)


@pytest.fixture
def live_keel(tmp_path: Path) -> Iterator[str]:
    """Both products, as `keel serve` mounts them, on empty SQLite databases; the base URL."""
    products = [
        create_app(
            CoinpaySettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path}/coinpay.db",
                master_key=new_key(),
                run_workers=False,
                rates="fixture",
            ),
            data_dir=str(tmp_path),
            run_workers=False,
        ),
        create_bittorrented(
            BittorrentedSettings(
                database_url=f"sqlite+aiosqlite:///{tmp_path}/bt.db",
                run_workers=False,
                crawl=False,
            ),
            data_dir=str(tmp_path),
        ),
    ]
    with serve(create_root_app(products), name="keel") as base_url:
        yield base_url


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium. Missing: skipped locally, a failure in CI."""
    if not CHROMIUM.exists():
        need_service(f"Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need_service("the playwright Python package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 520, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def watch(page: Page, *, expected_404s: set[str]) -> list[str]:
    """What went wrong in the page: script errors, console errors (a CSP refusal is one), and
    any 4xx or 5xx reply other than the 404s the test asks for."""
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: (
            failures.append(f"console {m.type}: {m.text} at {m.location.get('url')}")
            if m.type == "error"
            and not m.location.get("url", "").endswith("/favicon.ico")
            and m.location.get("url") not in expected_404s  # "Failed to load resource: 404"
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.url}")
            if r.status >= 400
            and not r.url.endswith("/favicon.ico")
            and not (r.status == 404 and r.url in expected_404s)
            else None
        ),
    )
    return failures
