"""Saved searches and their RSS feeds: save a query once, subscribe to its newest matches."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from keel.bittorrented.api.deps import MAX_SIZE_BYTES, errors, indexer, require_api_key
from keel.bittorrented.catalog import presentation
from keel.bittorrented.feeds import saved as saved_searches
from keel.bittorrented.feeds import torznab
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import Filters
from keel.core.openapi import NOT_A_BOOL

router = APIRouter(tags=["feeds"])

Guarded = Annotated[None, Depends(require_api_key)]
SearchId = Annotated[str, Path(max_length=64)]
Year = Annotated[int, Field(ge=1800, le=2200), NOT_A_BOOL]
Size = Annotated[int, Field(ge=0, le=MAX_SIZE_BYTES), NOT_A_BOOL]
Resolution = Literal["480p", "576p", "720p", "1080p", "1440p", "2160p", "4320p"]


# A feed title: no control characters (C0, C1), and not only spaces. (Lone surrogates, which
# JSON can carry and no database stores, are refused too; JSON Schema patterns cannot say so.)
_NOT_TEXT = r"\x00-\x1f\x7f-\x9f"
_NAME = re.compile(rf"[^{_NOT_TEXT}]*[^\s{_NOT_TEXT}][^{_NOT_TEXT}]*")


def _has_surrogate(value: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in value)


class SavedSearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=200,
        json_schema_extra={"pattern": f"^{_NAME.pattern}$"},
        description="Shown as the feed's title.",
    )
    q: str = Field(default="", max_length=500, description="Query language, as in /api/search.")
    type: list[ContentType] = Field(default_factory=list, max_length=10)
    resolution: list[Resolution] = Field(default_factory=list, max_length=10)
    year_min: Year | None = None
    year_max: Year | None = None
    size_min: Size | None = None
    size_max: Size | None = None

    @field_validator("name")
    @classmethod
    def _text(cls, value: str) -> str:
        if _NAME.fullmatch(value) is None or (not value.isascii() and _has_surrogate(value)):
            raise ValueError("name must be text: no control characters, not blank")
        return value.strip()

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        for low, high in ((self.year_min, self.year_max), (self.size_min, self.size_max)):
            if low is not None and high is not None and low > high:
                raise ValueError("a minimum is above its maximum")
        return self

    def filters(self) -> Filters:
        return Filters(
            content_types=tuple(dict.fromkeys(t.value for t in self.type)),
            resolutions=tuple(dict.fromkeys(self.resolution)),
            year_min=self.year_min,
            year_max=self.year_max,
            size_min=self.size_min,
            size_max=self.size_max,
        )


def _feed_url(request: Request, search_id: str) -> str:
    public = indexer(request).settings.public_url
    if public:
        return f"{public.rstrip('/')}/feeds/{search_id}.rss"
    return str(request.url_for("saved_search_feed", search_id=search_id))


def _view(request: Request, saved: saved_searches.SavedSearch) -> dict[str, Any]:
    f = saved.filters
    return {
        "id": saved.id,
        "name": saved.name,
        "q": saved.query,
        "type": list(f.content_types),
        "resolution": list(f.resolutions),
        "year_min": f.year_min,
        "year_max": f.year_max,
        "size_min": f.size_min,
        "size_max": f.size_max,
        "created_at": presentation.iso(int(saved.created_at.timestamp())),
        "feed_url": _feed_url(request, saved.id),
    }


@router.post("/api/saved-searches", status_code=201, responses=errors(401))
async def create_saved_search(
    body: SavedSearchBody, request: Request, response: Response, _: Guarded
) -> dict[str, Any]:
    """Save a search (API key needed). Returns its id and ``feed_url``, an RSS 2.0 feed of the
    50 newest matches that any feed reader can poll without a key: the id is the secret."""
    saved = await saved_searches.create(
        indexer(request), name=body.name, text=body.q, filters=body.filters()
    )
    view = _view(request, saved)
    response.headers["Location"] = view["feed_url"]
    return {"saved_search": view}


@router.get("/api/saved-searches/{search_id}", responses=errors(404))
async def get_saved_search(search_id: SearchId, request: Request) -> dict[str, Any]:
    """One saved search: its query, filters and feed URL."""
    saved = await saved_searches.get(indexer(request), search_id)
    return {"saved_search": _view(request, saved)}


@router.delete("/api/saved-searches/{search_id}", status_code=204, responses=errors(401, 404))
async def delete_saved_search(search_id: SearchId, request: Request, _: Guarded) -> Response:
    """Delete a saved search (API key needed); its feed answers 404 from then on."""
    await saved_searches.remove(indexer(request), search_id)
    return Response(status_code=204)


@router.get(
    "/feeds/{search_id}.rss",
    name="saved_search_feed",
    response_class=Response,
    responses={200: {"content": {"application/rss+xml": {}}}, **errors(404, 503)},
)
async def saved_search_feed(search_id: SearchId, request: Request) -> Response:
    """RSS 2.0 feed of a saved search: its 50 newest matches by publication date, newest
    first, each with a magnet enclosure and Torznab attributes (seeders, size, infohash)."""
    index = indexer(request)
    saved = await saved_searches.get(index, search_id)
    page = await saved_searches.newest(index, saved)
    page_query = {"q": saved.query} | (
        {"type": saved.filters.content_types[0]} if len(saved.filters.content_types) == 1 else {}
    )
    channel = torznab.Channel(
        title=saved.name,
        description=f"Newest torrents matching {saved.query}" if saved.query else "Newest torrents",
        link=f"{request.url_for('search_page')}?{urlencode(page_query)}",
        self_url=_feed_url(request, saved.id),
    )
    return Response(
        torznab.rss_xml(channel, page.hits),
        media_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": "max-age=60"},
    )
