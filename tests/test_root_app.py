"""`keel serve`'s root app: products mounted, shared probes and metrics, request ids."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from keel.bittorrented.app import create_app as create_bittorrented
from keel.bittorrented.settings import BittorrentedSettings
from keel.coinpay.app import create_app
from keel.coinpay.settings import CoinpaySettings
from keel.core.app import Product, create_root_app, listing
from keel.core.crypto import new_key
from keel.core.pages import Link


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
        for path in ("/nope", "/coinpayx", "/%0A", "/healthz%0A"):
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


BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
_HREF = re.compile(r'<a[^>]* href="([^"]+)"')


def both_products(tmp_path: Path) -> list[Product]:
    return [
        create_app(
            CoinpaySettings(master_key=new_key(), run_workers=False), data_dir=str(tmp_path)
        ),
        create_bittorrented(
            BittorrentedSettings(
                run_workers=False, database_url=f"sqlite+aiosqlite:///{tmp_path}/bt.db"
            ),
            data_dir=str(tmp_path),
        ),
    ]


@asynccontextmanager
async def serving(products: list[Product]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_root_app(products))
    async with AsyncExitStack() as stack:
        for product in products:
            await stack.enter_async_context(product.lifespan())
        yield await stack.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url="http://keel.test")
        )


async def test_the_front_door_lists_each_mounted_product_and_every_link_works(
    tmp_path: Path,
) -> None:
    async with serving(both_products(tmp_path)) as client:
        door = await client.get("/")
        assert door.status_code == 200
        assert door.headers["content-type"] == "text/html; charset=utf-8"
        links = _HREF.findall(door.text)
        assert links == [
            "/coinpay/docs",
            "/coinpay/redoc",
            "/coinpay/openapi.json",
            "/bittorrented/",
            "/bittorrented/docs",
            "/bittorrented/redoc",
            "/bittorrented/openapi.json",
            "/healthz",
            "/readyz",
            "/metrics",
        ]
        for href in links:
            assert (await client.get(href)).status_code == 200, href
    # coinpay's checkout page needs a payment: shown as its template, not a dead link.
    assert "<code>/coinpay/pay/{payment_id}</code>" in door.text
    assert "Multi-chain crypto payment gateway" in door.text  # the app's own description


async def test_the_front_door_shows_only_what_is_mounted(tmp_path: Path) -> None:
    coinpay, _ = both_products(tmp_path)
    shop = FastAPI(title="shop", description="A <b>shop</b>", docs_url=None, redoc_url=None)

    @asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    async def ready() -> bool:
        return True

    listed = Product(
        name="shop",
        app=shop,
        lifespan=nothing,
        ready=ready,
        links=(Link("Till", "/till", "ring up a sale"), Link("Receipt", "/r/{id}")),
    )
    async with serving([listed]) as client:
        html = (await client.get("/")).text
    assert "coinpay" not in html
    assert "bittorrented" not in html
    assert _HREF.findall(html) == [
        "/shop/till",
        "/shop/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ]
    assert "ring up a sale" in html
    assert "<code>/shop/r/{id}</code>" in html
    assert "A &lt;b&gt;shop&lt;/b&gt;" in html  # descriptions are text
    assert listing(coinpay).links[0].path == "/pay/{payment_id}"


async def test_the_front_door_forbids_scripts_and_framing(tmp_path: Path) -> None:
    async with serving(both_products(tmp_path)[:1]) as client:
        door = await client.get("/")
    csp = door.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert "<script" not in door.text
    assert door.headers["x-content-type-options"] == "nosniff"
    assert door.headers["x-frame-options"] == "DENY"
    assert door.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/nope", "/coinpayx", "/coinpay/nope", "/bittorrented/a/b"])
@pytest.mark.parametrize(
    "accept", [BROWSER, "text/html", "application/json;q=0.5, text/html", "text/*"]
)
async def test_a_browser_gets_a_readable_404_page(tmp_path: Path, path: str, accept: str) -> None:
    async with serving(both_products(tmp_path)) as client:
        reply = await client.get(path, headers={"Accept": accept})
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["vary"] == "Accept"
    assert "default-src 'none'" in reply.headers["content-security-policy"]
    # Once each, whether the product's middleware or the page set them.
    for name, value in (("x-content-type-options", "nosniff"), ("x-frame-options", "DENY")):
        assert reply.headers.get_list(name) == [value]
    assert "<h1>Page not found</h1>" in reply.text
    assert f"<code>{path}</code>" in reply.text
    assert '<a id="home" href="/">' in reply.text


@pytest.mark.parametrize("path", ["/nope", "/coinpay/nope", "/bittorrented/a/b"])
@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/problem+json",
        "text/html;q=0.5, application/json",
        "text/html;q=0",
    ],
)
async def test_an_api_client_gets_problem_json_404s(
    tmp_path: Path, path: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    async with serving(both_products(tmp_path)) as client:
        if accept is None:
            del client.headers["Accept"]  # httpx sends */* by default
        reply = await client.get(path, headers=headers)
    assert reply.status_code == 404
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.headers["vary"] == "Accept"
    body = reply.json()
    assert body["code"] == "not_found"
    assert body["instance"] == path


async def test_a_404_page_shows_a_products_detail_and_escapes_the_path(tmp_path: Path) -> None:
    async with serving(both_products(tmp_path)) as client:
        missing = await client.get("/coinpay/pay/nope", headers={"Accept": BROWSER})
        hostile = await client.get("/<script>alert(1)</script>", headers={"Accept": BROWSER})
    assert missing.status_code == 404
    assert '<p id="detail" class="muted">Payment not found' in missing.text
    assert missing.headers["x-request-id"] in missing.text  # quoted for a bug report
    assert hostile.status_code == 404
    assert "<script>" not in hostile.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile.text


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", BROWSER])
async def test_a_405_stays_problem_json(tmp_path: Path, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    async with serving(both_products(tmp_path)) as client:
        for path in ("/", "/healthz", "/bittorrented/", "/coinpay/api/payments/create"):
            reply = await client.request("PUT", path, headers=headers)
            assert reply.status_code == 405, path
            assert reply.headers["content-type"] == "application/problem+json", path
            assert reply.json()["code"] == "method_not_allowed"
