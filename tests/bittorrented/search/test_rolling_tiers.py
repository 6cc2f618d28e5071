"""The date tiers roll with the clock: past 2030 each still spans at most a year of names, a
job has made their indexes ahead (PostgreSQL), and the date sort is still exact."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented import bootstrap, models
from keel.bittorrented.catalog import bulk
from keel.bittorrented.search import ranking, sql, tier_indexes, tsvector
from keel.bittorrented.search.base import Order, SearchEngine, SearchRequest
from keel.bittorrented.search.fts5 import Fts5Search
from keel.bittorrented.search.query import parse
from keel.bittorrented.search.ranking import Tier
from keel.bittorrented.search.tsvector import TsvectorSearch
from keel.core import db, migrations
from keel.core.clock import FrozenClock
from tests.bittorrented.conftest import entry

LATER = datetime(2031, 6, 1, tzinfo=UTC)  # past 2030, five new years after migration 0006
DATE_INDEX_PREFIX = "ix_torrent_search_tsv_date_"


def _new_year(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


def _span_years(tier: Tier) -> float:
    assert tier.low is not None
    assert tier.high is not None
    return (tier.high - tier.low) / (365.25 * 86400)


# --- The tiers ---------------------------------------------------------------------------------


def test_until_2027_the_tiers_are_migration_0006s() -> None:
    migration = importlib.import_module("keel.bittorrented.migrations.versions.0006_tiered_gin")
    for now in (datetime(2020, 3, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC)):
        assert ranking.tier_bounds("date", now) == migration.BOUNDS["date"][1]


@pytest.mark.parametrize("year", [2027, 2028, 2030, 2031, 2040, 2100])
def test_every_year_the_newest_tier_holds_that_year_alone(year: int) -> None:
    now = datetime(year, 7, 1, tzinfo=UTC)
    walk = ranking.tiers("date", "desc", now=now)
    top, newest, *older = walk
    assert (top.low, top.high) == (_new_year(year + 1), None)  # only names dated ahead
    assert (newest.low, newest.high) == (_new_year(year), _new_year(year + 1))
    assert newest.holds(int(now.timestamp()))
    # Bounded: every closed tier spans two years at most, however late the clock.
    assert all(_span_years(tier) <= 2.01 for tier in older[:-1])
    assert older[-1].low is None  # the first tier: before 2016
    bounds = ranking.tier_bounds("date", now)
    assert list(bounds) == sorted(set(bounds))


def test_on_new_years_day_the_top_tier_becomes_a_year_and_a_new_top_begins() -> None:
    eve = datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
    day = eve + timedelta(seconds=1)
    before = ranking.tier_bounds("date", eve)
    after = ranking.tier_bounds("date", day)
    assert after == (*before, _new_year(2032))


def test_the_date_tiers_indexes_are_named_for_their_years() -> None:
    names = tier_indexes.date_indexes(2031)
    assert list(names)[:2] == [
        f"{DATE_INDEX_PREFIX}until_2016",
        f"{DATE_INDEX_PREFIX}2016_2018",
    ]
    assert list(names)[-2:] == [f"{DATE_INDEX_PREFIX}2031_2032", f"{DATE_INDEX_PREFIX}from_2032"]
    assert names[f"{DATE_INDEX_PREFIX}2031_2032"] == (
        f"published_ts >= {_new_year(2031)} AND published_ts < {_new_year(2032)}"
    )


def test_migration_0008_names_0006s_indexes_as_the_job_does() -> None:
    renames = importlib.import_module(
        "keel.bittorrented.migrations.versions.0008_rolling_date_tiers"
    ).RENAMES
    assert list(renames) == [f"{DATE_INDEX_PREFIX}{i:02d}" for i in range(10)]
    assert list(renames.values()) == list(tier_indexes.date_indexes(2026))


# --- Exact past 2030, on both engines ---------------------------------------------------------

# Names on both sides of every new year from 2025 to 2033 (a second before and at midnight),
# and mid-year, all matching "common" so a page is built tier by tier.
PUBLISHED = [
    datetime(year, 1, 1, tzinfo=UTC) + offset
    for year in range(2025, 2034)
    for offset in (timedelta(seconds=-1), timedelta(0), timedelta(days=180))
]


def engines(engine: AsyncEngine, clock: FrozenClock) -> list[SearchEngine]:
    """Every way a page is made, past the count cap (as in test_exactness)."""
    if db.is_postgres(engine):
        return [
            TsvectorSearch(engine, count_cap=0, clock=clock),
            TsvectorSearch(engine, count_cap=0, sparse=1000, walk_budget=2, clock=clock),
            TsvectorSearch(engine, count_cap=0, sparse=0, walk_budget=2, clock=clock),
            TsvectorSearch(engine, count_cap=1000, clock=clock),
        ]
    return [Fts5Search(engine, count_cap=0), Fts5Search(engine, count_cap=1000)]


async def _all_pages(search: SearchEngine, request: SearchRequest) -> list[int]:
    ids: list[int] = []
    while True:
        page = await search.search(request)
        ids.extend(hit.id for hit in page.hits)
        if page.next_after is None:
            return ids
        request = dataclasses.replace(request, after=page.next_after)


async def _load(engine: AsyncEngine) -> dict[int, tuple[int, str]]:
    """id -> (published_ts, name) of the names written."""
    entries = [
        entry(f"common {'rare ' if i % 3 == 0 else ''}name {i}", published=when, seed=f"r{i}")
        for i, when in enumerate(PUBLISHED)
    ]
    async with engine.begin() as conn:
        await bulk.write(conn, entries, now=LATER)
    async with engine.connect() as conn:
        s, t = models.torrent_search, models.torrents
        rows = await conn.execute(
            select(s.c.id, s.c.published_ts, t.c.name).join(t, t.c.info_hash == s.c.info_hash)
        )
        return {r.id: (r.published_ts, r.name) for r in rows}


@pytest.mark.parametrize("order", ["desc", "asc"])
async def test_past_2030_the_date_sort_is_exact_on_every_page(
    bt_engine: AsyncEngine, order: Order
) -> None:
    clock = FrozenClock(LATER)
    await tier_indexes.roll_date_tiers(bt_engine, clock.now())
    docs = await _load(bt_engine)
    for query in ("common", "rare"):
        expected = sorted(
            (key for key, (_, name) in docs.items() if query in name.split()),
            key=lambda key: (docs[key][0], key),
            reverse=order == "desc",
        )
        for search in engines(bt_engine, clock):
            for limit in (1, 4, 50):
                request = SearchRequest(parse(query), sort="date", order=order, limit=limit)
                assert await _all_pages(search, request) == expected, (search, query, limit)


async def test_a_cursor_from_before_new_year_reads_on_after_it(bt_engine: AsyncEngine) -> None:
    # The tiers change at midnight; a page cursor taken before still pages on exactly.
    if not db.is_postgres(bt_engine):
        pytest.skip("PostgreSQL only: FTS5 walks one index, without tiers")
    docs = await _load(bt_engine)
    clock = FrozenClock(datetime(2030, 12, 31, 23, 59, tzinfo=UTC))
    search = TsvectorSearch(bt_engine, count_cap=0, sparse=0, walk_budget=2, clock=clock)
    request = SearchRequest(parse("common"), sort="date", order="desc", limit=5)
    first = await search.search(request)
    clock.advance(timedelta(minutes=2))
    rest = await _all_pages(search, dataclasses.replace(request, after=first.next_after))
    expected = sorted(docs, key=lambda key: (docs[key][0], key), reverse=True)
    assert [hit.id for hit in first.hits] + rest == expected


# --- The job (PostgreSQL) ---------------------------------------------------------------------


async def _date_indexes(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'torrent_search' "
                "AND indexname LIKE :prefix"
            ),
            {"prefix": DATE_INDEX_PREFIX.replace("_", r"\_") + "%"},
        )
        return set(rows.scalars())


def _postgres_only(engine: AsyncEngine) -> None:
    if not db.is_postgres(engine):
        pytest.skip("PostgreSQL only: SQLite has no partial FTS5")


async def test_the_job_makes_next_years_tiers_ahead_and_drops_passed_tops(
    bt_engine: AsyncEngine,
) -> None:
    _postgres_only(bt_engine)
    assert await _date_indexes(bt_engine) == set(tier_indexes.date_indexes(2026))
    rolled = await tier_indexes.roll_date_tiers(bt_engine, datetime(2026, 12, 6, tzinfo=UTC))
    # In December 2026: 2027's tier and its top, over a range still empty; 0006's top stays
    # (2026's tiers use it).
    assert rolled.created == (f"{DATE_INDEX_PREFIX}2027_2028", f"{DATE_INDEX_PREFIX}from_2028")
    assert rolled.dropped == ()
    for year in range(2027, 2032):  # a round in each year, as the hourly job would run
        await tier_indexes.roll_date_tiers(bt_engine, datetime(year, 1, 1, 0, 30, tzinfo=UTC))
    present = await _date_indexes(bt_engine)
    assert present == {**tier_indexes.date_indexes(2031), **tier_indexes.date_indexes(2032)}.keys()
    tops = sorted(name for name in present if "_from_" in name)
    assert tops == [f"{DATE_INDEX_PREFIX}from_2032", f"{DATE_INDEX_PREFIX}from_2033"]
    again = await tier_indexes.roll_date_tiers(bt_engine, LATER)
    assert (again.created, again.dropped) == ((), ())


async def test_a_clock_set_back_takes_no_index_away(bt_engine: AsyncEngine) -> None:
    _postgres_only(bt_engine)
    await tier_indexes.roll_date_tiers(bt_engine, LATER)
    before = await _date_indexes(bt_engine)
    back = await tier_indexes.roll_date_tiers(bt_engine, datetime(2026, 6, 1, tzinfo=UTC))
    assert back.dropped == ()
    assert await _date_indexes(bt_engine) >= before


async def test_a_build_that_died_half_way_is_made_again(bt_engine: AsyncEngine) -> None:
    _postgres_only(bt_engine)
    await tier_indexes.roll_date_tiers(bt_engine, LATER)
    name = f"{DATE_INDEX_PREFIX}2031_2032"
    async with bt_engine.begin() as conn:  # what a killed CREATE INDEX CONCURRENTLY leaves
        await conn.execute(
            text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = CAST(:n AS regclass)"),
            {"n": name},
        )
    rolled = await tier_indexes.roll_date_tiers(bt_engine, LATER)
    assert (rolled.dropped, rolled.created) == ((name,), (name,))
    async with bt_engine.connect() as conn:
        valid = await conn.execute(
            text("SELECT indisvalid FROM pg_index WHERE indexrelid = CAST(:n AS regclass)"),
            {"n": name},
        )
        assert valid.scalar_one() is True


async def test_one_process_rolls_at_a_time(bt_engine: AsyncEngine) -> None:
    _postgres_only(bt_engine)
    rounds = await asyncio.gather(
        *(tier_indexes.roll_date_tiers(bt_engine, LATER) for _ in range(4))
    )
    assert sum(not r.skipped for r in rounds) >= 1
    made = [name for r in rounds for name in r.created]
    assert len(made) == len(set(made))  # nothing built twice
    assert await _date_indexes(bt_engine) >= tier_indexes.date_indexes(2031).keys()


async def test_past_2030_each_date_tier_is_counted_on_its_own_gin(bt_engine: AsyncEngine) -> None:
    _postgres_only(bt_engine)
    await tier_indexes.roll_date_tiers(bt_engine, LATER)
    where = sql.Where()
    where.add("s.tsv @@ CAST(:tsq AS tsquery)", tsq=tsvector.tsquery(parse("common")))
    async with bt_engine.connect() as conn:
        for tier in ranking.tiers("date", "asc", now=LATER):
            statement, params = sql.count_sql(
                where.including(sql.tier_predicate("date", tier)), tsvector.SPARSE
            )
            async with conn.begin() as transaction:
                # As in test_postgresql_plans: with the whole-table GIN and the sort index
                # gone, a bitmap can only come from a partial GIN the statement proves.
                await conn.execute(
                    text("DROP INDEX ix_torrent_search_tsv, ix_torrent_search_published")
                )
                for name, value in tsvector.GIN_ONLY:
                    await conn.execute(text(f"SET LOCAL {name} = {value}"))
                explained = text(f"EXPLAIN (FORMAT JSON) {statement}")
                plan = (await conn.execute(explained, params)).scalar_one()[0]
                await transaction.rollback()
            used = _indexes_used(plan)
            assert used == {tier_indexes.index_name("date", tier)}, (tier, used)


def _indexes_used(plan: dict[str, object]) -> set[str]:
    node = plan.get("Plan", plan)
    assert isinstance(node, dict)
    found = {node["Index Name"]} if "Index Name" in node else set()
    return found.union(*(_indexes_used(child) for child in node.get("Plans", [])))


async def test_the_job_stops_when_told_and_leaves_the_indexes_made(
    bt_engine: AsyncEngine,
) -> None:
    _postgres_only(bt_engine)
    stop = asyncio.Event()
    job = asyncio.create_task(
        tier_indexes.keep_rolling(bt_engine, FrozenClock(LATER), stop, interval_seconds=3600)
    )
    for _ in range(200):
        if await _date_indexes(bt_engine) >= tier_indexes.date_indexes(2032).keys():
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(job, timeout=10)
    assert await _date_indexes(bt_engine) >= tier_indexes.date_indexes(2032).keys()


async def test_migration_0008_goes_down_to_0006s_indexes_and_up_again(
    bt_engine: AsyncEngine,
) -> None:
    _postgres_only(bt_engine)
    await tier_indexes.roll_date_tiers(bt_engine, LATER)  # 0006's top is gone by now
    config = migrations.alembic_config(bootstrap.MIGRATIONS, bootstrap.VERSION_TABLE)

    def run(connection: Connection, step: str) -> None:
        config.attributes["connection"] = connection
        if step == "down":
            command.downgrade(config, "0007")
        else:
            command.upgrade(config, "head")

    async with bt_engine.begin() as conn:
        await conn.run_sync(run, "down")
    assert await _date_indexes(bt_engine) == {f"{DATE_INDEX_PREFIX}{i:02d}" for i in range(10)}
    async with bt_engine.begin() as conn:
        await conn.run_sync(run, "up")
    assert await _date_indexes(bt_engine) == set(tier_indexes.date_indexes(2026))
