"""Saved searches and their RSS feeds over a real app and database: create, read, the feed
(newest first, filtered, escaped, live), delete, and bad input as problem+json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from keel.bittorrented.app import create_app
from keel.bittorrented.feeds import torznab
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import SearchHit
from keel.bittorrented.settings import BittorrentedSettings
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW
from tests.bittorrented.test_torznab import TORZNAB_ATTR, Api, parse_xml, release, seed

KEY = "feeds-key"
GUARD = {"x-api-key": KEY}


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    settings = BittorrentedSettings(database_url=db_url, api_key=KEY)
    product = create_app(settings, clock=FrozenClock(NOW))
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            yield Api(client, product.app.state.indexer)


async def save(api: Api, **body: Any) -> dict[str, Any]:
    reply = await api.client.post("/api/saved-searches", json=body, headers=GUARD)
    assert reply.status_code == 201, reply.text
    saved: dict[str, Any] = reply.json()["saved_search"]
    assert reply.headers["location"] == saved["feed_url"]
    return saved


async def feed(api: Api, saved: dict[str, Any]) -> list[dict[str, str]]:
    reply = await api.client.get(saved["feed_url"])
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/rss+xml")
    rss = parse_xml(reply.content)
    assert rss.tag == "rss"
    assert rss.attrib["version"] == "2.0"
    channel = rss.find("channel")
    assert channel is not None
    assert channel.findtext("title") == saved["name"]
    items = []
    for item in channel.findall("item"):
        enclosure = item.find("enclosure")
        assert enclosure is not None
        assert enclosure.attrib["type"] == "application/x-bittorrent"
        assert enclosure.attrib["url"] == item.findtext("link")
        assert item.find(TORZNAB_ATTR) is not None
        items.append(
            {
                "title": item.findtext("title") or "",
                "guid": item.findtext("guid") or "",
                "pubDate": item.findtext("pubDate") or "",
            }
        )
    return items


async def test_saved_search_feed_lists_newest_matches_and_picks_up_new_torrents(api: Api) -> None:
    await seed(
        api.indexer,
        [
            release("Nature Documentary 2021 1080p", content_type=ContentType.MOVIE, age_days=5),
            release("Nature Documentary Extras", content_type=ContentType.MOVIE, age_days=1),
            release("Nature Sounds FLAC", content_type=ContentType.MUSIC, age_days=0),
            release("Cooking Show", content_type=ContentType.MOVIE, age_days=0),
        ],
    )
    saved = await save(api, name="Nature films", q="nature", type=["movie"])
    assert saved["feed_url"] == f"http://bt.test/feeds/{saved['id']}.rss"
    assert saved["q"] == "nature"
    assert saved["type"] == ["movie"]
    assert len(saved["id"]) >= 22  # 128 random bits

    items = await feed(api, saved)
    assert [i["title"] for i in items] == [
        "Nature Documentary Extras",
        "Nature Documentary 2021 1080p",
    ]
    dates = [parsedate_to_datetime(i["pubDate"]) for i in items]
    assert dates == sorted(dates, reverse=True)

    # Indexed after the search was saved: the next poll shows it first.
    await seed(api.indexer, [release("Nature Walk 4K", content_type=ContentType.MOVIE)])
    assert [i["title"] for i in await feed(api, saved)] == [
        "Nature Walk 4K",
        "Nature Documentary Extras",
        "Nature Documentary 2021 1080p",
    ]

    got = await api.client.get(f"/api/saved-searches/{saved['id']}")
    assert got.status_code == 200
    assert got.json()["saved_search"] == saved


async def test_feed_holds_the_fifty_newest(api: Api) -> None:
    await seed(api.indexer, [release(f"Bulk {i}", age_days=i) for i in range(60)])
    items = await feed(api, await save(api, name="bulk", q="bulk"))
    assert [i["title"] for i in items] == [f"Bulk {i}" for i in range(50)]


async def test_feed_escapes_names_and_titles(api: Api) -> None:
    await seed(api.indexer, [release("Tom & Jerry <script>alert(1)</script>")])
    saved = await save(api, name='Cartoons & "friends" <b>', q="tom")
    reply = await api.client.get(saved["feed_url"])
    assert b"<script>" not in reply.content
    assert [i["title"] for i in await feed(api, saved)] == ["Tom & Jerry <script>alert(1)</script>"]


async def test_feed_url_uses_the_configured_public_url(db_url: str) -> None:
    settings = BittorrentedSettings(
        database_url=db_url, api_key=KEY, public_url="https://index.example/bittorrented/"
    )
    product = create_app(settings, clock=FrozenClock(NOW))
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            reply = await client.post(
                "/api/saved-searches", json={"name": "x", "q": "y"}, headers=GUARD
            )
    saved = reply.json()["saved_search"]
    assert saved["feed_url"] == f"https://index.example/bittorrented/feeds/{saved['id']}.rss"


async def test_delete_removes_the_feed(api: Api) -> None:
    saved = await save(api, name="gone soon", q="anything")
    assert (await api.client.delete(f"/api/saved-searches/{saved['id']}")).status_code == 401
    deleted = await api.client.delete(f"/api/saved-searches/{saved['id']}", headers=GUARD)
    assert deleted.status_code == 204
    for reply in (
        await api.client.get(saved["feed_url"]),
        await api.client.get(f"/api/saved-searches/{saved['id']}"),
        await api.client.delete(f"/api/saved-searches/{saved['id']}", headers=GUARD),
    ):
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "saved_search_not_found"


async def test_saving_needs_the_api_key(api: Api) -> None:
    for headers in ({}, {"x-api-key": "wrong"}):
        reply = await api.client.post(
            "/api/saved-searches", json={"name": "n", "q": "q"}, headers=headers
        )
        assert reply.status_code == 401
        assert reply.headers["content-type"] == "application/problem+json"
        assert reply.json()["code"] == "missing_api_key"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"q": "no name"}, "invalid_request"),
        ({"name": ""}, "invalid_request"),
        ({"name": "bell\x07"}, "invalid_request"),
        ({"name": "n", "type": ["films"]}, "invalid_request"),
        ({"name": "n", "resolution": ["999p"]}, "invalid_request"),
        ({"name": "n", "year_min": 2020, "year_max": 2010}, "invalid_request"),
        ({"name": "n", "size_min": -1}, "invalid_request"),
        ({"name": "n", "sort": "seeders"}, "invalid_request"),  # unknown fields are refused
        ({"name": "n", "q": "x" * 501}, "invalid_request"),
        ({"name": "n", "q": "a | -b"}, "bad_query"),
    ],
)
async def test_bad_saved_searches_are_refused_as_problems(
    api: Api, body: dict[str, Any], code: str
) -> None:
    reply = await api.client.post("/api/saved-searches", json=body, headers=GUARD)
    assert reply.status_code == 400, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    assert reply.json()["code"] == code


async def test_unknown_and_oversized_ids_are_not_found_or_refused(api: Api) -> None:
    assert (await api.client.get("/feeds/nope.rss")).status_code == 404
    assert (await api.client.get(f"/feeds/{'x' * 65}.rss")).status_code == 400


def test_feed_dates_are_rfc_822() -> None:
    # The same renderer as Torznab's: a fixed date renders as RFC 822 with GMT.
    hit = SearchHit(
        id=1,
        info_hash=bytes(20),
        name="n",
        size=1,
        seeders=0,
        leechers=0,
        published_ts=int((NOW - timedelta(hours=1)).timestamp()),
        content_type="unknown",
        year=None,
        resolution=None,
        sort_value=0,
    )
    channel = torznab.Channel("t", "d", "http://x/", "http://x/feed")
    item = parse_xml(torznab.rss_xml(channel, [hit])).find("channel/item")
    assert item is not None
    assert item.findtext("pubDate") == "Mon, 30 Nov 2026 23:00:00 GMT"
