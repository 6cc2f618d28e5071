"""The HTML search page without a browser: rows, totals, paging, escaping, headers, errors.
(tests/e2e/test_bittorrented_search_page.py drives it in Chromium.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape

import httpx
import pytest

from keel.bittorrented.app import create_app
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.web.search import human_size
from keel.core.app import create_root_app
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW
from tests.bittorrented.test_torznab import Api, release, seed

_NAME = re.compile(r'<td class="name">(.*?)</td>')
_NEXT = re.compile(r'<a class="next" href="([^"]+)"')


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    settings = BittorrentedSettings(database_url=db_url, count_cap=100)
    product = create_app(settings, clock=FrozenClock(NOW))
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            yield Api(client, product.app.state.indexer)


def names(html: str) -> list[str]:
    return [unescape(n) for n in _NAME.findall(html)]


async def test_page_lists_matches_with_sizes_and_magnets(api: Api) -> None:
    await seed(
        api.indexer,
        [
            release("Debian 12 netinst", seeders=5, size=650 * 2**20, leechers=2),
            release("Debian 11 DVD", seeders=9, size=int(3.7 * 2**30), age_days=400),
            release("Fedora 40", seeders=50),
        ],
    )
    reply = await api.client.get("/", params={"q": "debian", "sort": "seeders"})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    html = reply.text
    assert names(html) == ["Debian 11 DVD", "Debian 12 netinst"]
    assert '<p id="total" class="total">2 results</p>' in html
    assert ">3.7 GiB<" in html
    assert ">650.0 MiB<" in html
    assert 'href="magnet:?xt=urn:btih:' in html
    assert '<option value="seeders" selected>' in html
    assert "2025-10-27" in html  # 400 days before NOW, as a date


async def test_names_are_escaped_never_markup(api: Api) -> None:
    await seed(api.indexer, [release('<script>alert("pwned")</script><img src=x onerror=y>')])
    html = (await api.client.get("/", params={"q": "script"})).text
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert names(html) == ['<script>alert("pwned")</script><img src=x onerror=y>']


async def test_page_headers_lock_scripts_to_our_origin(api: Api) -> None:
    reply = await api.client.get("/")
    csp = reply.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    assert reply.headers["x-content-type-options"] == "nosniff"  # from the core middleware
    assert reply.headers["x-frame-options"] == "DENY"
    for asset, kind in (("search.css", "text/css"), ("search.js", "text/javascript")):
        got = await api.client.get(f"/assets/{asset}")
        assert got.status_code == 200
        assert got.headers["content-type"].startswith(kind)
    assert (await api.client.get("/assets/..%2Fsearch.py")).status_code == 404


async def test_next_page_links_walk_every_match_once(api: Api) -> None:
    await seed(api.indexer, [release(f"Walk {i}", seeders=i % 4) for i in range(160)])
    first = await api.client.get("/", params={"q": "walk", "sort": "seeders"})
    # Past count_cap the total is an estimate (PostgreSQL's planner may say more than the cap).
    assert re.search(r'<p id="total" class="total">About [0-9,]+ results</p>', first.text)
    seen: list[str] = []
    html = first.text
    while True:
        seen += names(html)
        link = _NEXT.search(html)
        if link is None:
            break
        html = (await api.client.get("/" + unescape(link.group(1)))).text
        assert 'class="first"' in html
    assert len(seen) == len(set(seen)) == 160


async def test_type_filter_and_empty_query_browse_newest(api: Api) -> None:
    await seed(
        api.indexer,
        [
            release("Old Movie", content_type=ContentType.MOVIE, age_days=9),
            release("New Movie", content_type=ContentType.MOVIE, age_days=1),
            release("An Album", content_type=ContentType.MUSIC, age_days=0),
        ],
    )
    assert names((await api.client.get("/")).text) == ["An Album", "New Movie", "Old Movie"]
    html = (await api.client.get("/", params={"type": "movie"})).text
    assert names(html) == ["New Movie", "Old Movie"]
    assert '<option value="movie" selected>' in html


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"q": "a | -b"}, 400, "excludes a whole"),
        ({"cursor": "garbage"}, 400, "cursor"),
        ({"sort": "random"}, 400, "Unknown sort"),
        ({"type": "films"}, 400, "Unknown type"),
    ],
)
async def test_bad_input_is_explained_on_the_page(
    api: Api, params: dict[str, str], status: int, says: str
) -> None:
    reply = await api.client.get("/", params=params)
    assert reply.status_code == status
    assert reply.headers["content-type"].startswith("text/html")
    problem = re.search(r'<p id="problem"[^>]*>(.*?)</p>', reply.text)
    assert problem is not None
    assert says in unescape(problem.group(1))


_EMPTY = re.compile(r'<section id="empty".*?</section>', re.DOTALL)


@pytest.mark.parametrize("params", [{}, {"q": "ubuntu"}, {"type": "movie", "sort": "seeders"}])
async def test_an_empty_index_says_how_to_fill_it(api: Api, params: dict[str, str]) -> None:
    reply = await api.client.get("/", params=params)
    assert reply.status_code == 200
    hint = _EMPTY.search(reply.text)
    assert hint is not None
    text = unescape(hint.group(0))
    assert "keel bittorrented import FILE" in text
    assert "keel bittorrented crawl" in text
    assert 'id="total"' not in reply.text  # no bare "0 results"


async def test_a_query_without_hits_on_a_filled_index_is_just_zero_results(api: Api) -> None:
    await seed(api.indexer, [release("Debian 12 netinst")])
    for params in ({"q": "fedora"}, {"type": "movie"}):
        html = (await api.client.get("/", params=params)).text
        assert '<p id="total" class="total">0 results</p>' in html
        assert 'id="empty"' not in html
    assert names((await api.client.get("/")).text) == ["Debian 12 netinst"]


async def test_the_empty_index_hint_says_when_the_crawler_is_filling_it(api: Api) -> None:
    assert "crawler is running" not in (await api.client.get("/")).text
    # As if `keel serve` ran the crawler beside the page (KEEL_BITTORRENTED_CRAWL=true).
    settings = api.indexer.settings
    api.indexer.settings = settings.model_copy(update={"crawl": True, "run_workers": True})
    html = (await api.client.get("/")).text
    assert "crawler is running" in html
    assert "keel bittorrented import FILE" in html


def test_human_sizes_use_binary_units() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1024) == "1.0 KiB"
    assert human_size(int(1.5 * 2**30)) == "1.5 GiB"
    assert human_size(2**70) == "1024.0 EiB"


async def test_links_keep_the_mount_prefix_under_keel_serve(db_url: str) -> None:
    product = create_app(BittorrentedSettings(database_url=db_url, api_key="k"))
    root = create_root_app([product])
    async with product.lifespan():
        transport = httpx.ASGITransport(app=root)
        async with httpx.AsyncClient(transport=transport, base_url="http://keel.test") as client:
            page = (await client.get("/bittorrented/")).text
            saved = await client.post(
                "/bittorrented/api/saved-searches",
                json={"name": "n", "q": "x"},
                headers={"x-api-key": "k"},
            )
            feed_url = saved.json()["saved_search"]["feed_url"]
            feed = (await client.get(feed_url)).text
            caps = (await client.get("/bittorrented/torznab/api", params={"t": "caps"})).text
    prefix = "http://keel.test/bittorrented/"
    assert f'href="{prefix}assets/search.css"' in page
    assert f'action="{prefix}"' in page
    assert feed_url.startswith(f"{prefix}feeds/")
    assert f"<link>{prefix}?q=x</link>" in feed
    assert f'url="{prefix}"' in caps
