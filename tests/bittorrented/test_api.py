"""The JSON API over a real app and database: uploads, magnets, search pages, bad input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import libtorrent as lt
import pytest

from keel.bittorrented.app import create_app
from keel.bittorrented.catalog import bulk
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.swarm import trackers
from keel.bittorrented.torrent.values import Magnet, Metainfo, TorrentFile
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import NOW, entry, info_hash

KEY = "s3cret-key"


class CannedPeers:
    """A metadata source that knows some torrents (the real one is the libtorrent fetcher)."""

    def __init__(self, known: dict[bytes, Metainfo]) -> None:
        self.known = known

    async def fetch(self, link: Magnet, *, timeout_seconds: float) -> Metainfo | None:
        return self.known.get(link.info_hash)


@dataclass
class Api:
    client: httpx.AsyncClient
    indexer: Indexer


@pytest.fixture
async def api(db_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    banned = tmp_path / "banned.txt"
    banned.write_text("# test list\nforbiddenword\n")
    fetched = Metainfo(
        info_hash=info_hash("from-peers"),
        name="Peer.Shared.Album.2020.FLAC",
        size=300,
        files=(TorrentFile(0, "01.flac", 100), TorrentFile(1, "02.flac", 200)),
        files_count=2,
    )
    settings = BittorrentedSettings(database_url=db_url, api_key=KEY, banned_keywords_file=banned)
    product = create_app(
        settings, clock=FrozenClock(NOW), metadata=CannedPeers({fetched.info_hash: fetched})
    )
    async with product.lifespan():
        transport = httpx.ASGITransport(app=product.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bt.test") as client:
            yield Api(client, product.app.state.indexer)


def make_torrent(tmp_path: Path, name: str, files: dict[str, bytes]) -> bytes:
    root = tmp_path / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    ct = lt.create_torrent(lt.list_files(str(root)), 0, lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, str(tmp_path))
    return bytes(lt.bencode(ct.generate()))


async def test_uploaded_torrent_is_searchable_with_its_files(api: Api, tmp_path: Path) -> None:
    data = make_torrent(
        tmp_path, "Big.Movie.2024.1080p.x264-GRP", {"movie.mkv": b"x" * 5000, "info.nfo": b"i"}
    )
    reply = await api.client.post(
        "/api/torrents",
        content=data,
        headers={"content-type": "application/x-bittorrent", "x-api-key": KEY},
    )
    assert reply.status_code == 201, reply.text
    torrent = reply.json()["torrent"]
    expected_hash = str(lt.torrent_info(lt.bdecode(data)).info_hashes().v1)
    assert torrent["info_hash"] == expected_hash
    assert sorted(f["path"] for f in torrent["files"]) == ["info.nfo", "movie.mkv"]
    assert torrent["size"] == 5001
    assert torrent["classification"]["year"] == 2024
    assert torrent["classification"]["resolution"] == "1080p"

    found = (await api.client.get("/api/search", params={"q": "big movie 1080p"})).json()
    assert found["total"] == 1
    assert found["results"][0]["info_hash"] == expected_hash
    assert found["results"][0]["magnet"].startswith(f"magnet:?xt=urn:btih:{expected_hash}")
    detail = await api.client.get(f"/api/torrents/{expected_hash}")
    assert detail.json()["torrent"]["files_count"] == 2


async def test_magnet_fetches_metadata_from_peers_once(api: Api) -> None:
    link = f"magnet:?xt=urn:btih:{info_hash('from-peers').hex()}&dn=whatever"
    first = await api.client.post("/api/magnets", json={"magnet": link}, headers={"x-api-key": KEY})
    assert first.status_code == 201, first.text
    assert [f["path"] for f in first.json()["torrent"]["files"]] == ["01.flac", "02.flac"]
    again = await api.client.post(
        "/api/magnets",
        json={"magnet": link + "&tr=udp%3A%2F%2Ftracker.example%3A1337%2Fannounce"},
        headers={"x-api-key": KEY},
    )
    assert again.status_code == 200
    async with api.indexer.engine.connect() as conn:
        remembered = await trackers.known(conn, [info_hash("from-peers")])
    assert remembered == {info_hash("from-peers"): ["udp://tracker.example:1337/announce"]}


async def test_magnet_nobody_seeds_is_a_timeout_and_indexes_nothing(api: Api) -> None:
    link = f"magnet:?xt=urn:btih:{'ab' * 20}"
    reply = await api.client.post("/api/magnets", json={"magnet": link}, headers={"x-api-key": KEY})
    assert reply.status_code == 504
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert (await api.client.get(f"/api/torrents/{'ab' * 20}")).status_code == 404


async def test_search_pages_cover_the_match_set_once(api: Api) -> None:
    async with api.indexer.engine.begin() as conn:
        await bulk.write(
            conn, [entry(f"Common.Word.{i}", seeders=i % 4) for i in range(23)], now=NOW
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"q": "common", "sort": "seeders", "limit": "5"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/api/search", params=params)).json()
        assert page["total"] == 23
        seen += [r["name"] for r in page["results"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23
    seeders = [int(n.split(".")[-1]) % 4 for n in seen]
    assert seeders == sorted(seeders, reverse=True)


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "needle"),
    [
        ("get", "/api/search", {"params": {"q": "a | -b"}}, 400, "excludes a whole"),
        ("get", "/api/search", {"params": {"q": "x" * 501}}, 400, ""),
        ("get", "/api/search", {"params": {"sort": "random"}}, 400, ""),
        ("get", "/api/search", {"params": {"limit": "0"}}, 400, ""),
        ("get", "/api/search", {"params": {"cursor": "garbage!"}}, 400, "cursor"),
        ("get", "/api/search", {"params": {"type": "movie,spaceship"}}, 400, "spaceship"),
        ("get", "/api/search", {"params": {"year_min": "99999"}}, 400, ""),
        ("get", "/api/torrents/xyz", {}, 400, "40 hexadecimal"),
        ("get", f"/api/torrents/{'00' * 20}", {}, 404, "no torrent"),
        (
            "post",
            "/api/torrents",
            {"content": b"d4:infoi1ee", "headers": {"x-api-key": KEY}},
            400,
            "",
        ),
        ("post", "/api/torrents", {"content": b"", "headers": {"x-api-key": KEY}}, 400, "body"),
        ("post", "/api/torrents", {"content": b"de"}, 401, "API key"),
        (
            "post",
            "/api/magnets",
            {"json": {"magnet": "magnet:?xt=urn:btih:zz"}, "headers": {"x-api-key": KEY}},
            400,
            "",
        ),
        (
            "post",
            "/api/magnets",
            {
                "content": b"{not json",
                "headers": {"x-api-key": KEY, "content-type": "application/json"},
            },
            400,
            "",
        ),
        ("delete", f"/api/torrents/{'00' * 20}", {"headers": {"x-api-key": KEY}}, 404, ""),
        ("delete", f"/api/torrents/{'00' * 20}", {"headers": {"x-api-key": "wrong"}}, 401, ""),
    ],
)
async def test_bad_input_gets_a_clear_problem(
    api: Api, method: str, path: str, kwargs: dict[str, object], status: int, needle: str
) -> None:
    reply = await getattr(api.client, method)(path, **kwargs)
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert needle in json.dumps(reply.json())


async def test_banned_upload_is_refused_and_not_indexed(api: Api, tmp_path: Path) -> None:
    data = make_torrent(tmp_path, "Some.ForbiddenWord.Release", {"a.bin": b"a"})
    reply = await api.client.post("/api/torrents", content=data, headers={"x-api-key": KEY})
    assert reply.status_code == 403
    assert (await api.client.get("/api/search", params={"q": "release"})).json()["total"] == 0


async def test_oversized_upload_is_refused(api: Api) -> None:
    limit = api.indexer.settings.max_torrent_bytes
    reply = await api.client.post(
        "/api/torrents", content=b"d" + b"0" * limit, headers={"x-api-key": KEY}
    )
    assert reply.status_code == 400
    assert "at most" in reply.json()["detail"]


async def test_file_search_and_did_you_mean(api: Api, tmp_path: Path) -> None:
    data = make_torrent(
        tmp_path, "Season.Pack", {"Show.S01E01.mkv": b"1", "extras/Making.Of.mkv": b"2"}
    )
    await api.client.post("/api/torrents", content=data, headers={"x-api-key": KEY})
    files = (await api.client.get("/api/files", params={"q": "making"})).json()
    assert [(f["path"], f["torrent_name"]) for f in files["results"]] == [
        ("extras/Making.Of.mkv", "Season.Pack")
    ]
    assert (await api.client.get("/api/files", params={"cursor": "x"})).status_code == 400
    fuzzy = (await api.client.get("/api/search", params={"q": "seasn pack"})).json()
    assert fuzzy["corrected_query"] == "season pack"
    assert [r["name"] for r in fuzzy["results"]] == ["Season.Pack"]
