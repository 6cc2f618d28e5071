"""The plans the PostgreSQL engine counts on, proven on the migrated schema.

* A walk of a sort index never reads the table: each sort index INCLUDEs ``tsv`` and every
  filter column (migration 0005); a filter added to ``sql.add_filters`` without its column in
  the index fails here.
* Each tier's count is answered by that tier's partial GIN (migrations 0006 and 0008): the
  predicate ``sql.tier_predicate`` writes proves the index's, and the migration's bounds are
  ranking's (the date tiers' as of 2026; test_rolling_tiers follows them past 2030).
"""

from __future__ import annotations

import importlib
from typing import Any, get_args

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.search import ranking, sql, tier_indexes, tsvector
from keel.bittorrented.search.base import Filters, Kind, SearchRequest, Sort
from keel.bittorrented.search.query import parse
from keel.core import db
from tests.bittorrented.conftest import NOW

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


SORT_INDEXES = ", ".join(
    f"ix_torrent_search_{name}" for name in ("relevance", "seeders", "size", "published")
)


def _walk_plan(plan: Any) -> list[str]:
    """Every node type of an EXPLAIN (FORMAT JSON) plan."""
    node = plan.get("Plan", plan)
    return [node["Node Type"]] + [t for child in node.get("Plans", []) for t in _walk_plan(child)]


def _indexes_used(plan: Any) -> set[str]:
    node = plan.get("Plan", plan)
    found = {node["Index Name"]} if "Index Name" in node else set()
    return found.union(*(_indexes_used(child) for child in node.get("Plans", [])))


def test_the_migration_cuts_the_tiers_ranking_walks() -> None:
    migration = importlib.import_module("keel.bittorrented.migrations.versions.0006_tiered_gin")
    assert set(migration.BOUNDS) == set(get_args(Sort))
    for sort, (column, bounds) in migration.BOUNDS.items():
        assert column == ranking.SORT_COLUMNS[sort]
        assert bounds == ranking.tier_bounds(sort, NOW)


@pytest.mark.parametrize("sort", get_args(Sort))
async def test_each_tier_is_counted_on_its_own_gin(bt_engine: AsyncEngine, sort: Sort) -> None:
    if not db.is_postgres(bt_engine):
        pytest.skip("PostgreSQL only: SQLite has no partial FTS5")
    where = sql.Where()
    where.add("s.tsv @@ CAST(:tsq AS tsquery)", tsq=tsvector.tsquery(parse("the 1080p")))
    async with bt_engine.connect() as conn:
        for tier in ranking.tiers(sort, "asc", now=NOW):
            statement, params = sql.count_sql(
                where.including(sql.tier_predicate(sort, tier)), tsvector.SPARSE
            )
            async with conn.begin() as transaction:
                # Without the whole-table GIN and the sort indexes (a bitmap of a key range,
                # on a table this empty, costs as little), a bitmap can only come from a
                # partial GIN, and only from one whose predicate the statement proves.
                await conn.execute(text(f"DROP INDEX ix_torrent_search_tsv, {SORT_INDEXES}"))
                for name, value in tsvector.GIN_ONLY:
                    await conn.execute(text(f"SET LOCAL {name} = {value}"))
                explained = text(f"EXPLAIN (FORMAT JSON) {statement}")
                plan = (await conn.execute(explained, params)).scalar_one()[0]
                await transaction.rollback()
            assert _indexes_used(plan) == {tier_indexes.index_name(sort, tier)}


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
