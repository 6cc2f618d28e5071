"""bittorrented's tables. Only this product reads or writes them.

``torrents``, ``torrent_files``, ``torrent_sources`` and ``torrents_torrent_sources`` keep
bitmagnet's core shape (bytea ``info_hash`` keys, the same column names), so bitmagnet data
moves over without re-crawling (ADR 0007). ``torrent_search`` is ours: one derived row per
torrent holding its tokens, its sort keys and its classification, rebuildable from the rest.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from keel.core.ratelimit import rate_limit_table
from keel.core.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_id = BigInteger().with_variant(Integer, "sqlite")

torrents = Table(
    "torrents",
    metadata,
    Column("info_hash", LargeBinary(20), primary_key=True),
    Column("name", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("private", Boolean, nullable=False, default=False),
    # bitmagnet's values: single, multi, over_threshold, no_info.
    Column("files_status", String(16), nullable=False),
    Column("files_count", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

torrent_files = Table(
    "torrent_files",
    metadata,
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("index", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

torrent_sources = Table(
    "torrent_sources",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

torrents_torrent_sources = Table(
    "torrents_torrent_sources",
    metadata,
    Column("source", ForeignKey("torrent_sources.key", ondelete="CASCADE"), primary_key=True),
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seeders", Integer, nullable=True),
    Column("leechers", Integer, nullable=True),
    Column("published_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# The search document. ``tokens`` is keel.bittorrented.search.tokens.tokenize(name) joined by
# spaces; SQLite indexes it with FTS5 (torrent_search_fts, kept by triggers), PostgreSQL with a
# stored generated tsvector ``tsv`` and GIN (both created in the migration, not here). Sort keys
# are NOT NULL so keyset cursors never meet a NULL.
torrent_search = Table(
    "torrent_search",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("tokens", Text, nullable=False),
    # keel.bittorrented.search.ranking.relevance_key: fewer tokens first, then more seeders.
    Column("relevance_key", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("seeders", Integer, nullable=False, default=0),
    Column("leechers", Integer, nullable=False, default=0),
    Column("published_ts", BigInteger, nullable=False),
    Column("content_type", String(16), nullable=False, default="unknown"),
    Column("title", Text, nullable=True),
    Column("year", SmallInteger, nullable=True),
    Column("season", SmallInteger, nullable=True),
    Column("episode", SmallInteger, nullable=True),
    Column("resolution", String(16), nullable=True),
    Column("video_codec", String(32), nullable=True),
    Column("release_group", String(100), nullable=True),
)

# Keyset walks: each sort has an index ending in id, so "the next page" is an index range. On
# PostgreSQL migration 0005 rebuilds them to INCLUDE tsv and the filter columns, so a walk
# is index-only (tests/bittorrented/search/test_covering_walk.py).
Index("ix_torrent_search_relevance", torrent_search.c.relevance_key, torrent_search.c.id)
Index("ix_torrent_search_seeders", torrent_search.c.seeders, torrent_search.c.id)
Index("ix_torrent_search_size", torrent_search.c.size, torrent_search.c.id)
Index("ix_torrent_search_published", torrent_search.c.published_ts, torrent_search.c.id)

# bitmagnet's name and shape: the crawler's persisted Bloom filter of seen and banned hashes.
bloom_filters = Table(
    "bloom_filters",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("bytes", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# File-name search: one row per stored file, tokenised like names and indexed the same way
# (FTS5 torrent_file_search_fts on SQLite, generated tsv + GIN on PostgreSQL; migration 0002).
torrent_file_search = Table(
    "torrent_file_search",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("file_index", Integer, nullable=False),
    Column("tokens", Text, nullable=False),
    Index("ix_torrent_file_search_info_hash", "info_hash", "file_index", unique=True),
)

# Every distinct name token, for the fuzzy fallback ("did you mean"): a trigram index over
# this small table finds near-misses of a word that matches nothing.
search_terms = Table(
    "search_terms",
    metadata,
    Column("term", String(200), primary_key=True),
)

# The trackers a torrent came with (a magnet's ``tr`` list), so the swarm refresher knows whom
# to scrape. Written once the torrent is indexed; it goes when the torrent goes.
torrent_trackers = Table(
    "torrent_trackers",
    metadata,
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("url", String(512), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# The scrape schedule: when each torrent's swarm was last scraped. A torrent without a row was
# never scraped and goes first; then the oldest ``scraped_at`` (indexed for that walk).
torrent_scrapes = Table(
    "torrent_scrapes",
    metadata,
    Column(
        "info_hash",
        LargeBinary(20),
        ForeignKey("torrents.info_hash", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("scraped_at", UTCDateTime, nullable=False),
    Index("ix_torrent_scrapes_scraped_at", "scraped_at"),
)

# Saved searches: a query and its filters under a random id (the id is the feed's capability:
# anyone holding it may read the feed), served as an RSS feed of the newest matches. ``filters``
# is keel.bittorrented.feeds.saved.filters_json(...) of the user-facing filters.
saved_searches = Table(
    "saved_searches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("query", Text, nullable=False),
    Column("filters", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Request counters, used only when KEEL_RATE_LIMIT_STORE=database (several processes on one
# database without Redis); the default keeps them in memory or Redis.
rate_limits = rate_limit_table(metadata, "bittorrented_rate_limits")
