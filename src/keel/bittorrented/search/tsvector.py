"""The PostgreSQL engine: a stored tsvector of our tokens, GIN, and a tsquery built from the tree.

Both sides are built from our tokens, never by PostgreSQL's parser or a dictionary: ``tsv`` is
``to_tsvector('simple', tokens)`` over space-joined ``[a-z0-9]+`` tokens, which the default
parser keeps whole, and the query is cast straight to ``tsquery`` so no stop word or stemmer
changes it.

The plan is ours, not the planner's (each statement pinned with ``SET LOCAL enable_*``):

* One GIN read of up to ``count_cap + 1`` matches: when there are no more, sorted, they are the
  page and their number the total.
* Otherwise, or straight away when the planner puts the set past ``UNCOUNTED`` times the cap,
  the page is built tier by tier of the sort's keys (``ranking.tiers``), in sort order. In each
  tier a walk of ``WALK_BUDGET`` rows of the sort index comes first (index-only: the index
  covers ``tsv`` and the filters); when it does not fill the page, the tier's partial GIN
  counts the rest: few are read off it and sorted, many are walked from where the walk
  stopped. No walk passes a long run of rows that cannot match (short names, for `x264 720p`
  under relevance), and no sort takes more than a tier's few matches.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented.search import ranking, sql
from keel.bittorrented.search.base import SearchHit, SearchPage, SearchRequest
from keel.bittorrented.search.query import Clause, Phrase, Query
from keel.core.clock import Clock, SystemClock


def phrase_expr(phrase: Phrase) -> str:
    *head, last = phrase.tokens
    parts = [f"'{t}'" for t in head] + [f"'{last}'" + (":*" if phrase.prefix else "")]
    return " <-> ".join(parts)


def clause_expr(clause: Clause) -> str:
    inner = " | ".join(f"({phrase_expr(p)})" for p in clause.alternatives)
    return f"!({inner})" if clause.negated else f"({inner})"


def tsquery(query: Query) -> str | None:
    """The tsquery text for a query, or None when it matches everything."""
    if not query.clauses:
        return None
    return " & ".join(clause_expr(c) for c in query.clauses)


# The planner switches that leave a bitmap scan of GIN as the only way to the page's keys,
GIN_ONLY = (("enable_indexscan", "off"), ("enable_indexonlyscan", "off"), ("enable_seqscan", "off"))
# and those that leave only a walk of a b-tree (the sort index, which returns keys in order).
WALK_ONLY = (("enable_bitmapscan", "off"), ("enable_seqscan", "off"))
# Past count_cap * UNCOUNTED estimated matches, the total is the planner's and is not counted.
UNCOUNTED = 3
# Index rows a tier's first walk reads (index-only: ~1 ms at 10M rows) before the tier is
# judged sparse (under 1 match in 40) and its GIN is asked.
WALK_BUDGET = 2_000
# A tier with at most this many matches is read off its GIN and sorted; with more, a walk of
# the tier meets a match every tier_rows / SPARSE rows or sooner, on average.
SPARSE = 2_000


SEARCH_SETTINGS = (
    # A prepared statement run five times gets a generic plan, blind to the tsquery: the
    # count for `x26*` went from 66 ms to 760 ms once a few other searches had run.
    ("plan_cache_mode", "force_custom_plan"),
    # JIT compiles a plan for 50-200 ms once its cost passes jit_above_cost, as any plan over
    # a table of millions does; a search runs its plan once, so that is pure loss.
    ("jit", "off"),
    # A GIN bitmap past work_mem turns lossy: whole heap pages, every row on them tested
    # again (the stock 4 MB did that to 180k rows of a 170k-match bitmap at 10M names). An
    # exact bitmap of every page of a 10M-row table takes about 20 MB.
    ("work_mem", "'32MB'"),
)


async def prepare(conn: AsyncConnection) -> None:
    """The settings of a search transaction (names and files alike)."""
    for name, value in SEARCH_SETTINGS:
        await conn.execute(text(f"SET LOCAL {name} = {value}"))


class TsvectorSearch(sql.SqlSearch):
    """:class:`~keel.bittorrented.search.base.SearchEngine` on PostgreSQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        timeout_seconds: float = 5.0,
        count_cap: int = 10_000,
        sparse: int = SPARSE,
        walk_budget: int = WALK_BUDGET,
        uncounted: int = UNCOUNTED,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(engine, timeout_seconds=timeout_seconds, count_cap=count_cap)
        self._clock = clock or SystemClock()  # the date tiers roll with it
        self._sparse = sparse
        self._walk_budget = walk_budget
        self._uncounted = uncounted

    async def _search(self, conn: AsyncConnection, request: SearchRequest) -> SearchPage:
        where = sql.Where()
        query_text = tsquery(request.query)
        if query_text is not None:
            where.add("s.tsv @@ CAST(:tsq AS tsquery)", tsq=query_text)
        sql.add_filters(where, request)
        await prepare(conn)
        planned = await self._planner_rows(conn, where)
        if query_text is not None and planned >= self._count_cap * self._uncounted:
            # Far past the cap by the planner's statistics: counting 10,001 of them (40-70 ms
            # for `the`) would only confirm it. The tiers settle the page either way, and when
            # the estimate was wrong and they find less than a page, that is the exact total.
            keys = await self._tiered_keys(conn, where, request)
            hits = await sql.read_hits(conn, keys)
            if request.after is None and len(keys) < request.limit:
                return SearchPage(hits, total=len(hits), total_is_estimate=False, next_after=None)
            return self._page(hits, request, total=planned, estimate=True)
        if query_text is None:  # filters alone: the sort index, filtered
            total = await sql.count(conn, where, self._count_cap)
            hits = await sql.read_page(conn, where, request)
            if total > self._count_cap:
                return self._page(hits, request, total=max(planned, total), estimate=True)
            return self._page(hits, request, total=total, estimate=False)
        # Read up to count_cap + 1 matches off GIN, never by a walk (the planner, estimating
        # conjunctions as independent, may walk a sort index hoping to meet 50 matches early;
        # for "x264 flac", millions of names each and none together, that walk reads the whole
        # index). When there are no more, sorted, they are the page, and their number the total.
        total, keys = await sql.capped_page(conn, where, request, self._count_cap, planner=GIN_ONLY)
        if total <= self._count_cap:
            hits = await sql.read_hits(conn, keys)
            return self._page(hits, request, total=total, estimate=False)
        hits = await sql.read_hits(conn, await self._tiered_keys(conn, where, request))
        return self._page(hits, request, total=max(planned, self._count_cap), estimate=True)

    @staticmethod
    def _page(
        hits: tuple[SearchHit, ...], request: SearchRequest, *, total: int, estimate: bool
    ) -> SearchPage:
        next_after = (hits[-1].sort_value, hits[-1].id) if len(hits) == request.limit else None
        return SearchPage(hits=hits, total=total, total_is_estimate=estimate, next_after=next_after)

    async def _tiered_keys(
        self, conn: AsyncConnection, where: sql.Where, request: SearchRequest
    ) -> list[tuple[int, int]]:
        """The page's keys over the sort's tiers, in order, until the page is full. In each tier
        a walk of ``walk_budget`` index rows comes first: a tier dense in matches fills the page
        there, and a sparse one costs the walk (~1 ms) before its own GIN is asked."""
        keys: list[tuple[int, int]] = []
        after = request.after[0] if request.after is not None else None
        now = self._clock.now()
        for tier in ranking.tiers(request.sort, request.order, after, now=now):
            predicate = sql.tier_predicate(request.sort, tier)
            bounds = sql.Where([predicate])
            rest = dataclasses.replace(request, limit=request.limit - len(keys))
            found, stopped = await sql.budgeted_walk(
                conn, where, bounds, rest, self._walk_budget, planner=WALK_ONLY
            )
            keys += found
            if len(keys) == request.limit:
                break
            if stopped is None:
                continue  # the walk reached the end of the tier
            rest = dataclasses.replace(request, limit=request.limit - len(keys), after=stopped)
            in_tier = where.including(predicate)
            counted = sql.past_cursor(in_tier, rest, indexed=False)
            matches = await sql.count(conn, counted, self._sparse, planner=GIN_ONLY)
            if matches == 0:
                continue
            sparse = matches <= self._sparse
            keys += await sql.read_keys(
                conn,
                in_tier,
                rest,
                planner=GIN_ONLY if sparse else WALK_ONLY,
                indexed_cursor=not sparse,
            )
            if len(keys) == request.limit:
                break
        return keys

    async def _planner_rows(self, conn: AsyncConnection, where: sql.Where) -> int:
        """bitmagnet's "budgeted count": past the cap, the planner's estimate is the answer."""
        statement = text(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM torrent_search s WHERE {where.sql()}"
        )
        plan: Any = (await conn.execute(statement, where.params)).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"])
