"""The hosted checkout page shows the status change without reload, in headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import LiveCoinpay

if TYPE_CHECKING:
    from playwright.sync_api import Frame, Page

# The stream polls the database once a second; this leaves room for a slow CI box.
STATUS_TIMEOUT_MS = 10_000


def _status(page: Page, status: str) -> None:
    page.wait_for_selector(f'#status[data-status="{status}"]', timeout=STATUS_TIMEOUT_MS)


@pytest.mark.e2e
def test_checkout_page_follows_the_payment_live(
    live_coinpay: LiveCoinpay, page: Page, tmp_path: Path
) -> None:
    payment = live_coinpay.create_payment()
    checkout_url = f"{live_coinpay.base_url}/pay/{payment['id']}"
    navigations: list[str] = []
    failures: list[str] = []

    def on_navigated(frame: Frame) -> None:
        if frame == page.main_frame:
            navigations.append(frame.url)

    page.on("framenavigated", on_navigated)
    page.on("pageerror", lambda error: failures.append(f"page error: {error}"))
    page.on(
        "response",
        lambda r: (
            failures.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    try:
        # The event stream answers with its headers at once; waiting for them means the page
        # is subscribed before the payment moves.
        with page.expect_response(
            lambda r: r.url == f"{checkout_url}/events", timeout=STATUS_TIMEOUT_MS
        ) as stream:
            page.goto(checkout_url, wait_until="load")
        assert stream.value.status == 200
        assert stream.value.headers["content-type"].startswith("text/event-stream")

        assert page.text_content("#crypto-amount") == payment["crypto_amount"]
        assert page.text_content("#address") == payment["payment_address"]
        page.wait_for_function(
            "() => { const qr = document.querySelector('img.qr');"
            " return qr !== null && qr.complete && qr.naturalWidth > 0; }",
            timeout=STATUS_TIMEOUT_MS,
        )
        _status(page, "pending")
        assert page.text_content("#status") == "Waiting for payment"
        page.evaluate("window.__marker = 1")

        # The customer pays in full; the transfer is seen with no confirmation yet.
        seen = live_coinpay.simulate(
            payment["id"], amount_crypto=payment["crypto_amount"], confirmations=0
        )
        assert seen["status"] == "confirming"
        _status(page, "confirming")
        assert page.text_content("#status") == "Payment seen, confirming"
        assert page.text_content("#detail") == (
            f"0 of {seen['required_confirmations']} confirmations"
        )

        # A block later the same transfer has enough confirmations.
        done = live_coinpay.simulate(payment["id"], tx_hash=seen["tx_hash"], confirmations=6)
        assert done["status"] == "confirmed"
        _status(page, "confirmed")
        assert page.text_content("#status") == "Payment confirmed"

        assert page.evaluate("window.__marker") == 1, "the page was reloaded"
        assert navigations == [checkout_url], navigations
        assert page.url == checkout_url
        assert failures == []
    finally:
        page.screenshot(path=str(tmp_path / "checkout.png"), full_page=True)
