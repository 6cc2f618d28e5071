"""Saved searches: a query and its filters kept under a random id, read back as a feed.

The id is 128 random bits, so it cannot be guessed or enumerated; holding it is what lets an
RSS reader (which sends no API key) read the feed. Creating and deleting need the API key.
The query is checked when saved, so a feed never fails on a query it could not parse.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from keel.bittorrented import models
from keel.bittorrented.errors import SavedSearchNotFound
from keel.bittorrented.indexer import Indexer
from keel.bittorrented.search import query
from keel.bittorrented.search.base import Filters, SearchPage
from keel.core import db

FEED_LIMIT = 50
ID_BYTES = 16


@dataclass(frozen=True, slots=True)
class SavedSearch:
    id: str
    name: str
    query: str
    filters: Filters
    created_at: datetime


# Only the filters a client can set on a saved search are stored, by name, so a later change
# to Filters' other fields never reinterprets a stored row.
def filters_json(filters: Filters) -> dict[str, Any]:
    """The stored form of a saved search's filters."""
    return {
        "content_types": list(filters.content_types),
        "resolutions": list(filters.resolutions),
        "year_min": filters.year_min,
        "year_max": filters.year_max,
        "size_min": filters.size_min,
        "size_max": filters.size_max,
    }


def filters_from_json(stored: dict[str, Any]) -> Filters:
    return Filters(
        content_types=tuple(stored.get("content_types", ())),
        resolutions=tuple(stored.get("resolutions", ())),
        year_min=stored.get("year_min"),
        year_max=stored.get("year_max"),
        size_min=stored.get("size_min"),
        size_max=stored.get("size_max"),
    )


async def create(indexer: Indexer, *, name: str, text: str, filters: Filters) -> SavedSearch:
    """Save a search; BadQuery if ``text`` is not a valid query."""
    query.parse(text)
    saved = SavedSearch(
        id=secrets.token_urlsafe(ID_BYTES),
        name=name,
        query=text,
        filters=filters,
        created_at=indexer.clock.now(),
    )
    async with db.writing(indexer.engine) as conn:
        await conn.execute(
            insert(models.saved_searches).values(
                id=saved.id,
                name=saved.name,
                query=saved.query,
                filters=filters_json(saved.filters),
                created_at=saved.created_at,
            )
        )
    return saved


async def get(indexer: Indexer, search_id: str) -> SavedSearch:
    """One saved search; SavedSearchNotFound."""
    table = models.saved_searches
    async with db.reading(indexer.engine) as conn:
        row = (await conn.execute(select(table).where(table.c.id == search_id))).first()
    if row is None:
        raise SavedSearchNotFound()
    return SavedSearch(
        id=row.id,
        name=row.name,
        query=row.query,
        filters=filters_from_json(row.filters),
        created_at=row.created_at,
    )


async def remove(indexer: Indexer, search_id: str) -> None:
    """Delete a saved search; SavedSearchNotFound."""
    table = models.saved_searches
    async with db.writing(indexer.engine) as conn:
        result = await conn.execute(delete(table).where(table.c.id == search_id))
    if result.rowcount == 0:
        raise SavedSearchNotFound()


async def newest(indexer: Indexer, saved: SavedSearch) -> SearchPage:
    """The feed's content: the :data:`FEED_LIMIT` most recently published matches."""
    return await indexer.search(
        saved.query, sort="date", order="desc", filters=saved.filters, limit=FEED_LIMIT
    )
