"""Each product's Swagger UI and ReDoc pages, as `keel serve` mounts them: nothing loaded from
another origin, no inline script, every asset served from the product's own mount with its
media type, and the bundles exactly the upstream releases they claim to be."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from keel.core import apidocs
from keel.core.app import create_root_app
from tests.test_root_app import both_products

# The files fastapi-offline 1.7.7 ships, checked byte for byte against the npm releases when
# the pin was chosen (`npm pack swagger-ui-dist@5.32.6 redoc@2.5.3`). Another pin: check again
# and write the new versions and hashes here.
UPSTREAM = {
    "swagger-ui-bundle.js": (
        "swagger-ui-dist@5.32.6",
        "4b5a9b35a1adf37f00d39c0bae23cdb37007e2946240ef035137cc85b4d55349",
    ),
    "swagger-ui.css": (
        "swagger-ui-dist@5.32.6",
        "ca238f7d7c2cf4480c1e77a9c3b9da915ab216e96ffd354e69076560c650c6de",
    ),
    "redoc.standalone.js": (
        "redoc@2.5.3",
        "1320f442151c57c447d3b70c7ffc6c4f86d08464020fe34c8cc5d3164e9944f0",
    ),
}
PAGES = [
    f"/{product}/{page}" for product in ("coinpay", "bittorrented") for page in ("docs", "redoc")
]
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


class Loads(HTMLParser):
    """What a page makes the browser load: script sources, link hrefs, and inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            if named.get("src"):
                self.urls.append(named["src"] or "")
            else:
                self.inline_scripts += 1
        elif tag == "link" and named.get("href"):
            self.urls.append(named["href"] or "")
        elif tag in ("img", "iframe") and named.get("src"):
            self.urls.append(named["src"] or "")


def loads(html: str) -> Loads:
    parser = Loads()
    parser.feed(html)
    parser.close()
    return parser


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_root_app(both_products(tmp_path)))
    async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
        yield client


@pytest.mark.parametrize("path", PAGES)
async def test_docs_page_loads_nothing_from_another_origin(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "http://" not in page.text
    assert "https://" not in page.text
    found = loads(page.text)
    assert found.inline_scripts == 0
    assert found.urls  # the page does load its bundle
    product = path.split("/")[1]
    for url in found.urls:
        assert url.startswith(f"/{product}{apidocs.ASSETS_PATH}/"), url


@pytest.mark.parametrize("path", PAGES)
async def test_docs_page_csp_allows_scripts_from_this_origin_only(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    directives = {}
    for part in page.headers["content-security-policy"].split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert page.headers["x-content-type-options"] == "nosniff"  # the product's own headers


@pytest.mark.parametrize("path", PAGES)
async def test_every_asset_a_docs_page_references_is_served_with_its_media_type(
    client: httpx.AsyncClient, path: str
) -> None:
    page = await client.get(path)
    for url in loads(page.text).urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"] == MEDIA_TYPES[Path(url).suffix], url
        assert asset.content.strip(), url


@pytest.mark.parametrize("product", ["coinpay", "bittorrented"])
async def test_docs_pages_point_at_the_products_openapi_document(
    client: httpx.AsyncClient, product: str
) -> None:
    swagger = (await client.get(f"/{product}/docs")).text
    redoc = (await client.get(f"/{product}/redoc")).text
    assert f"&#34;url&#34;: &#34;/{product}/openapi.json&#34;" in swagger  # in data-config
    assert f'<redoc spec-url="/{product}/openapi.json">' in redoc
    document = await client.get(f"/{product}/openapi.json")
    assert document.status_code == 200
    assert document.json()["info"]["title"] == f"Keel {product}"


async def test_an_unchanged_asset_is_a_304_and_an_unknown_one_a_404(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/coinpay/docs-assets/swagger-ui.css")
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = await client.get(
        "/coinpay/docs-assets/swagger-ui.css", headers={"If-None-Match": f'W/"x", {etag}'}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert (await client.get("/coinpay/docs-assets/favicon.png")).status_code == 404
    assert (await client.get("/coinpay/docs-assets/..%2Fapidocs.py")).status_code == 404


async def test_fastapis_cdn_pages_and_oauth2_redirect_are_gone(client: httpx.AsyncClient) -> None:
    for product in ("coinpay", "bittorrented"):
        assert (await client.get(f"/{product}/docs/oauth2-redirect")).status_code == 404
        page = await client.get(f"/{product}/docs")
        assert "cdn.jsdelivr.net" not in page.text


def test_bundles_are_the_upstream_releases() -> None:
    for name, (_release, sha256) in UPSTREAM.items():
        source, _media_type = apidocs.SOURCES[name]
        assert hashlib.sha256(source.read_bytes()).hexdigest() == sha256, name


def test_served_redoc_asks_redocly_for_nothing() -> None:
    served = apidocs.load("redoc.standalone.js").body
    assert apidocs.REDOCLY_LOGO not in served
    assert b"cdn.redoc.ly" not in served
    source, _ = apidocs.SOURCES["redoc.standalone.js"]
    assert len(served) == len(source.read_bytes()) - len(apidocs.REDOCLY_LOGO) + len(b"data:,")


def test_every_asset_ships_and_is_not_empty() -> None:
    for name in apidocs.SOURCES:
        assert apidocs.load(name).body.strip(), name


async def test_install_follows_the_apps_own_urls() -> None:
    app = FastAPI(title="shop", docs_url="/reference", redoc_url=None)
    apidocs.install(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        page = await client.get("/reference")
        assert page.status_code == 200
        assert 'href="/docs-assets/swagger-ui.css"' in page.text
        assert (await client.get("/redoc")).status_code == 404
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/docs-assets/swagger-ui-init.js")).status_code == 200


def test_install_adds_nothing_to_an_app_without_docs() -> None:
    app = FastAPI(title="quiet", docs_url=None, redoc_url=None)
    before = [getattr(route, "path", None) for route in app.routes]
    apidocs.install(app)
    assert [getattr(route, "path", None) for route in app.routes] == before
