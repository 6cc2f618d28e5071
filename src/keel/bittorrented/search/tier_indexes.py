"""Each tier's partial GIN on PostgreSQL, and the job that makes the date tiers' ones ahead.

Relevance, seeders and size have fixed tiers, whose indexes migration 0006 made, named by
position (``ix_torrent_search_tsv_size_03``). The date tiers roll with the clock
(``ranking.date_tier_years``), so theirs are named for their years
(``ix_torrent_search_tsv_date_2027_2028``; the first ``…_date_until_2016``, the top one
``…_date_from_2028``) and :func:`roll_date_tiers` can tell which exist.

While the clock is in year Y, :func:`roll_date_tiers` makes the indexes of Y's tiers and of
Y+1's. Next year's tier and its new top cover names dated in the future, so each is built over
an empty range (a scan of the table, nothing to sort), ``CONCURRENTLY``, with writes going on.
It then drops the tops that no tier of Y or Y+1 uses: a top takes every new name, and after
1 January the old one would go on doing so beside the new year's tier. Until the job has run,
a search still answers exactly: the planner reads a tier off any index whose range holds it
(the old top holds the new year), or off the whole table's GIN. SQLite has no partial FTS5 and
nothing to do (ADR 0013).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keel.bittorrented.search import ranking
from keel.bittorrented.search.base import Sort
from keel.bittorrented.search.ranking import Tier
from keel.core import db
from keel.core.clock import Clock
from keel.core.logging import get_logger

log = get_logger("keel.bittorrented.search")
ROUNDS = Counter(
    "bittorrented_date_tier_rounds_total",
    "Rounds of the date tiers' index job by result (ok, skipped, failed)",
    ["result"],
)

_PREFIX = "ix_torrent_search_tsv_"
_DATE_PREFIX = _PREFIX + "date_"
_TOP = re.compile(re.escape(_DATE_PREFIX) + r"from_([0-9]{4})")
# One roller at a time (several workers may run): a session lock, held across the builds.
_LOCK_ID = zlib.crc32(b"bittorrented_date_tiers")
# The job's round. Next year's indexes are made in the first round of a year, so 1 January
# needs no build; the top it passes is dropped within the hour. A round with nothing to do
# costs one catalog query.
ROLL_INTERVAL_SECONDS = 3600.0


def index_name(sort: Sort, tier: Tier) -> str:
    """The name of the partial GIN on ``tsv`` that holds ``tier`` of ``sort``."""
    if sort != "date":
        return f"{_PREFIX}{sort}_{tier.index:02d}"
    if tier.low is None:
        return f"{_DATE_PREFIX}until_{_year(tier.high)}"
    if tier.high is None:
        return f"{_DATE_PREFIX}from_{_year(tier.low)}"
    return f"{_DATE_PREFIX}{_year(tier.low)}_{_year(tier.high)}"


def index_predicate(sort: Sort, tier: Tier) -> str:
    """The index's predicate: the tier's key range, as ``sql.tier_predicate`` writes it."""
    column = ranking.SORT_COLUMNS[sort]
    parts = []
    if tier.low is not None:
        parts.append(f"{column} >= {int(tier.low)}")
    if tier.high is not None:
        parts.append(f"{column} < {int(tier.high)}")
    return " AND ".join(parts)


def date_indexes(year: int) -> dict[str, str]:
    """Name -> predicate of the indexes the date tiers use while the clock is in ``year``."""
    now = datetime(year, 1, 1, tzinfo=UTC)
    return {
        index_name("date", tier): index_predicate("date", tier)
        for tier in ranking.tiers("date", "asc", now=now)
    }


@dataclass(frozen=True, slots=True)
class Rolled:
    """What a round did: indexes built, dropped (superseded tops, failed builds)."""

    created: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    skipped: bool = False  # another process held the lock, or SQLite


async def roll_date_tiers(engine: AsyncEngine, now: datetime) -> Rolled:
    """Make the date tiers' indexes for ``now``'s year and the next, and drop superseded tops.

    Idempotent; one process at a time (others skip the round). Each build runs
    ``CREATE INDEX CONCURRENTLY``; one that failed half-way (left invalid) is dropped and made
    again. Raises the database's error when a statement fails; the next round retries.
    """
    if not db.is_postgres(engine):
        return Rolled(skipped=True)
    wanted = {**date_indexes(now.year), **date_indexes(now.year + 1)}
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        locked = await conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": _LOCK_ID})
        if not locked.scalar_one():
            return Rolled(skipped=True)
        try:
            return await _roll(conn, wanted, now.year)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})


async def _roll(conn: AsyncConnection, wanted: dict[str, str], year: int) -> Rolled:
    existing = await _date_indexes_present(conn)
    created: list[str] = []
    dropped: list[str] = []
    for name, predicate in wanted.items():  # oldest first, the tops last
        if existing.get(name) is False:  # a build that died half-way: invalid, unused
            await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            dropped.append(name)
        if existing.get(name) is not True:
            log.info("date_tier_index_building", index=name, predicate=predicate)
            await conn.execute(
                text(
                    f"CREATE INDEX CONCURRENTLY {name} ON torrent_search "
                    f"USING gin (tsv) WHERE {predicate}"
                )
            )
            created.append(name)
    for name in existing:
        top = _TOP.fullmatch(name)
        # Only tops the clock has passed: the tiers of every later year keep the closed ones,
        # and a clock set back (a test, a skewed host) must not take away a newer year's.
        if top is not None and int(top.group(1)) <= year and name not in wanted:
            log.info("date_tier_index_dropping", index=name)
            await conn.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {name}"))
            dropped.append(name)
    return Rolled(tuple(created), tuple(dropped))


async def _date_indexes_present(conn: AsyncConnection) -> dict[str, bool]:
    """Name -> valid, of the date tiers' indexes on torrent_search."""
    rows = await conn.execute(
        text(
            "SELECT c.relname, x.indisvalid AND x.indisready FROM pg_index x "
            "JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = current_schema() AND t.relname = 'torrent_search' "
            "AND c.relname LIKE :prefix"
        ),
        {"prefix": _DATE_PREFIX.replace("_", r"\_") + "%"},
    )
    return {str(name): bool(valid) for name, valid in rows}


async def keep_rolling(
    engine: AsyncEngine,
    clock: Clock,
    stop: asyncio.Event,
    interval_seconds: float = ROLL_INTERVAL_SECONDS,
) -> None:
    """Run :func:`roll_date_tiers` every ``interval_seconds`` until ``stop`` is set. A failed
    round is logged; the next one retries. A build still running when ``stop`` is set is
    cancelled (it waits on every older transaction, and shutting down must not): the invalid
    index it leaves is made again by the next round."""
    while not stop.is_set():
        rolling = asyncio.create_task(roll_date_tiers(engine, clock.now()))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({rolling, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not rolling.done():
            rolling.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await rolling
            return
        if (failure := rolling.exception()) is not None:
            ROUNDS.labels("failed").inc()
            log.error("date_tiers_roll_failed", exc_info=failure)
        else:
            rolled = rolling.result()
            ROUNDS.labels("skipped" if rolled.skipped else "ok").inc()
            if rolled.created or rolled.dropped:
                log.info("date_tiers_rolled", created=rolled.created, dropped=rolled.dropped)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


def _year(bound: int | None) -> int:
    assert bound is not None
    return datetime.fromtimestamp(bound, UTC).year
