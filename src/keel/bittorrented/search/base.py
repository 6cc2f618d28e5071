"""What a search asks and answers, and the Protocol every engine implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from keel.bittorrented.search.query import Query

Sort = Literal["relevance", "seeders", "size", "date"]
Order = Literal["desc", "asc"]
SORTS: tuple[Sort, ...] = ("relevance", "seeders", "size", "date")
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Kind:
    """A content type, optionally narrowed by resolution: with ``other_resolutions`` false, only
    the listed ``resolutions`` (empty: any); with it true, any but the listed ones, unknown
    (NULL) included."""

    content_type: str
    resolutions: tuple[str, ...] = ()
    other_resolutions: bool = False

    def matches(self, content_type: str, resolution: str | None) -> bool:
        """In plain Python, what ``keel.bittorrented.search.sql.add_filters`` selects."""
        if content_type != self.content_type:
            return False
        if self.other_resolutions:
            return resolution is None or resolution not in self.resolutions
        return not self.resolutions or resolution in self.resolutions


@dataclass(frozen=True, slots=True)
class Filters:
    """Narrow the match set; every bound is inclusive and ``None`` means unbounded.

    ``kinds`` keeps a hit matching any one of them (Torznab categories); empty means no
    constraint. ``season``/``episode`` match the classified numbers exactly, so a season pack
    (episode unknown) never matches an episode. ``published_min_ts`` is Unix seconds.
    """

    content_types: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    size_min: int | None = None
    size_max: int | None = None
    kinds: tuple[Kind, ...] = ()
    season: int | None = None
    episode: int | None = None
    published_min_ts: int | None = None


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One page of a search. ``after`` is the keyset cursor of the previous page's last hit."""

    query: Query
    sort: Sort = "relevance"
    order: Order = "desc"
    filters: Filters = field(default_factory=Filters)
    limit: int = 50
    after: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    id: int
    info_hash: bytes
    name: str
    size: int
    seeders: int
    leechers: int
    published_ts: int
    content_type: str
    year: int | None
    resolution: str | None
    sort_value: int
    season: int | None = None
    episode: int | None = None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of hits over the full match set. ``total`` is exact unless ``total_is_estimate``."""

    hits: tuple[SearchHit, ...]
    total: int
    total_is_estimate: bool
    next_after: tuple[int, int] | None
    # Set when the query matched nothing and these are the hits of its respelling instead.
    corrected_query: str | None = None


class SearchEngine(Protocol):
    async def search(self, request: SearchRequest) -> SearchPage:
        """One page of hits in the requested order; raises SearchTimeout past the deadline."""
        ...
