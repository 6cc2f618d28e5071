"""A statement past its deadline raises SearchTimeout on both engines, and the connection it
used goes back to the pool fit for the next search."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap
from keel.bittorrented.errors import SearchTimeout
from keel.bittorrented.search import deadline, files
from keel.bittorrented.search.base import SearchRequest
from keel.bittorrented.search.query import parse
from keel.core import db

# Statements that never finish on their own.
ENDLESS = {
    "postgresql": "SELECT pg_sleep(30)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
}


async def test_a_statement_past_its_deadline_times_out_and_frees_its_connection(
    bt_engine: AsyncEngine,
) -> None:
    endless = ENDLESS["postgresql" if db.is_postgres(bt_engine) else "sqlite"]
    started = time.monotonic()
    with pytest.raises(SearchTimeout, match=r"longer than 0\.3 s"):
        async with deadline.connection(bt_engine, 0.3) as conn:
            await conn.execute(text(endless))
    assert time.monotonic() - started < 5

    search = bootstrap.search_engine(bt_engine, timeout_seconds=0.3)
    for _ in range(3):  # more searches than a small pool would survive if connections leaked
        assert (await search.search(SearchRequest(parse("dune")))).total == 0
        assert (await files.search_files(bt_engine, parse("dune"), timeout_seconds=0.3)).total == 0


async def test_a_fast_statement_is_not_interrupted_later(bt_engine: AsyncEngine) -> None:
    async with deadline.connection(bt_engine, 0.05) as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    await asyncio.sleep(0.1)  # past the deadline: the timer is gone, the pooled connection works
    async with bt_engine.connect() as conn:
        assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
