"""Schemathesis over bittorrented's OpenAPI spec, in-process over ASGI, on SQLite, with every
default check: no 5xx; each reply's status, media type, headers and body as documented (errors
as problem+json); schema-valid requests accepted, schema-invalid ones refused; an undocumented
method a 405 with the right ``Allow``.

Two values no schema can describe are pinned by hooks, and only where the generated value is
schema-valid (so schemathesis's deliberately invalid requests stay invalid): a ``cursor`` must
be one this server signed, so a real one replaces it; a ``q`` the query language refuses (more
than 16 parts, ``a | -b``) is replaced by a plain word, as is a saved search's. Uploads get a
real .torrent, and a saved search's minimum is put below its maximum. Schemathesis's hooks
do not reach its coverage phase, so :func:`pin` edits each case before it is sent.

The event-loop arrangement is the one of ``tests/coinpay/test_openapi_fuzz.py`` (see there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.transport.serialization import Binary
from starlette.types import Receive, Scope, Send

from keel.bittorrented.app import create_app
from keel.bittorrented.catalog import bulk
from keel.bittorrented.errors import BadQuery
from keel.bittorrented.search import query
from keel.bittorrented.search.base import Order, Sort
from keel.bittorrented.search.cursors import Cursors
from keel.bittorrented.settings import BittorrentedSettings
from keel.bittorrented.torrent import bencode
from keel.bittorrented.torrent.values import Magnet, Metainfo
from keel.core.app import Product
from tests.bittorrented.conftest import NOW, entry

MAX_EXAMPLES = 30
API_KEY = "fuzz-key"
PROBLEM_JSON = "application/problem+json"
SORTS: tuple[Sort, ...] = get_args(Sort)
ORDERS: tuple[Order, ...] = get_args(Order)


class FabricatingPeers:
    """Every magnet's metadata arrives at once (the network is not under test here)."""

    async def fetch(self, link: Magnet, *, timeout_seconds: float) -> Metainfo | None:
        return Metainfo(
            info_hash=link.info_hash,
            name=f"Fetched {link.info_hash.hex()[:8]}",
            size=1,
            files=(),
            files_count=1,
            published_at=datetime(2026, 1, 1, tzinfo=UTC),
        )


def torrent_file(name: str) -> bytes:
    info = {b"name": name.encode(), b"length": 1234, b"piece length": 16384, b"pieces": b"p" * 20}
    return bencode.encode({b"announce": b"http://127.0.0.1:9/announce", b"info": info})


@dataclass(frozen=True)
class Seeded:
    product: Product
    cursors: Cursors
    next_cursors: dict[tuple[str, str], str]


async def _seed(product: Product) -> Seeded:
    async with product.lifespan():
        index = product.app.state.indexer
        entries = [
            entry(f"Matrix Part {i}", seeders=i, size=1000 * (i + 1), seed=f"fuzz-{i}")
            for i in range(30)
        ]
        async with index.engine.begin() as conn:
            await bulk.write(conn, entries, now=NOW)
        pages: dict[tuple[str, str], str] = {}
        for sort in SORTS:
            for order in ORDERS:
                page = await index.search("", sort=sort, order=order, limit=5)
                cursor = index.next_cursor(sort, order, page)
                assert cursor is not None
                pages[(sort, order)] = cursor
        return Seeded(product=product, cursors=index.cursors, next_cursors=pages)


class BittorrentedUnderTest:
    """Serves the spec of a bittorrented that never starts until a seeded one is attached."""

    def __init__(self) -> None:
        self.spec_only = create_app(BittorrentedSettings(run_workers=False)).app
        self.seeded: Seeded | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.seeded is not None:
            await self.seeded.product.app(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await self.spec_only(scope, receive, send)


UNDER_TEST = BittorrentedUnderTest()
schema = schemathesis.openapi.from_asgi("/openapi.json", UNDER_TEST)
TORRENTS = [torrent_file(f"Uploaded.Movie.{i}.2024.1080p") for i in range(5)]


schemathesis.serializer.alias("application/x-bittorrent", "application/octet-stream")


def _valid_query(text: Any) -> Any:
    if not isinstance(text, str) or len(text) > query.MAX_QUERY_CHARS:
        return text  # schema-invalid: left for schemathesis to see refused
    try:
        query.parse(text)
    except BadQuery:
        return "matrix"
    return text


def pin(case: Any, seeded: Seeded) -> Any:
    """Replace the schema-valid values no schema can tell apart from accepted ones (see the
    module docstring). Done on the case, so every phase's cases get it, coverage included."""
    label = case.operation.label
    params = case.query
    if isinstance(params, dict):
        if "q" in params:
            params["q"] = _valid_query(params["q"])
        cursor = params.get("cursor")
        if isinstance(cursor, str) and len(cursor) <= 200:
            if label == "GET /api/files":
                params["cursor"] = seeded.cursors.files(2**40)
            else:
                key = (params.get("sort", "relevance"), params.get("order", "desc"))
                if all(isinstance(part, str) for part in key) and key in seeded.next_cursors:
                    params["cursor"] = seeded.next_cursors[key]
    body = case.body
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if label == "POST /api/torrents" and positive and isinstance(body, Binary):
        # Any bytes are schema-valid, but only a torrent is accepted: a fresh case carries one
        # (editing this one would have schemathesis re-judge the body, and call it invalid).
        return case.operation.Case(
            body=Binary(TORRENTS[len(body.data) % len(TORRENTS)]), media_type=case.media_type
        )
    if label == "POST /api/saved-searches" and isinstance(body, dict):
        if "q" in body:
            body["q"] = _valid_query(body["q"])
        for low, high in (("year_min", "year_max"), ("size_min", "size_max")):
            a, b = body.get(low), body.get(high)
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
            if numbers and a > b:
                body[low], body[high] = b, a
    return case


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    data_dir: Path = tmp_path_factory.mktemp("bt-fuzz")
    product = create_app(
        BittorrentedSettings(
            database_url=f"sqlite+aiosqlite:///{data_dir / 'bittorrented.db'}",
            api_key=API_KEY,
            run_workers=False,
        ),
        data_dir=str(data_dir),
        metadata=FabricatingPeers(),
    )
    data = asyncio.run(_seed(product))
    schemathesis_asgi.shutdown_lifespans()
    UNDER_TEST.seeded = data
    try:
        yield data
    finally:
        schemathesis_asgi.shutdown_lifespans()
        UNDER_TEST.seeded = None


def _media_type(response: Any) -> str:
    value = response.headers.get("content-type", "")
    value = value[0] if isinstance(value, list) else value
    return str(value).split(";")[0].strip()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_the_spec_says_exactly_what_is_accepted(case: Any, seeded: Seeded) -> None:
    headers = {"X-Api-Key": API_KEY}
    case = pin(case, seeded)
    response = case.call(headers=headers)
    case.validate_response(response, headers=headers)
    if 400 <= response.status_code < 500:
        assert _media_type(response) == PROBLEM_JSON, response.text[:300]
        assert response.json()["status"] == response.status_code
