"""`keel serve`'s root in headless Chromium: the front door lists what is mounted and its links
lead there, an unknown path is a readable 404 page with a way home, and an empty index's search
page says how to fill it. Every page must render under its CSP without a console error."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import watch

if TYPE_CHECKING:
    from playwright.sync_api import Page

TIMEOUT_MS = 10_000


@pytest.mark.e2e
def test_front_door_lists_products_and_its_links_lead_there(
    live_keel: str, page: Page, tmp_path: Path
) -> None:
    failures = watch(page, expected_404s=set())
    try:
        reply = page.goto(f"{live_keel}/", wait_until="load")
        assert reply is not None
        assert reply.status == 200
        assert page.title() == "Keel"
        assert page.inner_text("h1") == "Keel"
        names = [h.inner_text() for h in page.query_selector_all("section.product h2")]
        assert names == ["coinpay", "bittorrented"]
        coinpay = page.inner_text("#product-coinpay")
        assert "/coinpay/pay/{payment_id}" in coinpay
        hrefs = {
            a.inner_text(): a.get_attribute("href")
            for a in page.query_selector_all("#product-bittorrented a")
        }
        assert hrefs["Search page"] == "/bittorrented/"
        assert hrefs["API docs"] == "/bittorrented/docs"
        operations = page.inner_text("#operations")
        for path in ("/healthz", "/readyz", "/metrics"):
            assert path in operations
        # The stylesheet applied (a CSP refusal would leave the page unstyled).
        background = page.eval_on_selector("section", "s => getComputedStyle(s).backgroundColor")
        assert background == "rgb(255, 255, 255)"
        page.screenshot(path=str(tmp_path / "front-door.png"), full_page=True)

        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.click("#product-bittorrented >> text=Search page")
        assert page.url == f"{live_keel}/bittorrented/"
        assert page.title() == "bittorrented search"

        page.go_back(wait_until="load")
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.click("#operations >> text=/healthz")
        assert '"status":"ok"' in page.content()
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / "front-door-final.png"), full_page=True)


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/no/such/page", "/coinpay/nope", "/bittorrented/nope"])
def test_unknown_path_is_a_readable_404_page_with_a_way_home(
    live_keel: str, page: Page, tmp_path: Path, path: str
) -> None:
    failures = watch(page, expected_404s={f"{live_keel}{path}"})
    try:
        reply = page.goto(f"{live_keel}{path}", wait_until="load")
        assert reply is not None
        assert reply.status == 404
        assert reply.headers["content-type"].startswith("text/html")
        assert page.title() == "Not found · Keel"
        assert page.inner_text("h1") == "Page not found"
        assert path in page.inner_text("#not-found")
        page.screenshot(path=str(tmp_path / "not-found.png"), full_page=True)
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.click("#home")
        assert page.url == f"{live_keel}/"
        assert page.title() == "Keel"
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / "not-found-final.png"), full_page=True)


@pytest.mark.e2e
def test_empty_index_search_page_says_how_to_fill_it(
    live_keel: str, page: Page, tmp_path: Path
) -> None:
    failures = watch(page, expected_404s=set())
    try:
        page.goto(f"{live_keel}/bittorrented/", wait_until="load")
        hint = page.inner_text("#empty")
        assert "The index is empty" in hint
        assert "keel bittorrented import FILE" in hint
        assert "keel bittorrented crawl" in hint
        assert page.query_selector("#total") is None  # no bare "0 results"
        page.screenshot(path=str(tmp_path / "empty-search.png"), full_page=True)

        # A search over the empty index still explains it (search.js, the page's script, runs).
        page.fill("#q", "ubuntu")
        with page.expect_navigation(timeout=TIMEOUT_MS):
            page.press("#q", "Enter")
        assert "q=ubuntu" in page.url
        assert "keel bittorrented import FILE" in page.inner_text("#empty")
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / "empty-search-final.png"), full_page=True)
