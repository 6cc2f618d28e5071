"""Torrents by info hash: read one, upload a .torrent, submit a magnet, remove one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from keel.bittorrented import presentation
from keel.bittorrented.api.deps import indexer, info_hash_param, rate_limited, require_api_key
from keel.core.errors import BadRequest

router = APIRouter(tags=["torrents"])

Guarded = Annotated[None, Depends(require_api_key)]
# Counted before the key is checked, so that guessing keys is limited too.
Upload = Depends(rate_limited("uploads"))


class MagnetBody(BaseModel):
    magnet: str = Field(max_length=16384, description="magnet:?xt=urn:btih:…")


@router.get("/torrents/{info_hash}")
async def get_torrent(info_hash: str, request: Request) -> dict[str, Any]:
    """One torrent with its (capped) file list and classification."""
    found = await indexer(request).get(info_hash_param(info_hash))
    return {"torrent": presentation.torrent(found)}


@router.post(
    "/torrents",
    status_code=201,
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
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"a .torrent may be at most {limit} bytes")
    if not body:
        raise BadRequest("send the .torrent file as the request body")
    stored = await indexer(request).add_torrent_file(bytes(body))
    return {"torrent": presentation.torrent(stored)}


@router.post("/magnets", status_code=201, dependencies=[Upload])
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


@router.delete("/torrents/{info_hash}", status_code=204)
async def delete_torrent(info_hash: str, request: Request, _: Guarded) -> Response:
    """Remove a torrent from the index."""
    await indexer(request).remove(info_hash_param(info_hash))
    return Response(status_code=204)
