"""Torznab over a real app and database: caps and results checked element by element against
the spec (Torznab 1.3 draft, its 1.0 torrent revision, the Newznab API it extends), category
and season/episode filters, offset paging, API keys and error documents."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parsedate_to_datetime
from xml.etree import ElementTree as ET

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap
from keel.bittorrented.app import create_app
from keel.bittorrented.catalog import bulk
from keel.bittorrented.catalog import store as catalog
from keel.bittorrented.feeds import torznab
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.naming.classify import Classification, ContentType
from keel.bittorrented.search.base import Filters, SearchRequest
from keel.bittorrented.search.query import Query
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.torrent.values import Metainfo
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW, info_hash

KEY = "torznab-key"
NS = {"torznab": torznab.TORZNAB_NS, "atom": torznab.ATOM_NS}
TORZNAB_ATTR = f"{{{torznab.TORZNAB_NS}}}attr"


def parse_xml(document: bytes) -> ET.Element:
    """Parse our own server's reply (trusted: the S314 warning is about hostile XML)."""
    return ET.fromstring(document)  # noqa: S314


def release(
    name: str,
    *,
    content_type: ContentType = ContentType.UNKNOWN,
    resolution: str | None = None,
    season: int | None = None,
    episode: int | None = None,
    year: int | None = None,
    seeders: int = 0,
    leechers: int = 0,
    size: int = 1000,
    age_days: int = 0,
    seed: str | None = None,
) -> catalog.Entry:
    """A torrent with the classification given outright (classify() is tested on its own)."""
    metainfo = Metainfo(
        info_hash=info_hash(seed or name),
        name=name,
        size=size,
        files=(),
        files_count=1,
        seeders=seeders,
        leechers=leechers,
        published_at=NOW - timedelta(days=age_days),
        source="test",
    )
    classification = Classification(
        content_type, year=year, season=season, episode=episode, resolution=resolution
    )
    return catalog.Entry(metainfo, classification)


async def seed(index: Indexer, entries: Sequence[catalog.Entry]) -> None:
    async with index.engine.begin() as conn:
        await bulk.write(conn, entries, now=NOW)


@dataclass
class Api:
    client: httpx.AsyncClient
    indexer: Indexer

    async def torznab(self, **params: str | int) -> ET.Element:
        reply = await self.client.get("/torznab/api", params={"apikey": KEY, **params})
        assert reply.status_code == 200, reply.text
        assert "xml" in reply.headers["content-type"]
        return parse_xml(reply.content)

    async def items(self, **params: str | int) -> list[ET.Element]:
        root = await self.torznab(**params)
        assert root.tag == "rss", ET.tostring(root)
        return root.findall("channel/item")

    async def titles(self, **params: str | int) -> list[str]:
        return [item.findtext("title") or "" for item in await self.items(**params)]


@pytest.fixture
async def api(db_url: str) -> AsyncIterator[Api]:
    product = create_app(
        BittorrentedSettings(database_url=db_url, api_key=KEY), clock=FrozenClock(NOW)
    )
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            yield Api(client, product.app.state.indexer)


def attrs(item: ET.Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for attr in item.findall(TORZNAB_ATTR):
        found.setdefault(attr.attrib["name"], []).append(attr.attrib["value"])
    return found


def error_of(root: ET.Element) -> tuple[int, str]:
    assert root.tag == "error", ET.tostring(root)
    return int(root.attrib["code"]), root.attrib["description"]


# --- caps ------------------------------------------------------------------------------------


async def test_caps_advertise_only_what_we_search_by(api: Api) -> None:
    reply = await api.client.get("/torznab/api", params={"t": "caps"})  # no key: caps are open
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/xml")
    caps = parse_xml(reply.content)
    assert caps.tag == "caps"
    server = caps.find("server")
    assert server is not None
    assert server.attrib["title"]
    limits = caps.find("limits")
    assert limits is not None
    assert limits.attrib == {"max": "100", "default": "50"}
    searching = {e.tag: e.attrib for e in caps.findall("searching/*")}
    assert searching == {
        "search": {"available": "yes", "supportedParams": "q"},
        "tv-search": {"available": "yes", "supportedParams": "q,season,ep"},
        "movie-search": {"available": "yes", "supportedParams": "q"},
        "music-search": {"available": "yes", "supportedParams": "q"},
        "audio-search": {"available": "yes", "supportedParams": "q"},
        "book-search": {"available": "yes", "supportedParams": "q"},
    }
    assert b"imdbid" not in reply.content  # no ids held, none advertised


async def test_caps_categories_are_newznab_ids_with_subcats_under_their_parent(api: Api) -> None:
    caps = await api.torznab(t="caps")
    tree = {
        int(c.attrib["id"]): (c.attrib["name"], {int(s.attrib["id"]) for s in c.findall("subcat")})
        for c in caps.findall("categories/category")
    }
    assert {i: name for i, (name, _) in tree.items()} == {
        2000: "Movies",
        3000: "Audio",
        4000: "PC",
        5000: "TV",
        6000: "XXX",
        7000: "Books",
        8000: "Other",
    }
    assert tree[2000][1] == {2030, 2040, 2045}
    assert tree[5000][1] == {5030, 5040, 5045}
    assert tree[3000][1] == {3030}
    assert tree[7000][1] == {7020, 7030}
    for parent, (_, subcats) in tree.items():
        assert all(parent < s < parent + 1000 for s in subcats)
    advertised = set(tree) | {s for _, subs in tree.values() for s in subs}
    for content_type in ContentType:
        for resolution in (None, "480p", "720p", "1080p", "2160p", "360p"):
            filed = torznab.categories_of(content_type, resolution)
            assert filed, (content_type, resolution)
            assert set(filed) <= advertised
            assert filed[0] % 1000 == 0  # the parent comes first


# --- results ---------------------------------------------------------------------------------


async def test_search_results_are_rss_with_torznab_attributes(api: Api) -> None:
    await seed(
        api.indexer,
        [
            release(
                "Show.Name.S02E05.1080p.WEB.x264-GRP",
                content_type=ContentType.TV_SHOW,
                resolution="1080p",
                season=2,
                episode=5,
                seeders=12,
                leechers=3,
                size=1_500_000_000,
            )
        ],
    )
    reply = await api.client.get(
        "/torznab/api", params={"t": "search", "q": "show name", "apikey": KEY}
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/rss+xml")
    # Namespace declarations as the spec writes them (prefixes clients match on).
    assert b'xmlns:torznab="http://torznab.com/schemas/2015/feed"' in reply.content
    assert b'xmlns:atom="http://www.w3.org/2005/Atom"' in reply.content
    rss = parse_xml(reply.content)
    assert rss.tag == "rss"
    assert rss.attrib["version"] == "2.0"
    channel = rss.find("channel")
    assert channel is not None
    self_link = channel.find("atom:link", NS)
    assert self_link is not None
    assert self_link.attrib["rel"] == "self"
    assert self_link.attrib["type"] == "application/rss+xml"
    assert "apikey" not in self_link.attrib["href"]
    assert channel.findtext("title")
    assert channel.findtext("description") is not None
    assert channel.findtext("link")
    response = channel.find("torznab:response", NS)
    assert response is not None
    assert response.attrib == {"offset": "0", "total": "1"}

    (item,) = channel.findall("item")
    ih = info_hash("Show.Name.S02E05.1080p.WEB.x264-GRP").hex()
    assert item.findtext("title") == "Show.Name.S02E05.1080p.WEB.x264-GRP"
    guid = item.find("guid")
    assert guid is not None
    assert guid.text == ih
    assert guid.attrib["isPermaLink"] == "false"
    link = item.findtext("link") or ""
    assert link.startswith(f"magnet:?xt=urn:btih:{ih}")
    assert parsedate_to_datetime(item.findtext("pubDate") or "") == NOW
    assert item.findtext("size") == "1500000000"
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.attrib == {
        "url": link,
        "length": "1500000000",
        "type": "application/x-bittorrent",
    }
    assert [c.text for c in item.findall("category")] == ["5000", "5040"]
    assert attrs(item) == {
        "category": ["5000", "5040"],
        "size": ["1500000000"],
        "seeders": ["12"],
        "leechers": ["3"],
        "peers": ["15"],
        "infohash": [ih],
        "magneturl": [link],
        "season": ["2"],
        "episode": ["5"],
    }


async def test_names_with_markup_and_control_characters_stay_well_formed(api: Api) -> None:
    name = 'A & B <script>alert("x")</script> \x01\x1f end'
    await seed(api.indexer, [release(name)])
    (item,) = await api.items(t="search", q="script")
    assert item.findtext("title") == 'A & B <script>alert("x")</script> \ufffd\ufffd end'


async def test_without_q_results_are_newest_first_and_with_q_by_relevance(api: Api) -> None:
    await seed(
        api.indexer,
        [
            release("Alpha Beta Gamma Delta", age_days=0),
            release("Alpha Beta", age_days=3),
            release("Other Thing", age_days=1),
        ],
    )
    assert await api.titles(t="search") == ["Alpha Beta Gamma Delta", "Other Thing", "Alpha Beta"]
    assert await api.titles(t="search", q="alpha beta") == ["Alpha Beta", "Alpha Beta Gamma Delta"]


async def test_tvsearch_filters_on_classified_season_and_episode(api: Api) -> None:
    tv = ContentType.TV_SHOW
    await seed(
        api.indexer,
        [
            release("Show S01E01", content_type=tv, season=1, episode=1),
            release("Show S01E02", content_type=tv, season=1, episode=2),
            release("Show S01 Complete", content_type=tv, season=1),
            release("Show S02E01", content_type=tv, season=2, episode=1),
            release("Show 2019 Movie", content_type=ContentType.MOVIE),
        ],
    )
    assert sorted(await api.titles(t="tvsearch", q="show", season=1)) == [
        "Show S01 Complete",
        "Show S01E01",
        "Show S01E02",
    ]
    assert await api.titles(t="tvsearch", q="show", season=1, ep=2) == ["Show S01E02"]
    # tvsearch alone means TV; search means everything.
    assert len(await api.titles(t="tvsearch", q="show")) == 4
    assert len(await api.titles(t="search", q="show")) == 5
    # A daily episode (MM/DD) needs air dates we do not keep: nothing, not everything.
    assert await api.titles(t="tvsearch", q="show", season=2019, ep="12/20") == []


async def test_categories_filter_by_type_and_resolution(api: Api) -> None:
    movie, tv = ContentType.MOVIE, ContentType.TV_SHOW
    await seed(
        api.indexer,
        [
            release("m sd", content_type=movie, resolution="480p"),
            release("m unknown", content_type=movie),
            release("m hd", content_type=movie, resolution="1080p"),
            release("m uhd", content_type=movie, resolution="2160p"),
            release("t hd", content_type=tv, resolution="720p"),
            release("book", content_type=ContentType.EBOOK),
            release("comic", content_type=ContentType.COMIC),
            release("thing", content_type=ContentType.UNKNOWN),
        ],
    )

    async def found(cat: str) -> set[str]:
        return set(await api.titles(t="search", cat=cat))

    assert await found("2000") == {"m sd", "m unknown", "m hd", "m uhd"}
    assert await found("2030") == {"m sd", "m unknown"}
    assert await found("2040,5040") == {"m hd", "t hd"}
    assert await found("2045") == {"m uhd"}
    assert await found("7000") == {"book", "comic"}
    assert await found("7030") == {"comic"}
    assert await found("8000") == {"thing"}
    assert await found("2010") == set()  # a real id we file nothing under: nothing
    assert await found("9999,") == set()
    assert len(await api.titles(t="movie")) == 4  # movie search defaults to Movies
    assert len(await api.titles(t="movie", cat=",")) == 4  # an empty list is no list


async def test_a_search_naming_an_id_we_do_not_hold_finds_nothing(api: Api) -> None:
    await seed(api.indexer, [release("Some Movie 2020", content_type=ContentType.MOVIE)])
    assert await api.titles(t="movie", q="some movie") == ["Some Movie 2020"]
    root = await api.torznab(t="movie", q="some movie", imdbid="tt0133093")
    assert root.findall("channel/item") == []
    response = root.find("channel/torznab:response", NS)
    assert response is not None
    assert response.attrib["total"] == "0"


async def test_maxage_keeps_recent_torrents(api: Api) -> None:
    await seed(api.indexer, [release("new one", age_days=1), release("old one", age_days=30)])
    assert await api.titles(t="search", maxage=7) == ["new one"]


async def test_offset_pages_are_exact_slices_of_the_full_order(api: Api) -> None:
    await seed(
        api.indexer,
        [release(f"Paged Item {i}", seeders=i % 7, age_days=i % 11) for i in range(250)],
    )
    everything: list[str] = []
    for offset in range(0, 300, 100):
        everything += await api.titles(t="search", q="paged", limit=100, offset=offset)
    assert len(everything) == len(set(everything)) == 250
    assert await api.titles(t="search", q="paged", limit=60, offset=150) == everything[150:210]
    assert await api.titles(t="search", q="paged", limit=7, offset=243) == everything[243:]
    root = await api.torznab(t="search", q="paged", limit=0)
    assert root.findall("channel/item") == []
    response = root.find("channel/torznab:response", NS)
    assert response is not None
    assert response.attrib == {"offset": "0", "total": "250"}
    assert len(await api.titles(t="search", q="paged", limit=5000)) == 100  # clamped to max


# --- keys and errors -------------------------------------------------------------------------


async def test_api_key_is_required_for_searches(api: Api) -> None:
    for params in ({"t": "search"}, {"t": "search", "apikey": "wrong"}):
        reply = await api.client.get("/torznab/api", params=params)
        assert reply.status_code == 200  # Newznab errors ride on HTTP 200
        assert reply.headers["content-type"].startswith("application/xml")
        assert error_of(parse_xml(reply.content))[0] == 100
    by_header = await api.client.get(
        "/torznab/api", params={"t": "search"}, headers={"x-api-key": KEY}
    )
    assert parse_xml(by_header.content).tag == "rss"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, 200),
        ({"t": "nonsense"}, 202),
        ({"t": "details"}, 203),
        ({"t": "search", "limit": "-1"}, 201),
        ({"t": "search", "limit": "ten"}, 201),
        ({"t": "search", "limit": "9" * 5000}, 201),
        ({"t": "search", "offset": "-5"}, 201),
        ({"t": "search", "offset": "1001"}, 201),
        ({"t": "search", "cat": "movies"}, 201),
        ({"t": "tvsearch", "season": "one"}, 201),
        ({"t": "tvsearch", "ep": "x2"}, 201),
        ({"t": "search", "q": "a | -b"}, 201),
        ({"t": "search", "q": "x" * 501}, 201),
        ({"t": "search", "o": "json"}, 201),
    ],
)
async def test_bad_requests_get_torznab_error_documents(
    api: Api, params: dict[str, str], code: int
) -> None:
    root = await api.torznab(**params)
    got, description = error_of(root)
    assert got == code, description
    assert description


# --- the filters underneath, against a brute-force reference on every engine --------------


async def test_each_category_finds_exactly_the_torrents_filed_in_it(bt_engine: AsyncEngine) -> None:
    resolutions = (None, "360p", "480p", "720p", "1080i", "1080p", "2160p", "4320p")
    rows = [
        release(f"doc {i}", content_type=t, resolution=r, seed=f"{t}-{r}")
        for i, (t, r) in enumerate(itertools.product(ContentType, resolutions))
    ]
    async with bt_engine.begin() as conn:
        await bulk.write(conn, rows, now=NOW)
    search = bootstrap.search_engine(bt_engine)
    for category in torznab.CATEGORIES:
        request = SearchRequest(Query(), "date", "desc", Filters(kinds=category.kinds), 100)
        page = await search.search(request)
        got = {(h.content_type, h.resolution) for h in page.hits}
        expected = {
            (e.classification.content_type.value, e.classification.resolution)
            for e in rows
            if category.id
            in torznab.categories_of(e.classification.content_type, e.classification.resolution)
        }
        assert got == expected, category
        assert page.total == len(expected)
