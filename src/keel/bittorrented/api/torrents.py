"""Torrents by info hash: read one, upload a .torrent, submit a magnet, remove one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from keel.bittorrented.api.deps import (
    INFO_HASH,
    errors,
    indexer,
    info_hash_param,
    rate_limited,
    require_api_key,
)
from keel.bittorrented.catalog import presentation
from keel.bittorrented.torrent.magnet import MAX_MAGNET_CHARS
from keel.core.app import allow_body_bytes
from keel.core.errors import BadRequest

router = APIRouter(tags=["torrents"])

Guarded = Annotated[None, Depends(require_api_key)]
InfoHash = Annotated[
    str, Path(json_schema_extra={"pattern": f"^{INFO_HASH.pattern}$"}, description="40 hex digits")
]
# A magnet link naming a v1 info hash (hex or base32); the parser's other limits are rarely
# met (more than one different btih, more than 100 parameters) and answered with a 400.
_MAGNET = (
    r"^\s*[mM][aA][gG][nN][eE][tT]:\?(?:[^#]*&)?[xX][tT]=urn:btih:"
    r"(?:[0-9a-fA-F]{40}|[A-Za-z2-7]{32})(?:&[^#]*)?\s*$"
)
# Counted before the key is checked, so that guessing keys is limited too.
Upload = Depends(rate_limited("uploads"))


class MagnetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    magnet: str = Field(
        max_length=MAX_MAGNET_CHARS, pattern=_MAGNET, description="magnet:?xt=urn:btih:…"
    )


@router.get("/torrents/{info_hash}", responses=errors(404))
async def get_torrent(info_hash: InfoHash, request: Request) -> dict[str, Any]:
    """One torrent with its (capped) file list and classification."""
    found = await indexer(request).get(info_hash_param(info_hash))
    return {"torrent": presentation.torrent(found)}


@router.post(
    "/torrents",
    status_code=201,
    responses=errors(401, 403, 413, 429),
    dependencies=[Upload],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-bittorrent": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def upload_torrent(request: Request, _: Guarded) -> dict[str, Any]:
    """Index a .torrent file sent as the raw request body (``application/x-bittorrent``)."""
    limit = indexer(request).settings.max_torrent_bytes
    allow_body_bytes(request, limit)  # may exceed the process-wide body limit
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"a .torrent may be at most {limit} bytes")
    if not body:
        raise BadRequest("send the .torrent file as the request body")
    stored = await indexer(request).add_torrent_file(bytes(body))
    return {"torrent": presentation.torrent(stored)}


@router.post(
    "/magnets",
    status_code=201,
    responses={200: {"description": "Already indexed"}, **errors(401, 403, 429, 503, 504)},
    dependencies=[Upload],
)
async def submit_magnet(
    body: MagnetBody, request: Request, response: Response, _: Guarded
) -> dict[str, Any]:
    """Index a magnet link: its metadata is fetched from peers (201), or it is already known
    (200). 504 when no peer sends the metadata in time, 503 when our peer session cannot
    start (it cannot listen)."""
    stored, new = await indexer(request).add_magnet(body.magnet)
    if not new:
        response.status_code = 200
    return {"torrent": presentation.torrent(stored)}


@router.delete("/torrents/{info_hash}", status_code=204, responses=errors(401, 404))
async def delete_torrent(info_hash: InfoHash, request: Request, _: Guarded) -> Response:
    """Remove a torrent from the index."""
    await indexer(request).remove(info_hash_param(info_hash))
    return Response(status_code=204)
