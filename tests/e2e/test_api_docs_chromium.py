"""Each product's API docs in headless Chromium with no network beyond the server: Swagger UI
and ReDoc load every asset from `keel serve`, render every operation of the product's OpenAPI
document, and do so under their CSP without a console error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

TIMEOUT_MS = 15_000
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def offline_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    """A desktop-sized page whose every request to anything but 127.0.0.1 is refused (and
    listed): the docs must not need the internet."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", only_loopback)
    try:
        yield context.new_page(), refused
    finally:
        context.close()


def operations(base_url: str, product: str) -> list[tuple[str, str]]:
    """``(METHOD, path)`` of every operation in the product's OpenAPI document."""
    document: dict[str, Any] = httpx.get(f"{base_url}/{product}/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("product", ["coinpay", "bittorrented"])
def test_swagger_ui_renders_every_operation_offline(
    live_keel: str, offline_page: tuple[Page, list[str]], tmp_path: Path, product: str
) -> None:
    page, refused = offline_page
    failures = watch(page, expected_404s=set())
    expected = operations(live_keel, product)
    try:
        reply = page.goto(f"{live_keel}/{product}/docs", wait_until="load")
        assert reply is not None
        assert reply.status == 200
        page.wait_for_selector(".opblock-summary-path", timeout=TIMEOUT_MS)
        shown = [
            (
                block.locator(".opblock-summary-method").inner_text(),
                block.locator(".opblock-summary-path").get_attribute("data-path"),
            )
            for block in page.locator(".opblock").all()
        ]
        assert sorted(shown) == sorted(expected)
        assert page.inner_text(".info .title").startswith(f"Keel {product}")
        if product == "coinpay":
            assert ("POST", "/api/payments/create") in shown
            # "Try it out" calls the API through the page's server entry (/coinpay), which
            # the CSP's connect-src allows.
            page.click('.opblock-summary-path[data-path="/api/rates"]')
            rates = page.locator(".opblock.is-open")
            rates.locator("button.try-out__btn").click()
            rates.locator('tr[data-param-name="crypto"] select').select_option("BTC")
            rates.locator("button.execute").click()
            status = rates.locator(".live-responses-table tr.response .response-col_status").first
            status.wait_for(timeout=TIMEOUT_MS)
            assert status.inner_text().strip() == "200"
            assert "/coinpay/api/rates?crypto=BTC" in rates.locator(".request-url").inner_text()
        page.screenshot(path=str(tmp_path / f"{product}-swagger-ui.png"), full_page=False)
        assert refused == []
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / f"{product}-swagger-ui-final.png"))


@pytest.mark.e2e
@pytest.mark.parametrize("product", ["coinpay", "bittorrented"])
def test_redoc_renders_every_operation_offline(
    live_keel: str, offline_page: tuple[Page, list[str]], tmp_path: Path, product: str
) -> None:
    page, refused = offline_page
    failures = watch(page, expected_404s=set())
    expected = operations(live_keel, product)
    try:
        reply = page.goto(f"{live_keel}/{product}/redoc", wait_until="load")
        assert reply is not None
        assert reply.status == 200
        page.wait_for_selector("h1", timeout=TIMEOUT_MS)
        assert page.inner_text("h1").startswith(f"Keel {product}")
        # ReDoc writes "METHOD /path" in each operation's right-hand panel.
        panel = page.inner_text(".api-content")
        for method, path in expected:
            assert path in panel, (method, path)
        # Search runs in a worker ReDoc builds from a blob: URL (the CSP's worker-src).
        page.fill(
            'input[placeholder="Search..."]', "torrent" if product == "bittorrented" else "payment"
        )
        page.wait_for_selector('[data-role="search:results"] li', timeout=TIMEOUT_MS)
        page.screenshot(path=str(tmp_path / f"{product}-redoc.png"), full_page=False)
        assert refused == []
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / f"{product}-redoc-final.png"))
