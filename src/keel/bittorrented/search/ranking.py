"""Sort orders, their keys and tiers (the cursors that page through them: ``cursors.py``).

Every order is one integer column plus ``id`` as the tie-breaker, in the same direction, so the
next page is a plain index range on both engines. Relevance is ``relevance_key`` ascending: since
every hit contains every query word, what tells hits apart under BM25-style scoring is length
normalisation (a name that is nothing but the query is the best hit), so fewer tokens rank
first and, among equals, more seeders. It is query-independent, hence indexable, and the same
on SQLite, PostgreSQL and the test reference (ADR 0005).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from keel.bittorrented.search.base import Order, Sort

MAX_SEEDERS = 2**31 - 1
_TOKEN_SHIFT = 2**32

SORT_COLUMNS: dict[Sort, str] = {
    "relevance": "relevance_key",
    "seeders": "seeders",
    "size": "size",
    "date": "published_ts",
}


def relevance_key(token_count: int, seeders: int) -> int:
    """Ascending order = best first: fewer tokens, then more seeders."""
    clamped = min(max(seeders, 0), MAX_SEEDERS)
    return token_count * _TOKEN_SHIFT + (MAX_SEEDERS - clamped)


def relevance_key_sql(key_sql: str, seeders_sql: str) -> str:
    """SQL computing :func:`relevance_key` anew from a row's current key and new seeders (stored
    seeders are already clamped): the token count sits in the high bits and is kept."""
    return f"(({key_sql} / {_TOKEN_SHIFT}) * {_TOKEN_SHIFT} + ({MAX_SEEDERS} - ({seeders_sql})))"


_MB = 2**20
_GB = 2**30


def _new_year(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp())


# Each sort's keys cut into ranges ("tiers"), each with a partial GIN of its own on PostgreSQL
# (search.tier_indexes names them). A common word's page is then built tier by tier in sort
# order: a tier with few matches is read off its GIN and sorted, a tier with many is walked, so
# neither a long walk past non-matching rows nor a sort of millions happens (ADR 0005). These
# bounds are fixed (migration 0006 made their indexes); the date tiers' roll with the clock.
TIER_BOUNDS: dict[Sort, tuple[int, ...]] = {
    "relevance": tuple(
        tokens * _TOKEN_SHIFT for tokens in (5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 18, 22)
    ),
    "seeders": (1, 2, 4, 8, 16, 64, 256, 1024),
    "size": (100 * _MB, 700 * _MB, 2 * _GB, 5 * _GB, 15 * _GB),
}

# The date tiers: two years each up to 2022, where names are few, then one per calendar year up
# to the current one, and above it one for names dated ahead of the clock. On 1 January the top
# tier's year becomes a tier of its own and a new top begins, so no tier ever spans more than a
# year of names however long Keel runs, and no schema change is due (ADR 0013): the indexes of
# next year's tiers are made ahead by search.tier_indexes while their range is still empty.
DATE_TIER_YEARS = (2016, 2018, 2020)
YEARLY_DATE_TIERS_FROM = 2022
# Migration 0006 made the tiers of 2026; the tiers of an earlier clock are those.
FIRST_ROLLING_YEAR = 2026


def date_tier_years(year: int) -> tuple[int, ...]:
    """The years whose 1 January (UTC) bounds a date tier while the clock is in ``year``."""
    last = max(year, FIRST_ROLLING_YEAR) + 1
    return (*DATE_TIER_YEARS, *range(YEARLY_DATE_TIERS_FROM, last + 1))


def tier_bounds(sort: Sort, now: datetime) -> tuple[int, ...]:
    """Where ``sort``'s tiers meet, ascending, at time ``now`` (only the date tiers move)."""
    if sort == "date":
        return tuple(_new_year(year) for year in date_tier_years(now.year))
    return TIER_BOUNDS[sort]


@dataclass(frozen=True, slots=True)
class Tier:
    """Keys ``low <= key < high``; None is unbounded."""

    index: int
    low: int | None
    high: int | None

    def holds(self, key: int) -> bool:
        return (self.low is None or key >= self.low) and (self.high is None or key < self.high)


def tiers(sort: Sort, order: Order, after: int | None = None, *, now: datetime) -> list[Tier]:
    """The sort's tiers at time ``now`` in walk order, from the one holding ``after`` (a keyset
    cursor's key). Any cut gives the same hits, so a cursor outlives a change of tiers."""
    edges = [None, *tier_bounds(sort, now), None]
    ordered = [Tier(i, edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
    if descending(sort, order):
        ordered.reverse()
    if after is not None:
        start = next(i for i, tier in enumerate(ordered) if tier.holds(after))
        ordered = ordered[start:]
    return ordered


def descending(sort: Sort, order: Order) -> bool:
    """Relevance always runs best-first; the others follow ``order``."""
    return sort != "relevance" and order == "desc"
