"""Search is exact: for random corpora and random queries, every sort, every page, on every
engine, the hits are exactly what a brute-force scan of the tokens says they must be."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from keel.bittorrented import bootstrap, catalog, models
from keel.bittorrented.classify import ContentType
from keel.bittorrented.query import Query, matches
from keel.bittorrented.search.base import SORTS, Filters, Order, SearchRequest, Sort
from keel.bittorrented.search.ranking import SORT_COLUMNS, descending, relevance_key
from keel.bittorrented.tokens import tokenize
from tests.bittorrented.conftest import NOW, entry
from tests.bittorrented.strategies import names, queries

documents = st.lists(
    st.tuples(
        names(),
        st.integers(0, 3),  # seeders: few values, so ties are common
        st.integers(1, 4),  # size
        st.integers(0, 3),  # days old
        st.sampled_from([ContentType.MOVIE, ContentType.TV_SHOW, ContentType.MUSIC]),
    ),
    max_size=30,
)
ORDERS: tuple[Order, ...] = ("desc", "asc")
columns = tuple(SORT_COLUMNS.values())
filters = st.builds(
    Filters,
    content_types=st.sampled_from([(), ("movie",), ("movie", "music")]),
    size_min=st.sampled_from([None, 2]),
    size_max=st.sampled_from([None, 3]),
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
            await catalog.add(
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
        search = bootstrap.search_engine(engine, count_cap=1000)
        for query, f in cases:
            for sort in SORTS:
                for order in ORDERS:
                    expected = reference(docs, query, f, sort, order)
                    got: list[int] = []
                    after = None
                    while True:
                        request = SearchRequest(query, sort, order, f, limit, after)
                        page = await search.search(request)
                        assert page.total == len(expected)
                        assert not page.total_is_estimate
                        got.extend(h.id for h in page.hits)
                        after = page.next_after
                        if after is None:
                            break
                    assert got == expected, (query, f, sort, order)
    finally:
        await engine.dispose()


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
