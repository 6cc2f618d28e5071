"""The SQLite engine: FTS5 over our tokens, and a choice of plan per query.

SQLite's planner cannot see how many rows a MATCH yields, so we ask FTS5's vocabulary table
how many names hold each query word. A rare query reads its matches from the index and sorts
them (cheap: few rows). A common one (``the``, ``1080p``) walks the sort index instead and
probes each row against the MATCH until the page is full, which stops after a few hundred rows
rather than sorting a million. Both plans return the same rows; only the cost differs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented.query import Clause, Phrase, Query
from keel.bittorrented.search import deadline, sql
from keel.bittorrented.search.base import SearchPage, SearchRequest

# Probing one row costs about as much as reading this many doclist entries (measured by
# bench/bittorrented_search.py on 1M rows).
PROBE_COST = 8


def phrase_expr(phrase: Phrase) -> str:
    # Tokens are [a-z0-9]+ (keel.bittorrented.tokens), so quoting needs no escaping.
    return f'"{" ".join(phrase.tokens)}"' + ("*" if phrase.prefix else "")


def clause_expr(clause: Clause) -> str:
    return "(" + " OR ".join(phrase_expr(p) for p in clause.alternatives) + ")"


def match_expr(clauses: tuple[Clause, ...]) -> str:
    """FTS5 MATCH text requiring every clause (negation is applied outside)."""
    return " AND ".join(clause_expr(c) for c in clauses)


def any_expr(clauses: tuple[Clause, ...]) -> str:
    return " OR ".join(clause_expr(c) for c in clauses)


def match_text(query: Query) -> str | None:
    """The MATCH text of a query with at least one positive clause (negation inside it)."""
    if not query.positive:
        return None
    expr = match_expr(query.positive)
    if query.negative:
        expr = f"({expr}) NOT ({any_expr(query.negative)})"
    return expr


class Fts5Search:
    """:class:`~keel.bittorrented.search.base.SearchEngine` on SQLite FTS5."""

    def __init__(
        self, engine: AsyncEngine, *, timeout_seconds: float = 5.0, count_cap: int = 10_000
    ) -> None:
        self._engine = engine
        self._timeout = timeout_seconds
        self._count_cap = count_cap

    async def search(self, request: SearchRequest) -> SearchPage:
        async with deadline.connection(self._engine, self._timeout) as conn:
            return await self._search(conn, request)

    async def _search(self, conn: AsyncConnection, request: SearchRequest) -> SearchPage:
        filters = sql.Where()
        sql.add_filters(filters, request)
        expr = match_text(request.query)
        known: int | None = None
        if expr is not None and not filters.parts:
            # No filters: count straight off the FTS doclists, which stream, before choosing
            # the page's plan; an exact count at or under the cap settles the choice.
            known = await self._fts_count(conn, expr)
            if known == 0:
                return SearchPage(hits=(), total=0, total_is_estimate=False, next_after=None)
        where = sql.Where()
        await self._add_match(conn, where, request, known)
        where.parts.extend(filters.parts)
        where.params.update(filters.params)
        if known is None:
            count_text, count_params = sql.count_sql(where, self._count_cap)
            total = int((await conn.execute(text(count_text), count_params)).scalar_one())
            if total == 0:  # nothing to page through; a probing plan would walk the whole index
                return SearchPage(hits=(), total=0, total_is_estimate=False, next_after=None)
        else:
            total = known
        page_text, page_params = sql.page_sql(where, request)
        rows = (await conn.execute(text(page_text), page_params)).all()
        hits = tuple(sql.hit_from_row(row) for row in rows)
        next_after = (hits[-1].sort_value, hits[-1].id) if len(hits) == request.limit else None
        return SearchPage(
            hits=hits,
            total=min(total, self._count_cap),
            total_is_estimate=total > self._count_cap,
            next_after=next_after,
        )

    async def _fts_count(self, conn: AsyncConnection, expr: str) -> int:
        statement = text(
            "SELECT count(*) FROM (SELECT rowid FROM torrent_search_fts "
            "WHERE torrent_search_fts MATCH :match LIMIT :count_cap) AS capped"
        )
        params = {"match": expr, "count_cap": self._count_cap + 1}
        return int((await conn.execute(statement, params)).scalar_one())

    async def _add_match(
        self, conn: AsyncConnection, where: sql.Where, request: SearchRequest, known: int | None
    ) -> None:
        query = request.query
        expr = match_text(query)
        if expr is not None:
            # A count at or under the cap means few matches: read them and sort. Only a set
            # known (or estimated) to be large is worth probing row by row along the sort
            # index, and then the walk is short: about limit * rows / matches probes.
            large = known is None or known > self._count_cap
            if large and await self._probe_is_cheaper(conn, query, request.limit):
                where.add(
                    "EXISTS (SELECT 1 FROM torrent_search_fts f "
                    "WHERE torrent_search_fts MATCH :match AND f.rowid = s.id)",
                    match=expr,
                )
            else:
                where.add(
                    "s.id IN (SELECT rowid FROM torrent_search_fts "
                    "WHERE torrent_search_fts MATCH :match)",
                    match=expr,
                )
        elif query.negative:
            where.add(
                "s.id NOT IN (SELECT rowid FROM torrent_search_fts "
                "WHERE torrent_search_fts MATCH :exclude)",
                exclude=any_expr(query.negative),
            )

    async def _probe_is_cheaper(self, conn: AsyncConnection, query: Query, limit: int) -> bool:
        estimate = min([await self._clause_rows(conn, c) for c in query.positive])
        if estimate == 0:
            return False
        rows = await self._row_count(conn)
        expected_walk = limit * rows / estimate
        return expected_walk * PROBE_COST < estimate

    async def _clause_rows(self, conn: AsyncConnection, clause: Clause) -> int:
        """Upper bound on the names matching a clause: for each alternative, the rarest of its
        words (a prefix counts every word it starts), summed over the alternatives."""
        total = 0
        for phrase in clause.alternatives:
            counts = [await self._term_rows(conn, t, False) for t in phrase.tokens[:-1]]
            counts.append(await self._term_rows(conn, phrase.tokens[-1], phrase.prefix))
            total += min(counts)
        return total

    async def _term_rows(self, conn: AsyncConnection, token: str, prefix: bool) -> int:
        if prefix:
            statement = text(
                "SELECT coalesce(sum(doc), 0) FROM torrent_search_vocab "
                "WHERE term >= :lo AND term < :hi"
            )
            params: dict[str, Any] = {"lo": token, "hi": token + "\x7f"}
        else:
            statement = text(
                "SELECT coalesce(sum(doc), 0) FROM torrent_search_vocab WHERE term = :t"
            )
            params = {"t": token}
        return int((await conn.execute(statement, params)).scalar_one())

    async def _row_count(self, conn: AsyncConnection) -> int:
        # max(id) is an index lookup; count(*) would scan. Gaps only make the estimate cautious.
        value = (await conn.execute(text("SELECT max(id) FROM torrent_search"))).scalar_one()
        return int(value or 0)
