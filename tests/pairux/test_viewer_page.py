"""The viewer page is served by the pairux app itself: no CDN, a strict CSP, a manifest."""

from __future__ import annotations

from tests.pairux.conftest import Server


async def test_the_page_and_its_modules_are_served_from_the_app(sqlite_server: Server) -> None:
    http = sqlite_server.http
    for path in ("/pairux/", "/pairux/join"):
        page = await http.get(path)
        assert page.status_code == 200
        assert 'src="static/viewer.js"' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")
    for module in ("viewer.js", "input.js", "cursors.js", "viewer.css"):
        reply = await http.get(f"/pairux/static/{module}")
        assert reply.status_code == 200, module
        assert "https://" not in reply.text, module  # nothing from elsewhere: works offline
    manifest = await http.get("/pairux/manifest.webmanifest")
    assert manifest.json()["display"] == "standalone"


async def test_the_page_comes_back_after_the_server_closes_its_socket(
    sqlite_server: Server,
) -> None:
    """A server restart closes every socket (1012): the page reconnects with its token and
    keeps its seat; no WebRTC is involved (no host agent joins)."""
    from playwright.async_api import async_playwright

    from tests.conftest import need_service
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        need_service(f"Chromium at {CHROMIUM}")
    room = await sqlite_server.create("Hana")
    hub = sqlite_server.product.app.state.pairux.hub
    room_id = room["room"]["id"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{sqlite_server.base}/pairux/")
            await page.fill("#code", room["room"]["code"])
            await page.fill("#name", "Vic")
            await page.click("#join-button")
            # Selectors, not script: the page's CSP forbids evaluating strings.
            await page.get_by_text("Waiting for the host").wait_for()
            viewers = hub.connected(room_id)
            assert len(viewers) == 1  # the page (the host is not connected)
            hub.close_all()
            await page.get_by_text("Reconnecting").wait_for()
            await page.get_by_text("Waiting for the host").wait_for(timeout=10_000)
            assert hub.connected(room_id) == viewers  # the same participant, back
        finally:
            await browser.close()
