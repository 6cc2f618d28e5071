"""coach boots on the embedded default (SQLite, migrated) with no bot token, answers its
readiness probe and its status page, and refuses webhook updates it was not set up for."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from keel.coach.app import create_app
from keel.coach.settings import CoachSettings


async def test_the_product_migrates_and_is_ready_without_a_token(tmp_path: Path) -> None:
    product = create_app(CoachSettings(), data_dir=str(tmp_path))
    async with product.lifespan():
        assert await product.ready()
        assert product.detail is not None
        assert (await product.detail())["bot"].startswith("off")
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://coach") as client:
            status = await client.get("/api/status")
            assert status.status_code == 200
            assert status.json()["overall"] in ("ok", "degraded")
            page = await client.get("/status")
            assert page.status_code == 200
            assert "text/html" in page.headers["content-type"]
            refused = await client.post("/telegram/webhook", json={"update_id": 1})
            assert refused.status_code == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
    assert (tmp_path / "coach.db").exists()


def test_settings_refuse_what_cannot_work() -> None:
    with pytest.raises(ValidationError, match="public_url"):
        CoachSettings(mode="webhook")
    with pytest.raises(ValidationError, match="https"):
        CoachSettings(mode="webhook", public_url="http://plain.example.org")
    with pytest.raises(ValidationError, match="price_eth must be a decimal"):
        CoachSettings(price_eth="cheap")
    with pytest.raises(ValidationError, match="price_usd must be positive"):
        CoachSettings(price_usd="-1")
    assert CoachSettings(mode="webhook", public_url="https://coach.example.org").mode == "webhook"
