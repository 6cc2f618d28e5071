"""JSON search: the query language over names, filters, exact sorts, keyset pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from keel.bittorrented import presentation
from keel.bittorrented.api.deps import csv_param, indexer, rate_limited
from keel.bittorrented.classify import ContentType
from keel.bittorrented.search.base import MAX_LIMIT, Filters, Order, Sort
from keel.bittorrented.search.ranking import encode_cursor

router = APIRouter(tags=["search"], dependencies=[Depends(rate_limited("search"))])

CONTENT_TYPES = frozenset(t.value for t in ContentType)
RESOLUTIONS = frozenset({"480p", "576p", "720p", "1080p", "1440p", "2160p", "4320p"})


@router.get("/search")
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="Query language: see the docs.")] = "",
    sort: Sort = "relevance",
    order: Order = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=200, description="e.g. movie,tv_show")] = None,
    resolution: Annotated[str | None, Query(max_length=100, description="e.g. 1080p")] = None,
    year_min: Annotated[int | None, Query(ge=1800, le=2200)] = None,
    year_max: Annotated[int | None, Query(ge=1800, le=2200)] = None,
    size_min: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    size_max: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
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
    page = await indexer(request).search(
        q, sort=sort, order=order, filters=filters, limit=limit, cursor=cursor
    )
    return {
        "total": page.total,
        "total_is_estimate": page.total_is_estimate,
        # When the query matched nothing, the hits of its respelling; page on with this query.
        "corrected_query": page.corrected_query,
        "results": [presentation.hit(h) for h in page.hits],
        "next_cursor": encode_cursor(sort, order, page.next_after) if page.next_after else None,
    }


@router.get("/files")
async def search_files(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="Same language as /search.")] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
) -> dict[str, Any]:
    """Search file paths inside torrents (newest first). Each hit names its torrent's
    ``info_hash`` and the file's ``index`` in it."""
    page = await indexer(request).search_files(
        q, limit=limit, after=int(cursor) if cursor else None
    )
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
        "next_cursor": str(page.next_after) if page.next_after else None,
    }
