"""Torznab, the Newznab search API for torrents: capabilities, categories, requests, XML.

What we implement, and where each rule comes from (looked up, written here in our own code):

- Torznab 1.3 draft (https://torznab.github.io/spec-1.3-draft/torznab/Specification-v1.3.html):
  ``GET /api?t=…[&apikey=…]``, functions caps / search / tvsearch / movie / music / book,
  XML in UTF-8, ``201 Incorrect parameter`` for a negative ``limit``.
- Torznab 1.0 "Torrent Support" revision (same site, ``revisions/1.0-Torznab-Torrent-Support``):
  the RSS ``enclosure`` is the torrent or magnet with type ``application/x-bittorrent``, its
  ``length`` is ambiguous so the media size also goes in ``<torznab:attr name="size">``;
  ``infohash`` (lower-case hex), ``magneturl``, ``seeders``, ``leechers``, ``peers`` attributes
  in the ``xmlns:torznab="http://torznab.com/schemas/2015/feed"`` namespace.
- Newznab API (https://newznab.readthedocs.io/en/latest/misc/api.html and the error table at
  https://inhies.github.io/Newznab-API/errors): caps holds ``server``, ``limits max/default``,
  ``searching`` with ``available`` and ``supportedParams``, ``categories/category/subcat``;
  errors are ``<error code=".." description=".."/>`` sent with HTTP 200 (100 bad credentials,
  200 missing parameter, 201 incorrect parameter, 202 no such function, 203 function not
  available, 900 unknown error). Standard category ids as listed on Jackett's "Jackett
  Categories" wiki page (2000 Movies, 3000 Audio, 4000 PC, 5000 TV, 6000 XXX, 7000 Books,
  8000 Other and their subcategories).
- Sonarr's "Implementing a Torznab indexer" wiki: advertise what you support in
  ``supportedParams``; a query naming an id you do not support gets an empty result set.
  Prowlarr's TorznabRssParser parses an ``<error>`` document whatever the HTTP status, as long
  as it is XML, and reports codes 100-199 as a bad API key; so HTTP 200 serves every client.
  ``<torznab:response offset total>`` tells a client paging with ``offset`` where it is.

Our choices: we hold no IMDb/TVDB/TMDB ids, so no id parameter is advertised and a request that
sends one gets no results rather than unfiltered ones. ``q`` is our query language. Without
``q`` results are newest first (what RSS sync wants), with it by relevance. ``offset`` walks
keyset pages and stops at :data:`MAX_OFFSET`. A video whose name states no resolution is filed
as SD: HD and UHD releases say so in their names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Literal
from xml.etree import ElementTree as ET

from keel.bittorrented.errors import BadQuery, SearchTimeout
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import MAX_LIMIT, Filters, Kind, SearchHit, Sort
from keel.bittorrented.search.query import MAX_QUERY_CHARS
from keel.bittorrented.torrent import magnet

TORZNAB_NS = "http://torznab.com/schemas/2015/feed"
ATOM_NS = "http://www.w3.org/2005/Atom"
ET.register_namespace("torznab", TORZNAB_NS)
ET.register_namespace("atom", ATOM_NS)

DEFAULT_LIMIT = 50
# Offsets are served by walking keyset pages of MAX_LIMIT, so this bounds one request to
# MAX_OFFSET / MAX_LIMIT + 1 searches.
MAX_OFFSET = 1000
SECONDS_PER_DAY = 86_400
ENCLOSURE_TYPE = "application/x-bittorrent"

Function = Literal["search", "tvsearch", "movie", "music", "book"]
FUNCTIONS: tuple[Function, ...] = ("search", "tvsearch", "movie", "music", "book")
# Newznab defines these; we do not offer them (203, not 202).
UNOFFERED = frozenset(
    ("register", "details", "getnfo", "get", "cartadd", "cartdel", "comments", "commentadd", "user")
)
# Parameters naming things we do not index (external ids, tags): a request with one is answered
# with no results, since ignoring it would return results that do not match it.
EXTERNAL_IDS = ("imdbid", "tmdbid", "tvdbid", "rid", "tvmazeid", "traktid", "doubanid")
TAGS = ("artist", "album", "label", "track", "author", "title", "genre")
UNSUPPORTED_PARAMS = (*EXTERNAL_IDS, *TAGS)

HD = ("720p", "1080p", "1080i", "1440p")
UHD = ("2160p", "4320p")


class TorznabError(Exception):
    """A request Torznab answers with ``<error code=.. description=..>``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


BAD_CREDENTIALS = 100
MISSING_PARAMETER = 200
INCORRECT_PARAMETER = 201
NO_SUCH_FUNCTION = 202
FUNCTION_NOT_AVAILABLE = 203
UNKNOWN_ERROR = 900


@dataclass(frozen=True, slots=True)
class Category:
    """A Torznab category: the ``kinds`` of torrent it holds (any one of them)."""

    id: int
    name: str
    kinds: tuple[Kind, ...]


def _video(content_type: ContentType, base: int, name: str) -> tuple[Category, ...]:
    t = content_type.value
    return (
        Category(base, name, (Kind(t),)),
        Category(base + 30, f"{name}/SD", (Kind(t, HD + UHD, other_resolutions=True),)),
        Category(base + 40, f"{name}/HD", (Kind(t, HD),)),
        Category(base + 45, f"{name}/UHD", (Kind(t, UHD),)),
    )


# Parents first, each followed by its subcategories (ids are parent + 1..999).
CATEGORIES: tuple[Category, ...] = (
    *_video(ContentType.MOVIE, 2000, "Movies"),
    Category(3000, "Audio", (Kind(ContentType.MUSIC), Kind(ContentType.AUDIOBOOK))),
    Category(3030, "Audio/Audiobook", (Kind(ContentType.AUDIOBOOK),)),
    Category(4000, "PC", (Kind(ContentType.SOFTWARE), Kind(ContentType.GAME))),
    Category(4050, "PC/Games", (Kind(ContentType.GAME),)),
    *_video(ContentType.TV_SHOW, 5000, "TV"),
    Category(6000, "XXX", (Kind(ContentType.XXX),)),
    Category(7000, "Books", (Kind(ContentType.EBOOK), Kind(ContentType.COMIC))),
    Category(7020, "Books/EBook", (Kind(ContentType.EBOOK),)),
    Category(7030, "Books/Comics", (Kind(ContentType.COMIC),)),
    Category(8000, "Other", (Kind(ContentType.UNKNOWN),)),
)
BY_ID = {c.id: c for c in CATEGORIES}
# What each function searches when the request names no category.
DEFAULT_CATEGORIES: dict[Function, tuple[int, ...]] = {
    "search": (),
    "tvsearch": (5000,),
    "movie": (2000,),
    "music": (3000,),
    "book": (7000,),
}


def is_parent(category: Category) -> bool:
    return category.id % 1000 == 0


def categories_of(content_type: str, resolution: str | None) -> tuple[int, ...]:
    """Every category a torrent is filed in (parent first); a search for any of them finds it."""
    return tuple(
        c.id for c in CATEGORIES if any(k.matches(content_type, resolution) for k in c.kinds)
    )


def kinds_for(category_ids: Iterable[int]) -> tuple[Kind, ...]:
    """The kinds a ``cat=`` list asks for; ids we file nothing under contribute none."""
    found = [k for i in category_ids if i in BY_ID for k in BY_ID[i].kinds]
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed search request. ``answerable`` is false when it names something we cannot
    match (an external id, an unknown category), so the answer is an empty result set."""

    function: Function
    q: str
    filters: Filters
    limit: int
    offset: int
    answerable: bool = True

    @property
    def sort(self) -> Sort:
        return "relevance" if self.q.strip() else "date"


def parse(params: Mapping[str, str], *, now_ts: int) -> Query | None:
    """The request in ``params`` (the first value of each query parameter): None for caps,
    else the search to run. Raises :class:`TorznabError` on a bad request."""
    function = params.get("t", "").strip().lower()
    if not function:
        raise TorznabError(MISSING_PARAMETER, "Missing parameter: t")
    output = params.get("o", "xml").strip().lower()
    if output != "xml":
        raise TorznabError(INCORRECT_PARAMETER, "Incorrect parameter: o (only o=xml is served)")
    if function == "caps":
        return None
    if function in UNOFFERED:
        raise TorznabError(FUNCTION_NOT_AVAILABLE, f"Function not available: {function}")
    chosen = next((f for f in FUNCTIONS if f == function), None)
    if chosen is None:
        raise TorznabError(NO_SUCH_FUNCTION, f"No such function: {function[:40]}")

    q = params.get("q", "")
    if len(q) > MAX_QUERY_CHARS:
        raise TorznabError(
            INCORRECT_PARAMETER, f"Incorrect parameter: q is over {MAX_QUERY_CHARS} characters"
        )
    limit = min(_integer(params, "limit", DEFAULT_LIMIT, maximum=10**6), MAX_LIMIT)
    offset = _integer(params, "offset", 0, maximum=10**9)
    if offset > MAX_OFFSET:
        raise TorznabError(
            INCORRECT_PARAMETER, f"Incorrect parameter: offset may be at most {MAX_OFFSET}"
        )
    answerable = not any(params.get(name, "").strip() for name in UNSUPPORTED_PARAMS)

    cat = params.get("cat", "")
    ids = _category_ids(cat) or DEFAULT_CATEGORIES[chosen]
    kinds = kinds_for(ids)
    if ids and not kinds:
        answerable = False  # only categories we file nothing under

    season = episode = None
    if chosen == "tvsearch":
        season = _optional_integer(params, "season", maximum=32767)
        episode, daily = _episode(params.get("ep", ""))
        answerable = answerable and not daily
    maxage = _optional_integer(params, "maxage", maximum=100_000)
    filters = Filters(
        kinds=kinds,
        season=season,
        episode=episode,
        published_min_ts=None if maxage is None else now_ts - maxage * SECONDS_PER_DAY,
    )
    return Query(chosen, q, filters, limit, offset, answerable)


def _integer(params: Mapping[str, str], name: str, default: int, *, maximum: int) -> int:
    value = _optional_integer(params, name, maximum=maximum)
    return default if value is None else value


def _optional_integer(params: Mapping[str, str], name: str, *, maximum: int) -> int | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    # Length first: int() of thousands of digits is slow, then refused.
    if len(raw) > 12 or not raw.isascii() or not raw.isdigit() or int(raw) > maximum:
        raise TorznabError(
            INCORRECT_PARAMETER,
            f"Incorrect parameter: {name} must be a whole number from 0 to {maximum}",
        )
    return int(raw)


_DAILY_EPISODE = re.compile(r"[0-9]{1,2}/[0-9]{1,2}")


def _episode(raw: str) -> tuple[int | None, bool]:
    """(episode, is a daily ``MM/DD`` episode). We keep no air dates, so daily ones match
    nothing."""
    raw = raw.strip()
    if not raw:
        return None, False
    if _DAILY_EPISODE.fullmatch(raw):
        return None, True
    return _optional_integer({"ep": raw}, "ep", maximum=32767), False


def _category_ids(raw: str) -> tuple[int, ...]:
    ids = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or len(part) > 9:
            raise TorznabError(
                INCORRECT_PARAMETER, "Incorrect parameter: cat must be comma-separated ids"
            )
        ids.append(int(part))
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class Results:
    hits: tuple[SearchHit, ...]
    offset: int
    total: int


async def run(indexer: Indexer, query: Query) -> Results:
    """Run a parsed search: the hits from ``offset`` on, and the total over all matches.

    Raises TorznabError 201 for a query the query language refuses, 900 on a search timeout.
    """
    if not query.answerable:
        return Results((), query.offset, 0)
    wanted = query.offset + max(query.limit, 1)
    hits: list[SearchHit] = []
    total = 0
    cursor: str | None = None
    try:
        while True:
            page = await indexer.search(
                query.q,
                sort=query.sort,
                order="desc",
                filters=query.filters,
                limit=min(MAX_LIMIT, wanted - len(hits)),
                cursor=cursor,
            )
            if cursor is None:
                total = page.total
            hits.extend(page.hits)
            cursor = indexer.next_cursor(query.sort, "desc", page)
            if len(hits) >= wanted or cursor is None:
                break
    except BadQuery as exc:
        raise TorznabError(INCORRECT_PARAMETER, f"Incorrect parameter: q: {exc.detail}") from exc
    except SearchTimeout as exc:
        raise TorznabError(UNKNOWN_ERROR, exc.detail) from exc
    return Results(tuple(hits[query.offset : query.offset + query.limit]), query.offset, total)


# --- XML -----------------------------------------------------------------------------------

# XML 1.0 cannot carry most control characters even escaped; torrent names can hold them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` with every character XML 1.0 forbids replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def _document(root: ET.Element) -> bytes:
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def error_xml(code: int, description: str) -> bytes:
    """``<error code=".." description=".."/>``."""
    return _document(ET.Element("error", code=str(code), description=xml_text(description)))


@dataclass(frozen=True, slots=True)
class Server:
    title: str
    url: str


def caps_xml(server: Server) -> bytes:
    """The ``t=caps`` document: what we search by and the categories we file torrents in."""
    root = ET.Element("caps")
    ET.SubElement(root, "server", title=server.title, url=server.url)
    ET.SubElement(root, "limits", max=str(MAX_LIMIT), default=str(DEFAULT_LIMIT))
    ET.SubElement(root, "registration", available="no", open="no")
    searching = ET.SubElement(root, "searching")
    for element, params in (
        ("search", "q"),
        ("tv-search", "q,season,ep"),
        ("movie-search", "q"),
        ("music-search", "q"),
        ("audio-search", "q"),
        ("book-search", "q"),
    ):
        ET.SubElement(searching, element, available="yes", supportedParams=params)
    categories = ET.SubElement(root, "categories")
    parent = categories
    for category in CATEGORIES:
        if is_parent(category):
            parent = ET.SubElement(categories, "category", id=str(category.id), name=category.name)
        else:
            ET.SubElement(parent, "subcat", id=str(category.id), name=category.name)
    return _document(root)


@dataclass(frozen=True, slots=True)
class Channel:
    """The RSS channel around a list of hits. ``response``: (offset, total) for Torznab."""

    title: str
    description: str
    link: str
    self_url: str
    response: tuple[int, int] | None = None


def rss_xml(channel: Channel, hits: Sequence[SearchHit]) -> bytes:
    """An RSS 2.0 document with one Torznab-attributed item per hit."""
    root = ET.Element("rss", version="2.0")
    ch = ET.SubElement(root, "channel")
    ET.SubElement(
        ch, f"{{{ATOM_NS}}}link", href=channel.self_url, rel="self", type="application/rss+xml"
    )
    _text(ch, "title", channel.title)
    _text(ch, "description", channel.description)
    _text(ch, "link", channel.link)
    if channel.response is not None:
        offset, total = channel.response
        ET.SubElement(ch, f"{{{TORZNAB_NS}}}response", offset=str(offset), total=str(total))
    for hit in hits:
        _item(ch, hit)
    return _document(root)


def _item(channel: ET.Element, hit: SearchHit) -> None:
    item = ET.SubElement(channel, "item")
    link = magnet.build_magnet(hit.info_hash, hit.name)
    info_hash = hit.info_hash.hex()
    _text(item, "title", hit.name)
    _text(item, "guid", info_hash).set("isPermaLink", "false")
    _text(item, "link", link)
    _text(item, "pubDate", format_datetime(datetime.fromtimestamp(hit.published_ts, UTC), True))
    _text(item, "size", str(hit.size))
    _text(item, "description", hit.name)
    categories = categories_of(hit.content_type, hit.resolution)
    for category in categories:
        _text(item, "category", str(category))
    ET.SubElement(item, "enclosure", url=link, length=str(hit.size), type=ENCLOSURE_TYPE)
    attrs: list[tuple[str, object]] = [("category", c) for c in categories]
    attrs += [
        ("size", hit.size),
        ("seeders", hit.seeders),
        ("leechers", hit.leechers),
        ("peers", hit.seeders + hit.leechers),
        ("infohash", info_hash),
        ("magneturl", link),
    ]
    attrs += [
        (name, value)
        for name, value in (("year", hit.year), ("season", hit.season), ("episode", hit.episode))
        if value is not None
    ]
    for name, value in attrs:
        ET.SubElement(item, f"{{{TORZNAB_NS}}}attr", name=name, value=str(value))


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = xml_text(text)
    return element
