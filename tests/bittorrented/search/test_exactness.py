"""Search is exact: for random corpora and random queries, every sort, every page, on every
engine, the hits are exactly what a brute-force scan of the tokens says they must be."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.naming.classify import ContentType
from keel.bittorrented.search.base import (
    SORTS,
    Filters,
    Order,
    SearchEngine,
    SearchRequest,
    Sort,
)
from keel.bittorrented.search.fts5 import Fts5Search
from keel.bittorrented.search.query import Query, matches
from keel.bittorrented.search.ranking import SORT_COLUMNS, descending, relevance_key
from keel.bittorrented.search.tokens import tokenize
from keel.bittorrented.search.tsvector import TsvectorSearch
from keel.core import db
from tests.bittorrented.conftest import NOW, entry
from tests.bittorrented.strategies import names, queries

MB, GB = 2**20, 2**30
# Few values, so ties are common, spread over the tiers of ranking.TIER_BOUNDS (relevance
# spreads itself: names have 1 to 7 words, and more tokens when a word splits).
documents = st.lists(
    st.tuples(
        names(),
        st.sampled_from([0, 2, 3, 9, 2000]),  # seeders
        st.sampled_from([1, 900 * MB, 20 * GB]),  # size
        st.sampled_from([0, 1, 1500, 4500]),  # days old
        st.sampled_from([ContentType.MOVIE, ContentType.TV_SHOW, ContentType.MUSIC]),
    ),
    max_size=30,
)
ORDERS: tuple[Order, ...] = ("desc", "asc")
columns = tuple(SORT_COLUMNS.values())
filters = st.builds(
    Filters,
    content_types=st.sampled_from([(), ("movie",), ("movie", "music")]),
    size_min=st.sampled_from([None, 900 * MB]),
    size_max=st.sampled_from([None, 3 * GB]),
)


@dataclass(frozen=True)
class Doc:
    id: int
    name: str
    content_type: str
    size: int
    keys: dict[str, int]


def reference(docs: list[Doc], query: Query, f: Filters, sort: Sort, order: Order) -> list[int]:
    chosen = [
        d
        for d in docs
        if matches(query, tokenize(d.name))
        and (not f.content_types or d.content_type in f.content_types)
        and (f.size_min is None or d.size >= f.size_min)
        and (f.size_max is None or d.size <= f.size_max)
    ]
    column = SORT_COLUMNS[sort]
    chosen.sort(key=lambda d: (d.keys[column], d.id), reverse=descending(sort, order))
    return [d.id for d in chosen]


Case = tuple[Query, Filters]
Row = tuple[str, int, int, int, ContentType]


async def _check(url: str, rows: list[Row], cases: list[Case], limit: int) -> None:
    engine = bootstrap.db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(models.torrents))
            await conn.execute(delete(models.torrent_sources))
            await bulk.write(
                conn,
                [
                    entry(
                        name,
                        seeders=seeders,
                        size=size,
                        published=NOW - timedelta(days=days),
                        content_type=ctype,
                        seed=f"{i}",
                    )
                    for i, (name, seeders, size, days, ctype) in enumerate(rows)
                ],
                now=NOW,
            )
        async with engine.connect() as conn:
            s, t = models.torrent_search, models.torrents
            result = await conn.execute(select(s, t.c.name).join(t, t.c.info_hash == s.c.info_hash))
            docs = [
                Doc(r.id, r.name, r.content_type, r.size, {c: r._mapping[c] for c in columns})
                for r in result
            ]
        for search, exact_total in engines(engine):
            for query, f in cases:
                for sort in SORTS:
                    for order in ORDERS:
                        expected = reference(docs, query, f, sort, order)
                        got = await every_page(search, SearchRequest(query, sort, order, f, limit))
                        assert got.ids == expected, (search, query, f, sort, order)
                        if exact_total:
                            assert not got.estimated
                        if not got.estimated:  # a total not marked as estimated is exact
                            assert got.totals == {len(expected)}
    finally:
        await engine.dispose()


def engines(engine: AsyncEngine) -> list[tuple[SearchEngine, bool]]:
    """Every way a page is made, with whether its total is exact: the capped count proving the
    set small; and past the cap, on PostgreSQL the tiers after a count (count_cap=1, never
    uncounted) or without one (count_cap=0), each tier's first walk filling the page (the
    default budget), or stopping after 2 rows and the rest of the tier read off its GIN
    (sparse=1000) or walked (sparse=0); on SQLite the walk of the sort index."""
    if db.is_postgres(engine):
        return [
            (TsvectorSearch(engine, count_cap=1000), True),
            (TsvectorSearch(engine, count_cap=1, uncounted=10**9), False),
            (TsvectorSearch(engine, count_cap=0), False),
            (TsvectorSearch(engine, count_cap=0, sparse=1000, walk_budget=2), False),
            (TsvectorSearch(engine, count_cap=0, sparse=0, walk_budget=2), False),
        ]
    return [(Fts5Search(engine, count_cap=1000), True), (Fts5Search(engine, count_cap=0), False)]


@dataclass
class Pages:
    ids: list[int]
    totals: set[int]
    estimated: bool


async def every_page(search: SearchEngine, request: SearchRequest) -> Pages:
    out = Pages([], set(), False)
    while True:
        page = await search.search(request)
        out.ids.extend(h.id for h in page.hits)
        out.totals.add(page.total)
        out.estimated |= page.total_is_estimate
        if page.next_after is None:
            return out
        request = dataclasses.replace(request, after=page.next_after)


def test_search_equals_brute_force_for_every_sort_and_page(bt_engine: object, db_url: str) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        docs=documents,
        cases=st.lists(st.tuples(queries, filters), min_size=1, max_size=4),
        limit=st.integers(1, 7),
    )
    def check(docs: list[Row], cases: list[Case], limit: int) -> None:
        asyncio.run(_check(db_url, docs, cases, limit))

    check()


def test_relevance_prefers_shorter_names_then_more_seeders() -> None:
    assert relevance_key(2, 0) < relevance_key(3, 100)
    assert relevance_key(2, 10) < relevance_key(2, 9)
