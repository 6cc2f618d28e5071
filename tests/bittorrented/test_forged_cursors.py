"""Forged, tampered and out-of-range cursors are a 400 on the JSON API and the HTML page, never
a 500; cursors this server issued keep working across a restart and across processes."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from keel.bittorrented import bootstrap
from keel.bittorrented.app import create_app
from keel.bittorrented.catalog import bulk
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.search.cursors import Cursors
from keel.bittorrented.settings import BittorrentedSettings
from keel.core import crypto
from keel.core.clock import FrozenClock
from keel.core.crypto import new_key
from tests.bittorrented.conftest import NOW, entry
from tests.bittorrented.search.test_cursors import signed

PROBLEM_JSON = "application/problem+json"


async def _seed(index: Indexer, count: int) -> None:
    entries = [entry(f"Matrix.Part.{i}", seeders=i, files=()) for i in range(count)]
    async with index.engine.begin() as conn:
        await bulk.write(conn, entries, now=NOW)


async def _client(product: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=product.app)
    return httpx.AsyncClient(transport=transport, base_url="http://bt.test")


@pytest.fixture
async def served(db_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, bytes]]:
    """A bittorrented with 5 torrents, and the cursor key it created under its data dir."""
    product = create_app(
        BittorrentedSettings(database_url=db_url, run_workers=False),
        data_dir=str(tmp_path),
        clock=FrozenClock(NOW),
    )
    async with product.lifespan():
        await _seed(product.app.state.indexer, 5)
        key = crypto.parse_key((tmp_path / bootstrap.CURSOR_KEY_FILE).read_text())
        async with await _client(product) as client:
            yield client, key


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Each is refused whatever the key: unsigned, signed under another key, or not a cursor at all.
UNSIGNED = {
    "huge-digits": "99999999999999999999",
    "old-unsigned-seeders-1e30": _b64(json.dumps(["seeders", "desc", 10**30, 1]).encode()),
    "other-key": signed(["seeders", "desc", 5, 1], key=b"\x01" * 32),
    "garbage-base64": "!!!.@@@",
    "not-ascii": "ü.ü",
    "empty-tag": _b64(b'["seeders","desc",5,1]') + ".",
}
# Signed with the server's own key (as if it leaked): still refused, by the range checks.
SIGNED = {
    "seeders-1e30": ["seeders", "desc", 10**30, 1],
    "seeders-negative": ["seeders", "desc", -1, 1],
    "id-past-int64": ["seeders", "desc", 1, 2**63],
    "id-negative": ["seeders", "desc", 1, -5],
    "float": ["seeders", "desc", 1.5, 1],
    "string": ["seeders", "desc", "1", 1],
    "other-sort": ["size", "desc", 1, 1],
    "files-past-int64": ["files", "desc", 2**63],
    "files-negative": ["files", "desc", -1],
    "files-string": ["files", "desc", "1"],
}


def _cursors(key: bytes) -> list[tuple[str, str]]:
    return [*UNSIGNED.items(), *((name, signed(p, key)) for name, p in SIGNED.items())]


async def test_forged_cursors_are_a_400_problem_on_the_json_api(
    served: tuple[httpx.AsyncClient, bytes],
) -> None:
    client, key = served
    for name, cursor in _cursors(key):
        for path, params in (
            ("/api/search", {"q": "matrix", "sort": "seeders", "cursor": cursor}),
            ("/api/files", {"q": "matrix", "cursor": cursor}),
        ):
            reply = await client.get(path, params=params)
            assert reply.status_code == 400, (name, path, reply.text)
            assert reply.headers["content-type"] == PROBLEM_JSON, (name, path)
            assert reply.json()["code"] == "bad_cursor", (name, path)


async def test_forged_cursors_are_a_400_on_the_search_page(
    served: tuple[httpx.AsyncClient, bytes],
) -> None:
    client, key = served
    for name, cursor in _cursors(key):
        reply = await client.get("/", params={"q": "matrix", "sort": "seeders", "cursor": cursor})
        assert reply.status_code == 400, (name, reply.text[:300])
        assert reply.headers["content-type"].startswith("text/html")
        problem = re.search(r'<p id="problem"[^>]*>(.*?)</p>', reply.text)
        assert problem is not None, name
        assert "cursor" in unescape(problem.group(1)), name


async def test_issued_cursors_page_through_and_name_no_values(
    served: tuple[httpx.AsyncClient, bytes],
) -> None:
    client, _key = served
    first = (await client.get("/api/search", params={"sort": "seeders", "limit": 2})).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    second = await client.get(
        "/api/search", params={"sort": "seeders", "limit": 2, "cursor": cursor}
    )
    assert second.status_code == 200, second.text
    assert [r["seeders"] for r in first["results"] + second.json()["results"]] == [4, 3, 2, 1]
    # Valid for its own sort only.
    other = await client.get("/api/search", params={"sort": "size", "cursor": cursor})
    assert other.status_code == 400


async def test_cursor_key_survives_a_restart_and_is_shared(db_url: str, tmp_path: Path) -> None:
    settings = BittorrentedSettings(database_url=db_url, run_workers=False)
    first = create_app(settings, data_dir=str(tmp_path), clock=FrozenClock(NOW))
    async with first.lifespan():
        await _seed(first.app.state.indexer, 3)
        async with await _client(first) as client:
            page = (await client.get("/api/search", params={"sort": "seeders", "limit": 1})).json()
    # A second process (or the same one restarted) over the same data dir reads it back.
    second = create_app(settings, data_dir=str(tmp_path), clock=FrozenClock(NOW))
    async with second.lifespan(), await _client(second) as client:
        params = {"sort": "seeders", "limit": 1, "cursor": page["next_cursor"]}
        reply = await client.get("/api/search", params=params)
        assert reply.status_code == 200, reply.text
        assert [r["seeders"] for r in reply.json()["results"]] == [1]


async def test_a_configured_cursor_secret_replaces_the_key_file(
    db_url: str, tmp_path: Path
) -> None:
    secret = new_key()
    settings = BittorrentedSettings(database_url=db_url, run_workers=False, cursor_secret=secret)
    index = await bootstrap.open_indexer(settings, data_dir=str(tmp_path))
    try:
        assert index.cursors == Cursors(crypto.parse_key(secret))
        assert not (tmp_path / bootstrap.CURSOR_KEY_FILE).exists()
    finally:
        await index.engine.dispose()


def test_a_malformed_cursor_secret_fails_at_boot() -> None:
    with pytest.raises(ValidationError, match="cursor_secret"):
        BittorrentedSettings(cursor_secret="c2hvcnQ=")


def test_processes_starting_together_agree_on_one_cursor_key(tmp_path: Path) -> None:
    settings = BittorrentedSettings()
    with ThreadPoolExecutor(max_workers=16) as pool:
        keys = list(pool.map(lambda _: bootstrap.cursor_key(settings, str(tmp_path)), range(64)))
    assert len(set(keys)) == 1
    assert keys[0] == crypto.parse_key((tmp_path / bootstrap.CURSOR_KEY_FILE).read_text())
