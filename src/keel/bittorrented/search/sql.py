"""The SQL both engines share: filters, keyset ranges, the capped count and the page itself.

Statements are assembled from fixed fragments only; every value is a bind parameter, except
a tier's bounds, integers of ours that :func:`tier_predicate` writes in so that the planner can
match them to a partial index.

An engine supplies only its match predicate (FTS5 ``MATCH`` or a tsquery) and how it runs a
statement under a deadline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented.search import deadline
from keel.bittorrented.search.base import Kind, SearchHit, SearchPage, SearchRequest, Sort
from keel.bittorrented.search.ranking import SORT_COLUMNS, Tier, descending

# A hit's columns from torrent_search; the name comes from torrents, joined to the page only.
HIT_COLUMNS = (
    "s.id, s.info_hash, s.size, s.seeders, s.leechers, s.published_ts, "
    "s.content_type, s.year, s.resolution, s.season, s.episode"
)


@dataclass
class Where:
    """Conjunction of SQL fragments with their bind parameters."""

    parts: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, fragment: str, **params: Any) -> None:
        self.parts.append(fragment)
        self.params.update(params)

    def sql(self) -> str:
        return " AND ".join(self.parts) if self.parts else "1=1"

    def including(self, fragment: str, **params: Any) -> Where:
        """A copy with one more conjunct."""
        out = Where(list(self.parts), dict(self.params))
        out.add(fragment, **params)
        return out


def tier_predicate(sort: Sort, tier: Tier) -> str:
    """The tier's key range, with its bounds written in (not bound): the planner can use a
    partial index only where it proves the query implies the index's predicate, and a bound
    parameter proves nothing in a generic plan. The index's predicate is the same range
    (``tier_indexes.index_predicate``)."""
    column = f"s.{SORT_COLUMNS[sort]}"
    parts = []
    if tier.low is not None:
        parts.append(f"{column} >= {int(tier.low)}")
    if tier.high is not None:
        parts.append(f"{column} < {int(tier.high)}")
    return "(" + " AND ".join(parts) + ")" if parts else "1=1"


def add_filters(where: Where, request: SearchRequest) -> None:
    f = request.filters
    if f.content_types:
        names = {f"ct{i}": v for i, v in enumerate(f.content_types)}
        where.add(f"s.content_type IN ({', '.join(':' + k for k in names)})", **names)
    if f.resolutions:
        names = {f"res{i}": v for i, v in enumerate(f.resolutions)}
        where.add(f"s.resolution IN ({', '.join(':' + k for k in names)})", **names)
    if f.year_min is not None:
        where.add("s.year >= :year_min", year_min=f.year_min)
    if f.year_max is not None:
        where.add("s.year <= :year_max", year_max=f.year_max)
    if f.size_min is not None:
        where.add("s.size >= :size_min", size_min=f.size_min)
    if f.size_max is not None:
        where.add("s.size <= :size_max", size_max=f.size_max)
    if f.kinds:
        _add_kinds(where, f.kinds)
    if f.season is not None:
        where.add("s.season = :season", season=f.season)
    if f.episode is not None:
        where.add("s.episode = :episode", episode=f.episode)
    if f.published_min_ts is not None:
        where.add("s.published_ts >= :published_min", published_min=f.published_min_ts)


def _add_kinds(where: Where, kinds: tuple[Kind, ...]) -> None:
    """One OR of (content type AND resolution range) terms; Kind.matches is the reference."""
    terms: list[str] = []
    params: dict[str, Any] = {}
    for i, kind in enumerate(kinds):
        term = f"s.content_type = :kind{i}"
        params[f"kind{i}"] = kind.content_type
        if kind.resolutions:
            names = {f"kind{i}_res{j}": r for j, r in enumerate(kind.resolutions)}
            listed = f"s.resolution IN ({', '.join(':' + k for k in names)})"
            params.update(names)
            if kind.other_resolutions:
                term += f" AND (s.resolution IS NULL OR NOT {listed})"
            else:
                term += f" AND {listed}"
        terms.append(f"({term})")
    where.add("(" + " OR ".join(terms) + ")", **params)


def count_sql(where: Where, cap: int) -> tuple[str, dict[str, Any]]:
    """Count the matches, stopping at ``cap + 1`` rows so a huge set costs a bounded scan."""
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM torrent_search s WHERE {where.sql()} "
        "LIMIT :count_cap) AS capped"
    )
    return sql, {**where.params, "count_cap": cap + 1}


def page_keys_sql(
    where: Where, request: SearchRequest, *, indexed_cursor: bool = True
) -> tuple[str, dict[str, Any]]:
    """The page's ids and sort values: the keyset range, then ORDER BY (sort column, id) in one
    direction. It reads nothing but what the sort index holds (on PostgreSQL the index INCLUDEs
    ``tsv`` and the filter columns, migration 0005), so a walk for a common word is index-only;
    the hits' other columns are read for the page's ids alone (:func:`hits_sql`)."""
    column = f"s.{SORT_COLUMNS[request.sort]}"
    page = past_cursor(where, request, indexed=indexed_cursor)
    direction = _direction(request)
    sql = (
        f"SELECT s.id, {column} AS sort_value FROM torrent_search s WHERE {page.sql()} "
        f"ORDER BY {column} {direction}, s.id {direction} LIMIT :page_limit"
    )
    return sql, {**page.params, "page_limit": request.limit}


def _direction(request: SearchRequest) -> str:
    return "DESC" if descending(request.sort, request.order) else "ASC"


def past_cursor(where: Where, request: SearchRequest, *, indexed: bool = True) -> Where:
    """``where`` and, when the request has a cursor, the keyset range past it: as an index
    range, or (``indexed`` false) as a filter the planner cannot turn into a bitmap of the sort
    index. A GIN read wants the latter: PostgreSQL misjudges a row comparison's selectivity
    and would AND the GIN bitmap with a bitmap of every row past the cursor (128 ms instead
    of 0.4 ms for a tier's count at 10M names)."""
    if request.after is None:
        return where
    column = f"s.{SORT_COLUMNS[request.sort]}"
    op = "<" if descending(request.sort, request.order) else ">"
    key = f"({column}, s.id)" if indexed else f"({column} + 0, s.id + 0)"
    return where.including(
        f"{key} {op} (:after_value, :after_id)",
        after_value=request.after[0],
        after_id=request.after[1],
    )


def capped_page_sql(where: Where, request: SearchRequest, cap: int) -> tuple[str, dict[str, Any]]:
    """Up to ``cap + 1`` matches read once: their number (the row whose ``id`` is NULL) and
    the page of them past the cursor. When the number is at most ``cap`` that page is the
    page, and a count and a page read would have matched (and, for a phrase, rechecked) the
    same rows twice. PostgreSQL only (a materialised CTE)."""
    column = SORT_COLUMNS[request.sort]
    cursor = past_cursor(Where(), request, indexed=False)
    direction = _direction(request)
    sql = (
        f"WITH m AS MATERIALIZED (SELECT s.id, s.{column} FROM torrent_search s "
        f"WHERE {where.sql()} LIMIT :cap) "
        "SELECT count(*) AS total, NULL AS id, NULL AS sort_value FROM m "
        f"UNION ALL (SELECT NULL, s.id, s.{column} FROM m AS s WHERE {cursor.sql()} "
        f"ORDER BY s.{column} {direction}, s.id {direction} LIMIT :page_limit)"
    )
    params = {**where.params, **cursor.params, "cap": cap + 1, "page_limit": request.limit}
    return sql, params


def budgeted_walk_sql(
    match: Where, bounds: Where, request: SearchRequest, budget: int
) -> tuple[str, dict[str, Any]]:
    """The first ``budget`` rows of the sort index within ``bounds`` past the cursor, each
    tested for ``match`` as it is read (index-only, when the index covers ``match``). It returns
    the first ``request.limit`` matches in order (``hit`` true) and then, when the walk stopped
    at the budget rather than at the end of ``bounds``, the last row it read (``hit`` NULL):
    where a further search of ``bounds`` picks up. PostgreSQL only (a materialised CTE)."""
    column = f"s.{SORT_COLUMNS[request.sort]}"
    walked = past_cursor(bounds, request)
    direction = _direction(request)
    backwards = "ASC" if direction == "DESC" else "DESC"
    sql = (
        f"WITH w AS MATERIALIZED (SELECT s.id, {column} AS sort_value, ({match.sql()}) AS hit "
        f"FROM torrent_search s WHERE {walked.sql()} "
        f"ORDER BY {column} {direction}, s.id {direction} LIMIT :budget) "
        "SELECT * FROM (SELECT id, sort_value, hit FROM w WHERE hit "
        f"ORDER BY sort_value {direction}, id {direction} LIMIT :page_limit) AS found "
        "UNION ALL SELECT * FROM (SELECT id, sort_value, CAST(NULL AS boolean) FROM w "
        f"ORDER BY sort_value {backwards}, id {backwards} LIMIT 1) AS last "
        "WHERE (SELECT count(*) FROM w) = :budget"
    )
    params = {**match.params, **walked.params, "budget": budget, "page_limit": request.limit}
    return sql, params


def hits_sql(ids: Sequence[int]) -> tuple[str, dict[str, Any]]:
    """The hits' columns and names for the page's ids, in no order (:func:`read_hits` puts
    them in the keys' order)."""
    params = {f"id{i}": row_id for i, row_id in enumerate(ids)}
    sql = (
        f"SELECT {HIT_COLUMNS}, t.name FROM torrent_search s "
        "JOIN torrents t ON t.info_hash = s.info_hash "
        f"WHERE s.id IN ({', '.join(':' + k for k in params)})"
    )
    return sql, params


@asynccontextmanager
async def planner_settings(
    conn: AsyncConnection, planner: Sequence[tuple[str, str]]
) -> AsyncIterator[None]:
    """PostgreSQL's ``SET LOCAL`` for each (name, value) around one statement, then RESET."""
    for name, value in planner:
        await conn.execute(text(f"SET LOCAL {name} = {value}"))
    yield
    for name, _ in planner:
        await conn.execute(text(f"RESET {name}"))


async def _rows(
    conn: AsyncConnection,
    statement: tuple[str, dict[str, Any]],
    planner: Sequence[tuple[str, str]],
) -> Sequence[Row[Any]]:
    """Every row of one built statement, planned under ``planner``."""
    sql, params = statement
    async with planner_settings(conn, planner):
        return (await conn.execute(text(sql), params)).all()


async def count(
    conn: AsyncConnection, where: Where, cap: int, *, planner: Sequence[tuple[str, str]] = ()
) -> int:
    """The matches of ``where``, counted up to ``cap + 1``."""
    return int((await _rows(conn, count_sql(where, cap), planner))[0][0])


async def read_keys(
    conn: AsyncConnection,
    where: Where,
    request: SearchRequest,
    *,
    planner: Sequence[tuple[str, str]] = (),
    indexed_cursor: bool = True,
) -> list[tuple[int, int]]:
    """The page's (id, sort value) pairs in order, planned under ``planner``."""
    rows = await _rows(conn, page_keys_sql(where, request, indexed_cursor=indexed_cursor), planner)
    return [(row.id, row.sort_value) for row in rows]


async def capped_page(
    conn: AsyncConnection,
    where: Where,
    request: SearchRequest,
    cap: int,
    *,
    planner: Sequence[tuple[str, str]] = (),
) -> tuple[int, list[tuple[int, int]]]:
    """:func:`capped_page_sql`: the matches counted up to ``cap + 1``, and when there are at
    most ``cap`` of them, the page's keys in order (else an empty list)."""
    rows = await _rows(conn, capped_page_sql(where, request, cap), planner)
    total = next(int(row.total) for row in rows if row.id is None)
    if total > cap:
        return total, []
    keys = [(row.id, row.sort_value) for row in rows if row.id is not None]
    keys.sort(key=lambda k: (k[1], k[0]), reverse=descending(request.sort, request.order))
    return total, keys


async def budgeted_walk(
    conn: AsyncConnection,
    match: Where,
    bounds: Where,
    request: SearchRequest,
    budget: int,
    *,
    planner: Sequence[tuple[str, str]] = (),
) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """:func:`budgeted_walk_sql`: the matches' keys, and the (sort value, id) the walk stopped
    at when it stopped at the budget (None: it reached the end of ``bounds``)."""
    rows = await _rows(conn, budgeted_walk_sql(match, bounds, request, budget), planner)
    found = [(row.id, row.sort_value) for row in rows if row.hit]
    stopped = [(row.sort_value, row.id) for row in rows if row.hit is None]
    return found, (stopped[0] if stopped else None)


async def read_hits(
    conn: AsyncConnection, keys: Sequence[tuple[int, int]]
) -> tuple[SearchHit, ...]:
    """The hits for the page's keys, in the keys' order."""
    if not keys:
        return ()
    statement, params = hits_sql([row_id for row_id, _ in keys])
    rows = {row.id: row for row in await conn.execute(text(statement), params)}
    # A torrent removed between the two statements drops out of the page.
    return tuple(hit_from_row(rows[i], value) for i, value in keys if i in rows)


async def read_page(
    conn: AsyncConnection,
    where: Where,
    request: SearchRequest,
    *,
    planner: Sequence[tuple[str, str]] = (),
    indexed_cursor: bool = True,
) -> tuple[SearchHit, ...]:
    """The page in one walk: its keys under ``planner``, then its hits."""
    keys = await read_keys(conn, where, request, planner=planner, indexed_cursor=indexed_cursor)
    return await read_hits(conn, keys)


def hit_from_row(row: Any, sort_value: int) -> SearchHit:
    return SearchHit(
        id=row.id,
        info_hash=bytes(row.info_hash),
        name=row.name,
        size=row.size,
        seeders=row.seeders,
        leechers=row.leechers,
        published_ts=row.published_ts,
        content_type=row.content_type,
        year=row.year,
        resolution=row.resolution,
        sort_value=sort_value,
        season=row.season,
        episode=row.episode,
    )


class SqlSearch:
    """What both engines share: a statement deadline per search and the count cap past which
    the total is an estimate. An engine supplies ``_search`` on the deadline's connection."""

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
        raise NotImplementedError
