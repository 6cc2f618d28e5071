"""File-name search is exact too, and a query that matches nothing is respelled."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.search import files, fuzzy, query
from keel.bittorrented.search.query import Query, matches
from keel.bittorrented.search.tokens import tokenize
from keel.bittorrented.torrent.values import TorrentFile
from keel.core import db
from tests.bittorrented.conftest import NOW, entry, make_indexer
from tests.bittorrented.strategies import names, queries

torrents = st.lists(st.lists(names(), min_size=1, max_size=4), max_size=8)


async def _check_files(url: str, paths: list[list[str]], cases: list[Query], limit: int) -> None:
    engine = db.create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(delete(models.torrents))
            await conn.execute(delete(models.torrent_sources))
            await bulk.write(
                conn,
                [
                    entry(
                        f"torrent {i}",
                        seed=str(i),
                        files=tuple(TorrentFile(j, p, j) for j, p in enumerate(ps)),
                    )
                    for i, ps in enumerate(paths)
                ],
                now=NOW,
            )
        async with engine.connect() as conn:
            f, tf = models.torrent_file_search, models.torrent_files
            stored = (
                await conn.execute(
                    select(f.c.id, tf.c.path).join(
                        tf, (tf.c.info_hash == f.c.info_hash) & (tf.c.index == f.c.file_index)
                    )
                )
            ).all()
        for q in cases:
            expected = sorted((r.id for r in stored if matches(q, tokenize(r.path))), reverse=True)
            got: list[int] = []
            after = None
            while True:
                page = await files.search_files(engine, q, limit=limit, after=after)
                assert page.total == len(expected)
                got += [h.id for h in page.hits]
                after = page.next_after
                if after is None:
                    break
            assert got == expected, q
    finally:
        await engine.dispose()


def test_file_search_equals_brute_force(bt_engine: AsyncEngine, db_url: str) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(paths=torrents, cases=st.lists(queries, min_size=1, max_size=4), limit=st.integers(1, 5))
    def check(paths: list[list[str]], cases: list[Query], limit: int) -> None:
        asyncio.run(_check_files(db_url, paths, cases, limit))

    check()


async def test_a_misspelt_word_is_respelled_and_found(bt_engine: AsyncEngine) -> None:
    async with bt_engine.begin() as conn:
        await bulk.write(
            conn,
            [entry("The.Matrix.1999.1080p"), entry("Matrimony.Show.S01"), entry("Other")],
            now=NOW,
        )
    index = make_indexer(bt_engine)
    page = await index.search("matirx 1999")
    assert page.corrected_query == "matrix 1999"
    assert [h.name for h in page.hits] == ["The.Matrix.1999.1080p"]
    exact = await index.search("matrix")
    assert exact.corrected_query is None
    assert exact.total == 1


async def test_no_respelling_when_nothing_is_close(bt_engine: AsyncEngine) -> None:
    async with bt_engine.begin() as conn:
        await bulk.write(conn, [entry("The.Matrix.1999")], now=NOW)
    index = make_indexer(bt_engine)
    page = await index.search("zzzzqqq")
    assert page.total == 0
    assert page.corrected_query is None
    # Excluded words and short words are never respelled.
    async with bt_engine.connect() as conn:
        assert await fuzzy.respell(conn, query.parse("matrix -matirx")) is None
        assert await fuzzy.respell(conn, query.parse("mx")) is None


def test_trigram_similarity_matches_pg_trgm_definition() -> None:
    assert fuzzy.trigrams("cat") == {"  c", " ca", "cat", "at "}
    assert fuzzy.similarity("matrix", "matrix") == 1.0
    assert fuzzy.similarity("matirx", "matrix") > fuzzy.similarity("matirx", "matrimony")


@given(st.text("abc", max_size=8), st.text("abc", max_size=8))
def test_edit_distance_is_a_symmetric_measure_with_swaps(a: str, b: str) -> None:
    d = fuzzy.edit_distance(a, b)
    assert d == fuzzy.edit_distance(b, a)
    assert (d == 0) == (a == b)
    assert d <= max(len(a), len(b)) or abs(len(a) - len(b)) > 2


def test_edit_distance_counts_a_swap_once() -> None:
    assert fuzzy.edit_distance("matirx", "matrix") == 1
    assert fuzzy.edit_distance("kitten", "sitting") == 3
