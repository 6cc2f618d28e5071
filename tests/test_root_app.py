"""`keel serve`'s root app: products mounted, shared probes and metrics, request ids."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from keel.bittorrented.app import create_app as create_bittorrented
from keel.bittorrented.settings import BittorrentedSettings
from keel.coinpay.app import create_app
from keel.coinpay.settings import CoinpaySettings
from keel.core.app import create_root_app
from keel.core.crypto import new_key


async def test_root_app_serves_probes_metrics_and_mounted_products(tmp_path: Path) -> None:
    product = create_app(
        CoinpaySettings(master_key=new_key(), run_workers=True), data_dir=str(tmp_path)
    )
    root = create_root_app([product])
    transport = httpx.ASGITransport(app=root)
    async with (
        product.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"coinpay": True}
        unknown = await client.get(
            "/coinpay/api/payments/nope", headers={"X-Request-ID": "req-123"}
        )
        assert unknown.status_code == 401
        assert unknown.headers["X-Request-ID"] == "req-123"
        assert unknown.json()["request_id"] == "req-123"
        generated = await client.get("/coinpay/api/rates?crypto=BTC")
        assert len(generated.headers["X-Request-ID"]) == 32
        metrics = (await client.get("/metrics")).text
        assert "keel_http_request_duration_seconds" in metrics
        assert 'app="coinpay",method="GET",route="/rates"' in metrics  # template, not the URL
    assert (tmp_path / "coinpay.db").exists()


async def test_readyz_is_503_before_the_product_started(tmp_path: Path) -> None:
    product = create_app(CoinpaySettings(master_key=new_key()), data_dir=str(tmp_path))
    transport = httpx.ASGITransport(app=create_root_app([product]))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503


async def test_every_product_gets_the_limits_and_problem_404s(tmp_path: Path) -> None:
    product = create_app(
        CoinpaySettings(master_key=new_key(), run_workers=False), data_dir=str(tmp_path)
    )
    transport = httpx.ASGITransport(app=create_root_app([product], max_body_bytes=2**20))
    async with (
        product.lifespan(),
        httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client,
    ):
        body = b'{"amount": "1", "padding": "' + b"a" * (10 * 2**20) + b'"}'
        huge = await client.post(
            "/coinpay/api/payments/create",
            content=body,
            headers={"content-type": "application/json", "authorization": "Bearer cp_test_x"},
        )
        assert huge.status_code == 413
        assert huge.headers["content-type"] == "application/problem+json"
        assert huge.json()["success"] is False  # coinpay's own error shape
        for path in ("/nope", "/coinpayx", "/%0A"):
            missing = await client.get(path)
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
        # A newline in the path still reaches the product (which asks for a key first).
        inside = await client.get("/coinpay/api/payments/x%0Ay")
        assert inside.status_code == 401
        assert inside.json()["success"] is False


async def test_a_405_under_the_root_allows_exactly_the_documented_methods(
    tmp_path: Path,
) -> None:
    products = [
        create_app(
            CoinpaySettings(master_key=new_key(), run_workers=False), data_dir=str(tmp_path)
        ),
        create_bittorrented(BittorrentedSettings(run_workers=False), data_dir=str(tmp_path)),
    ]
    transport = httpx.ASGITransport(app=create_root_app(products))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        for product in products:
            for path, operations in product.app.openapi()["paths"].items():
                documented = {m.upper() for m in operations}
                concrete = re.sub(r"\{[^}]+\}", "x", path)
                reply = await client.request("TRACE", f"/{product.name}{concrete}")
                assert reply.status_code == 405, path
                assert reply.headers["content-type"] == "application/problem+json"
                assert set(reply.headers["allow"].split(", ")) == documented, path
