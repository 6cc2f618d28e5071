"""The Torznab endpoint (Prowlarr, Jackett, Sonarr, Radarr): one GET, XML in and out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from keel.bittorrented.api.deps import (
    MissingApiKey,
    errors,
    indexer,
    rate_limited,
    require_api_key,
)
from keel.bittorrented.feeds import torznab
from keel.bittorrented.search.base import MAX_LIMIT

router = APIRouter(tags=["torznab"], dependencies=[Depends(rate_limited("torznab"))])

XML = "application/xml; charset=utf-8"
RSS = "application/rss+xml; charset=utf-8"
# Parsed by keel.bittorrented.feeds.torznab, not FastAPI, so that a bad value is answered with a
# Torznab error document rather than problem+json; listed here for the OpenAPI document.
PARAMETERS = {
    "t": "caps, search, tvsearch, movie, music or book",
    "q": "words, in our query language",
    "cat": "comma-separated category ids (see t=caps)",
    "season": "tvsearch: season number",
    "ep": "tvsearch: episode number",
    "maxage": "only torrents published within this many days",
    "limit": f"results per page, at most {MAX_LIMIT}",
    "offset": f"results to skip, at most {torznab.MAX_OFFSET}",
    "apikey": "the server's API key, when it has one",
}


def _page_url(request: Request) -> str:
    # The search page's URL, mount prefix included (base_url drops it under keel serve).
    return str(request.url_for("search_page"))


def _xml(body: bytes, media_type: str) -> Response:
    return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.get(
    "/torznab/api",
    response_class=Response,
    responses={
        200: {
            "description": "Capabilities, an RSS 2.0 result feed, or a Torznab error",
            "content": {"application/rss+xml": {}, "application/xml": {}},
        },
        # Torznab errors are 200s; these are a value no database stores (a NUL), the per-client
        # limit and a 500.
        **errors(429),
    },
    openapi_extra={
        "parameters": [
            {
                "name": k,
                "in": "query",
                "required": False,
                "description": v,
                "schema": {"type": "string"},
            }
            for k, v in PARAMETERS.items()
        ]
    },
)
async def torznab_api(request: Request) -> Response:
    """Torznab API. ``t=caps`` lists what we search by and our categories (no key needed).
    ``t=search|tvsearch|movie|music|book`` with ``q`` (our query language), ``cat`` (comma
    list of category ids), ``season`` and ``ep`` (tvsearch), ``maxage`` (days), ``limit``
    (at most 100) and ``offset`` (at most 1000) returns RSS 2.0 with ``torznab:attr``
    seeders, peers, infohash, magneturl, size, category, season and episode. When the server
    has an API key, searches need ``apikey`` (or ``X-Api-Key``). Errors are Torznab
    ``<error code description>`` documents with HTTP 200, as Newznab clients expect: 100 bad
    key, 200 missing, 201 incorrect parameter, 202 unknown function, 203 not offered. Ids we
    do not hold (imdbid, tvdbid, …) are not advertised; a search naming one finds nothing."""
    params = {key: request.query_params.getlist(key)[0] for key in request.query_params}
    index = indexer(request)
    try:
        query = torznab.parse(params, now_ts=int(index.clock.now().timestamp()))
        if query is None:
            server = torznab.Server(title=request.app.title, url=_page_url(request))
            return _xml(torznab.caps_xml(server), XML)
        try:
            require_api_key(request)
        except MissingApiKey as exc:
            raise torznab.TorznabError(
                torznab.BAD_CREDENTIALS, "Incorrect user credentials"
            ) from exc
        results = await torznab.run(index, query)
    except torznab.TorznabError as exc:
        return _xml(torznab.error_xml(exc.code, exc.description), XML)
    channel = torznab.Channel(
        title=request.app.title,
        description=f"Torznab {query.function} results",
        link=_page_url(request),
        # The key came in the URL; the feed names itself without it.
        self_url=str(request.url.remove_query_params("apikey")),
        response=(results.offset, results.total),
    )
    return _xml(torznab.rss_xml(channel, results.hits), RSS)
