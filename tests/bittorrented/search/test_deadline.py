"""A search past its deadline raises SearchTimeout on both engines, and the connection it
used goes back to the pool fit for the next search."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented import bootstrap
from keel.bittorrented.errors import SearchTimeout
from keel.bittorrented.query import parse
from keel.bittorrented.search.base import SearchRequest
from keel.core import db

# Statements that never finish on their own.
ENDLESS = {
    "postgresql": "SELECT pg_sleep(30)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
}


async def test_a_search_past_its_deadline_times_out_and_frees_its_connection(
    bt_engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    search: Any = bootstrap.search_engine(bt_engine, timeout_seconds=0.3)
    endless = ENDLESS["postgresql" if db.is_postgres(bt_engine) else "sqlite"]

    async def never_done(conn: AsyncConnection, request: SearchRequest) -> None:
        await conn.execute(text(endless))

    with monkeypatch.context() as patch:
        patch.setattr(search, "_search", never_done)
        started = time.monotonic()
        with pytest.raises(SearchTimeout):
            await search.search(SearchRequest(parse("dune")))
        assert time.monotonic() - started < 5

    for _ in range(3):  # more searches than a small pool would survive if connections leaked
        page = await search.search(SearchRequest(parse("dune")))
        assert page.total == 0
