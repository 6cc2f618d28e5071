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
