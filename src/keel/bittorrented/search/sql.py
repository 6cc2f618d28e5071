"""The SQL both engines share: filters, keyset ranges, the capped count and the page itself.

Statements are assembled from fixed fragments only; every value is a bind parameter (hence the
``S608`` waivers below).

An engine supplies only its match predicate (FTS5 ``MATCH`` or a tsquery) and how it runs a
statement under a deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keel.bittorrented.search.base import Kind, SearchHit, SearchRequest
from keel.bittorrented.search.ranking import SORT_COLUMNS, descending

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


def page_sql(where: Where, request: SearchRequest) -> tuple[str, dict[str, Any]]:
    """The page: the keyset range, then ORDER BY (sort column, id) in one direction."""
    column = f"s.{SORT_COLUMNS[request.sort]}"
    desc = descending(request.sort, request.order)
    page = Where(list(where.parts), dict(where.params))
    if request.after is not None:
        op = "<" if desc else ">"
        page.add(
            f"({column}, s.id) {op} (:after_value, :after_id)",
            after_value=request.after[0],
            after_id=request.after[1],
        )
    direction = "DESC" if desc else "ASC"
    # ORDER BY and LIMIT inside, the join outside: otherwise the planner may join every match
    # to torrents before the top-N sort (measured: 99,000 primary-key probes for a page of 50).
    sql = (
        f"SELECT p.*, t.name FROM (SELECT {HIT_COLUMNS}, {column} AS sort_value "
        f"FROM torrent_search s WHERE {page.sql()} "
        f"ORDER BY {column} {direction}, s.id {direction} LIMIT :page_limit) AS p "
        f"JOIN torrents t ON t.info_hash = p.info_hash "
        f"ORDER BY p.sort_value {direction}, p.id {direction}"
    )
    return sql, {**page.params, "page_limit": request.limit}


def hit_from_row(row: Any) -> SearchHit:
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
        sort_value=row.sort_value,
        season=row.season,
        episode=row.episode,
    )
