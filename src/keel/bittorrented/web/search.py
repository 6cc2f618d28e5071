"""The search page: a server-rendered form and results table over the same search as the API.

It works without JavaScript (a GET form, links for the next page); ``search.js`` only submits
the form when the sort or type changes. Jinja escapes every value, and the page's CSP allows
scripts and styles from this origin only, so a torrent name can never run as code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from keel.bittorrented.api.deps import indexer, rate_limited
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import Filters, SearchHit, SearchPage, Sort
from keel.bittorrented.torrent import magnet
from keel.core.errors import KeelError, NotFound

router = APIRouter(include_in_schema=False)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

PAGE_SIZE = 25
SORTS: tuple[Sort, ...] = get_args(Sort)
SORT_LABELS: dict[Sort, str] = {
    "relevance": "Best match",
    "seeders": "Most seeders",
    "size": "Largest",
    "date": "Newest",
}
TYPE_LABELS: dict[str, str] = {
    ContentType.MOVIE: "Movie",
    ContentType.TV_SHOW: "TV",
    ContentType.MUSIC: "Music",
    ContentType.AUDIOBOOK: "Audiobook",
    ContentType.EBOOK: "E-book",
    ContentType.COMIC: "Comic",
    ContentType.GAME: "Game",
    ContentType.SOFTWARE: "Software",
    ContentType.XXX: "XXX",
    ContentType.UNKNOWN: "Other",
}
# Read once: the page's two static files, by name, with their media types.
ASSETS = {
    name: ((HERE / "static" / name).read_bytes(), media_type)
    for name, media_type in (
        ("search.css", "text/css; charset=utf-8"),
        ("search.js", "text/javascript; charset=utf-8"),
    )
}
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def human_size(size: int) -> str:
    """Bytes in binary units with one decimal (``1.5 GiB``); plain bytes below 1 KiB."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    type: str
    size: str
    size_bytes: int
    seeders: int
    leechers: int
    date: str
    magnet: str


def row(hit: SearchHit) -> Row:
    return Row(
        name=hit.name,
        type=TYPE_LABELS.get(hit.content_type, hit.content_type),
        size=human_size(hit.size),
        size_bytes=hit.size,
        seeders=hit.seeders,
        leechers=hit.leechers,
        date=datetime.fromtimestamp(hit.published_ts, UTC).strftime("%Y-%m-%d"),
        magnet=magnet.build_magnet(hit.info_hash, hit.name),
    )


Text = Annotated[str, Query(max_length=500)]


@router.get(
    "/",
    name="search_page",
    response_class=HTMLResponse,
    dependencies=[Depends(rate_limited("search"))],
)
async def search_page(
    request: Request,
    q: Text = "",
    sort: Annotated[str, Query(max_length=20)] = "",
    type: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The search page (HTML)."""
    chosen: Sort = next((s for s in SORTS if s == sort), "relevance")
    # With no words there is nothing to match best: browse newest first, but keep "best
    # match" selected so that typing a query and submitting ranks by relevance.
    effective: Sort = "date" if chosen == "relevance" and not q.strip() else chosen
    index = indexer(request)
    problem = None
    page: SearchPage | None = None
    status = 200
    if sort and sort not in SORTS:
        problem, status = f"Unknown sort {sort!r}.", 400
    elif type and type not in TYPE_LABELS:
        problem, status = f"Unknown type {type!r}.", 400
    else:
        try:
            page = await index.search(
                q,
                sort=effective,
                order="desc",
                filters=Filters(content_types=(type,) if type else ()),
                limit=PAGE_SIZE,
                cursor=cursor or None,
            )
        except KeelError as exc:  # bad query, bad cursor, timeout: said on the page
            problem, status = exc.detail, exc.status
    # "0 results" from an index with nothing in it says how to fill it instead (asked only
    # then: a query without hits on a filled index stays a plain "0 results").
    empty = page is not None and page.total == 0 and await index.is_empty()
    state = {"q": q, "sort": chosen, "type": type}
    next_url = None
    next_cursor = index.next_cursor(effective, "desc", page) if page is not None else None
    if next_cursor is not None:
        next_url = "?" + urlencode({**state, "cursor": next_cursor})
    return templates.TemplateResponse(
        request,
        "search.html",
        {
            "q": q,
            "sort": chosen,
            "type": type,
            "sorts": [(s, SORT_LABELS[s]) for s in SORTS],
            "types": list(TYPE_LABELS.items()),
            "page": page,
            "empty": empty,
            "crawling": index.settings.crawl and index.settings.run_workers,
            "rows": [row(h) for h in page.hits] if page else [],
            "problem": problem,
            "next_url": next_url,
            "first_url": "?" + urlencode(state) if cursor else None,
        },
        status_code=status,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store"},
    )


@router.get("/assets/{name}", name="search_asset")
async def asset(name: str) -> Response:
    """The page's stylesheet and script (a fixed list: no path from the URL reaches the disk)."""
    if name not in ASSETS:
        raise NotFound(f"no asset {name[:40]!r}")
    body, media_type = ASSETS[name]
    return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
