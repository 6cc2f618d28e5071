"""The PostgreSQL engine: a stored tsvector of our tokens, GIN, and a tsquery built from the tree.

Both sides are built from our tokens, never by PostgreSQL's parser or a dictionary: ``tsv`` is
``to_tsvector('simple', tokens)`` over space-joined ``[a-z0-9]+`` tokens, which the default
parser keeps whole, and the query is cast straight to ``tsquery`` so no stop word or stemmer
changes it. The capped count decides the page's plan: when it proves the match set small, the
page is read off GIN and sorted; otherwise the planner picks (the sort index, for common words).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from keel.bittorrented.query import Clause, Phrase, Query
from keel.bittorrented.search import sql
from keel.bittorrented.search.base import SearchPage, SearchRequest


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


# The planner switches that leave a bitmap scan of GIN as the only way to the page's keys.
GIN_ONLY = (("enable_indexscan", "off"), ("enable_indexonlyscan", "off"), ("enable_seqscan", "off"))


class TsvectorSearch(sql.SqlSearch):
    """:class:`~keel.bittorrented.search.base.SearchEngine` on PostgreSQL."""

    async def _search(self, conn: AsyncConnection, request: SearchRequest) -> SearchPage:
        where = sql.Where()
        query_text = tsquery(request.query)
        if query_text is not None:
            where.add("s.tsv @@ CAST(:tsq AS tsquery)", tsq=query_text)
        sql.add_filters(where, request)
        # JIT compiles a plan for 50-200 ms once its cost passes jit_above_cost, as any plan
        # over a table of millions does; a search runs its plan once, so that is pure loss.
        await conn.execute(text("SET LOCAL jit = off"))
        count_text, count_params = sql.count_sql(where, self._count_cap)
        total = int((await conn.execute(text(count_text), count_params)).scalar_one())
        if total == 0:
            return SearchPage(hits=(), total=0, total_is_estimate=False, next_after=None)
        estimate = total > self._count_cap
        planner: tuple[tuple[str, str], ...] = ()
        if estimate:
            total = max(await self._planner_rows(conn, where), self._count_cap)
        elif query_text is not None:
            # At most count_cap names match, and the count just proved it: read them off GIN
            # and sort them. The planner, estimating conjunctions as independent, may instead
            # walk a sort index hoping to meet 50 matches early; for "x264 flac" (millions of
            # names each, none together) that walk reads the whole index (18 s at 2.5M rows).
            planner = GIN_ONLY
        hits = await sql.read_page(conn, where, request, planner=planner)
        next_after = (hits[-1].sort_value, hits[-1].id) if len(hits) == request.limit else None
        return SearchPage(hits=hits, total=total, total_is_estimate=estimate, next_after=next_after)

    async def _planner_rows(self, conn: AsyncConnection, where: sql.Where) -> int:
        """bitmagnet's "budgeted count": past the cap, the planner's estimate is the answer."""
        statement = text(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM torrent_search s WHERE {where.sql()}"
        )
        plan: Any = (await conn.execute(statement, where.params)).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"])
