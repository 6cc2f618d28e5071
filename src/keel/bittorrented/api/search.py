"""JSON search: the query language over names, filters, exact sorts, keyset pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from keel.bittorrented.api.deps import (
    MAX_SIZE_BYTES,
    csv_param,
    csv_pattern,
    errors,
    indexer,
    rate_limited,
)
from keel.bittorrented.catalog import presentation
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import MAX_LIMIT, Filters, Order, Sort

router = APIRouter(tags=["search"], dependencies=[Depends(rate_limited("search"))])

CONTENT_TYPES = frozenset(t.value for t in ContentType)
RESOLUTIONS = frozenset({"480p", "576p", "720p", "1080p", "1440p", "2160p", "4320p"})


QUERY_HELP = (
    "Query language: words (each must match a whole token; `word*` a token it starts), "
    '`"a b"` a phrase, `-word` excludes, `a | b` either. At most 16 parts, 16 words a '
    "phrase, 16 choices a group, and `-` only before a whole group (else 400 bad_query)."
)
CURSOR_HELP = (
    "A previous page's `next_cursor`, as given: signed by this server, valid only for the "
    "same sort and order (anything else is 400 bad_cursor)."
)


@router.get("/search", responses=errors(429, 503))
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=500, description=QUERY_HELP)] = "",
    sort: Sort = "relevance",
    order: Order = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description=CURSOR_HELP)] = None,
    type: Annotated[
        str | None,
        Query(
            max_length=200,
            json_schema_extra={"pattern": csv_pattern(CONTENT_TYPES)},
            description="e.g. movie,tv_show",
        ),
    ] = None,
    resolution: Annotated[
        str | None,
        Query(
            max_length=100,
            json_schema_extra={"pattern": csv_pattern(RESOLUTIONS)},
            description="e.g. 1080p,2160p",
        ),
    ] = None,
    year_min: Annotated[int | None, Query(ge=1800, le=2200)] = None,
    year_max: Annotated[int | None, Query(ge=1800, le=2200)] = None,
    size_min: Annotated[int | None, Query(ge=0, le=MAX_SIZE_BYTES)] = None,
    size_max: Annotated[int | None, Query(ge=0, le=MAX_SIZE_BYTES)] = None,
) -> dict[str, Any]:
    """Search torrent names. Every word must match a whole token of the name (``word*``: a
    token it starts); ``"a b"`` is a phrase, ``-word`` excludes, ``a | b`` is either. Sorted by
    relevance, seeders, size or date over the full match set; ``total`` is exact unless
    ``total_is_estimate``. Pass ``next_cursor`` back as ``cursor`` for the next page."""
    filters = Filters(
        content_types=csv_param(type, allowed=CONTENT_TYPES, name="type"),
        resolutions=csv_param(resolution, allowed=RESOLUTIONS, name="resolution"),
        year_min=year_min,
        year_max=year_max,
        size_min=size_min,
        size_max=size_max,
    )
    index = indexer(request)
    page = await index.search(
        q, sort=sort, order=order, filters=filters, limit=limit, cursor=cursor
    )
    return {
        "total": page.total,
        "total_is_estimate": page.total_is_estimate,
        # When the query matched nothing, the hits of its respelling; page on with this query.
        "corrected_query": page.corrected_query,
        "results": [presentation.hit(h) for h in page.hits],
        "next_cursor": index.next_cursor(sort, order, page),
    }


@router.get("/files", responses=errors(429, 503))
async def search_files(
    request: Request,
    q: Annotated[str, Query(max_length=500, description=QUERY_HELP)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200, description=CURSOR_HELP)] = None,
) -> dict[str, Any]:
    """Search file paths inside torrents (newest first). Each hit names its torrent's
    ``info_hash`` and the file's ``index`` in it."""
    index = indexer(request)
    page = await index.search_files(q, limit=limit, cursor=cursor)
    return {
        "total": page.total,
        "total_is_estimate": page.total_is_estimate,
        "results": [
            {
                "info_hash": h.info_hash.hex(),
                "torrent_name": h.torrent_name,
                "index": h.file_index,
                "path": h.path,
                "size": h.size,
            }
            for h in page.hits
        ],
        "next_cursor": index.next_files_cursor(page),
    }
