"""Sort orders and their keyset cursors.

Every order is one integer column plus ``id`` as the tie-breaker, in the same direction, so the
next page is a plain index range on both engines. Relevance is ``relevance_key`` ascending: since
every hit contains every query word, what tells hits apart under BM25-style scoring is length
normalisation (a name that is nothing but the query is the best hit), so fewer tokens rank
first and, among equals, more seeders. It is query-independent, hence indexable, and the same
on SQLite, PostgreSQL and the test reference (ADR 0005).
"""

from __future__ import annotations

import base64
import binascii
import json

from keel.bittorrented.errors import BadCursor
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


def descending(sort: Sort, order: Order) -> bool:
    """Relevance always runs best-first; the others follow ``order``."""
    return sort != "relevance" and order == "desc"


def encode_cursor(sort: Sort, order: Order, after: tuple[int, int]) -> str:
    raw = json.dumps([sort, order, after[0], after[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort, order: Order) -> tuple[int, int]:
    """The (sort value, id) a cursor points after; BadCursor if it is garbage or was made
    for another sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        c_sort, c_order, value, row_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BadCursor("cursor is not one this server issued") from exc
    if (c_sort, c_order) != (sort, order):
        raise BadCursor("cursor was issued for another sort order")
    if not all(type(v) is int for v in (value, row_id)):
        raise BadCursor("cursor is not one this server issued")
    return value, row_id
