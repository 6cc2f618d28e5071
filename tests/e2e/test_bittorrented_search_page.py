"""The search page in headless Chromium against bittorrented under a real uvicorn: search,
re-sort, page on, and a hostile torrent name that must stay text."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from keel.bittorrented.app import create_app
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.settings import BittorrentedSettings
from keel.core.app import Product
from tests.bittorrented.test_torznab import release, seed
from tests.e2e.conftest import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

TIMEOUT_MS = 10_000
HOSTILE = "Ubuntu <script>window.__xss = 1</script><img src=x onerror='window.__xss = 2'>"
# 31 matches: one page of 25 and a second of 6. Names differ in length and seeders differ, so
# "best match" (fewer words first) and "most seeders" give different orders.
MATCHES = [
    (f"Ubuntu {24 - i % 3}.04 {'Desktop ' * (i % 4)}amd64 build {i}", (i * 37) % 101, i)
    for i in range(30)
]


async def _seed(product: Product) -> None:
    async with product.lifespan():
        await seed(
            product.app.state.indexer,
            [
                release(
                    name,
                    content_type=ContentType.SOFTWARE,
                    seeders=seeders,
                    leechers=seeders // 3,
                    size=(i + 1) * 700 * 2**20,
                    age_days=i,
                )
                for name, seeders, i in MATCHES
            ]
            + [
                release(HOSTILE, seeders=1, size=4096),
                release("Fedora Workstation 40", seeders=500),
                release("Debian 12 netinst", seeders=400),
            ],
        )


@pytest.fixture
def live_bittorrented(tmp_path: Path) -> Iterator[str]:
    """bittorrented on a seeded SQLite database under uvicorn on loopback; its base URL."""
    product = create_app(
        BittorrentedSettings(database_url=f"sqlite+aiosqlite:///{tmp_path}/bt.db"),
        data_dir=str(tmp_path),
    )
    asyncio.run(_seed(product))
    with serve(product.app, name="bittorrented") as base_url:
        yield base_url


@pytest.fixture
def wide_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _column(page: Page, name: str) -> list[str]:
    return [cell.inner_text() for cell in page.query_selector_all(f"#results tbody td.{name}")]


@pytest.mark.e2e
def test_search_sort_and_page_in_chromium(
    live_bittorrented: str, wide_page: Page, tmp_path: Path
) -> None:
    page = wide_page
    failures: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on(
        "console",
        lambda m: (
            failures.append(f"console {m.type}: {m.text} at {m.location.get('url')}")
            if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{live_bittorrented}/", wait_until="load")
        assert page.title() == "bittorrented search"

        # Type a query and submit it with Enter.
        page.fill("#q", "ubuntu")
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.press("#q", "Enter")
        assert page.inner_text("#total") == "31 results"
        best = _column(page, "name")
        assert len(best) == 25
        assert all("ubuntu" in name.lower() for name in best)
        assert "Fedora Workstation 40" not in best
        assert page.eval_on_selector("#sort", "s => s.value") == "relevance"

        # Changing the sort re-runs the search (search.js submits the form).
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.select_option("#sort", "seeders")
        assert "sort=seeders" in page.url
        by_seeders = _column(page, "name")
        seeders = [int(s) for s in _column(page, "seeders")]
        assert by_seeders != best
        assert seeders == sorted(seeders, reverse=True)
        assert seeders[0] == max(s for _, s, _ in MATCHES)
        assert all(size.endswith(("MiB", "GiB")) for size in _column(page, "size"))
        magnet = page.get_attribute("#results tbody tr:first-child a.magnet", "href")
        assert magnet is not None
        assert magnet.startswith("magnet:?xt=urn:btih:")
        page.screenshot(path=str(tmp_path / "search-by-seeders.png"), full_page=True)

        # The next page carries on where the first stopped, in the same order.
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.click("a.next")
        rest = _column(page, "name")
        rest_seeders = [int(s) for s in _column(page, "seeders")]
        assert len(rest) == 6
        assert not set(rest) & set(by_seeders)
        assert rest_seeders == sorted(rest_seeders, reverse=True)
        assert max(rest_seeders) <= min(seeders)
        assert page.query_selector("a.next") is None
        assert page.query_selector("a.first") is not None

        # A name full of markup is shown as text and runs nothing.
        page.fill("#q", "xss")
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.press("#q", "Enter")
        assert _column(page, "name") == [HOSTILE]
        assert page.evaluate("window.__xss") is None
        assert page.query_selector("#results img") is None
        assert dialogs == []
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / "search-final.png"), full_page=True)
