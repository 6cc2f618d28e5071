"""The whole path on loopback: libtorrent nodes seed torrents the test made; the app's own
crawler finds them through the DHT and stores them; the search API returns them with their
files; a magnet submitted over the API gets its metadata from the swarm."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from keel.bittorrented.app import create_app
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.torrent.magnet import build_magnet
from tests.bittorrented.dht.swarm import Swarm, eventually, swarm

pytestmark = pytest.mark.e2e


@pytest.fixture
async def meshed(tmp_path: Path) -> AsyncIterator[Swarm]:
    async with swarm(tmp_path / "swarm", 3) as nodes:
        yield nodes


async def test_crawled_torrents_are_searchable_and_magnets_resolve(
    meshed: Swarm, db_url: str, tmp_path: Path
) -> None:
    (tmp_path / "swarm").mkdir(exist_ok=True)
    crawled = meshed.seed(
        meshed.nodes[1],
        "Keel.Crawl.Fixture.2024.1080p",
        {"video.mkv": os.urandom(40_000), "subs/en.srt": os.urandom(500)},
    )
    by_magnet = meshed.seed(
        meshed.nodes[2], "Magnet.Only.Album.FLAC", {"01.flac": os.urandom(9000)}
    )
    settings = BittorrentedSettings(
        database_url=db_url,
        crawl=True,
        crawl_batch_size=1,
        crawl_flush_seconds=0.2,
        dht_listen_host="127.0.0.1",
        dht_port=0,
        dht_nodes=[f"{h}:{p}" for h, p in (n.endpoint for n in meshed.nodes)],
        dht_allow_private=True,
        metadata_timeout_seconds=20,
    )
    product = create_app(settings)
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:

            async def found() -> bool:
                reply = await client.get("/api/search", params={"q": "keel crawl fixture"})
                return bool(reply.json()["total"])

            started = time.monotonic()
            await eventually(found, within=45, what="the crawler stored the seeded torrent")
            hit = (await client.get("/api/search", params={"q": "crawl 1080p"})).json()["results"]
            assert hit[0]["info_hash"] == crawled.info_hash.hex()
            detail = (await client.get(f"/api/torrents/{crawled.info_hash.hex()}")).json()
            assert {f["path"]: f["size"] for f in detail["torrent"]["files"]} == crawled.files
            assert detail["torrent"]["classification"]["resolution"] == "1080p"
            print(f"crawl to search: {time.monotonic() - started:.1f} s")

            link = build_magnet(by_magnet.info_hash, None)
            reply = await client.post("/api/magnets", json={"magnet": link})
            assert reply.status_code in (200, 201), reply.text  # the crawler may have won
            torrent = reply.json()["torrent"]
            assert torrent["name"] == "Magnet.Only.Album.FLAC"
            assert [f["path"] for f in torrent["files"]] == ["01.flac"]
