"""On PostgreSQL a common word's page is a walk of the sort index that never reads the table:
each sort index INCLUDEs ``tsv`` and every filter column (migration 0005). A filter added to
``sql.add_filters`` without its column in the index makes this fail."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.query import parse
from keel.bittorrented.search import sql, tsvector
from keel.bittorrented.search.base import Filters, Kind, SearchRequest, Sort
from keel.core import db

EVERY_FILTER = Filters(
    content_types=("movie", "tv_show"),
    resolutions=("1080p",),
    year_min=1990,
    year_max=2030,
    size_min=1,
    size_max=10**12,
    kinds=(Kind("tv_show", ("720p",), other_resolutions=True), Kind("movie")),
    season=1,
    episode=2,
    published_min_ts=0,
)


def _walk_plan(plan: Any) -> list[str]:
    """Every node type of an EXPLAIN (FORMAT JSON) plan."""
    node = plan.get("Plan", plan)
    return [node["Node Type"]] + [t for child in node.get("Plans", []) for t in _walk_plan(child)]


@pytest.mark.parametrize("sort", get_args(Sort))
@pytest.mark.parametrize("filtered", [False, True])
async def test_the_keys_statement_is_an_index_only_walk(
    bt_engine: AsyncEngine, sort: Sort, filtered: bool
) -> None:
    if not db.is_postgres(bt_engine):
        pytest.skip("SQLite's FTS5 is a table of its own; nothing to include")
    where = sql.Where()
    where.add("s.tsv @@ CAST(:tsq AS tsquery)", tsq=tsvector.tsquery(parse("the 1080p -cam")))
    request = SearchRequest(
        parse("the"), sort=sort, filters=EVERY_FILTER if filtered else Filters(), after=(5, 7)
    )
    sql.add_filters(where, request)
    statement, params = sql.page_keys_sql(where, request)
    async with bt_engine.begin() as conn:
        # Leave the planner no other way than a sort index (it would take the table or GIN
        # on an empty one), so the plan shows whether that index covers the statement.
        for switch in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            await conn.execute(text(f"SET LOCAL {switch} = off"))
        explained = text(f"EXPLAIN (FORMAT JSON) {statement}")
        plan = (await conn.execute(explained, params)).scalar_one()[0]
    assert "Index Only Scan" in _walk_plan(plan), plan
