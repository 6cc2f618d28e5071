"""The roadmaps app gives every request a CSP nonce and its responses the security headers."""

from __future__ import annotations

import httpx
from fastapi import Request
from fastapi.responses import HTMLResponse

from keel.roadmaps.app import create_app
from keel.roadmaps.settings import RoadmapsSettings


def _client(settings: RoadmapsSettings) -> httpx.AsyncClient:
    app = create_app(settings).app

    @app.get("/probe")
    async def probe(request: Request) -> HTMLResponse:
        return HTMLResponse(f"<p>{request.state.csp_nonce}</p>")

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_pages_carry_the_nonce_their_policy_names() -> None:
    async with _client(RoadmapsSettings()) as client:
        page = await client.get("/probe")
        stylesheet = await client.get("/static/app.css")
    nonce = page.text.removeprefix("<p>").removesuffix("</p>")
    assert f"script-src 'nonce-{nonce}' 'strict-dynamic'" in page.headers["content-security-policy"]
    assert (
        stylesheet.headers["content-security-policy"]
        == "default-src 'none'; frame-ancestors 'none'"
    )
    for response in (page, stylesheet):
        assert response.headers["cross-origin-opener-policy"] == "same-origin"
        assert "strict-transport-security" not in response.headers


async def test_behind_https_browsers_are_told_to_stay_there() -> None:
    async with _client(RoadmapsSettings(secure_cookies=True)) as client:
        page = await client.get("/probe")
    assert page.headers["strict-transport-security"] == "max-age=31536000"
