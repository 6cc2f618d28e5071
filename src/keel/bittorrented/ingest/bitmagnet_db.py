"""Read an existing bitmagnet database, so its users switch without re-crawling.

Only bitmagnet's core tables are read (``torrents``, ``torrent_files``,
``torrents_torrent_sources``); classification is redone by ours. Rows stream in info-hash
order with a keyset, so a 10M-row source never sits in memory and a run can resume after the
last hash it reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.bittorrented.torrent.values import Metainfo, TorrentFile
from keel.core import db

_TORRENTS = text(
    "SELECT t.info_hash, t.name, t.size, t.private, t.files_count, t.created_at, "
    "max(s.seeders) AS seeders, max(s.leechers) AS leechers, "
    "min(s.published_at) AS published_at "
    "FROM torrents t LEFT JOIN torrents_torrent_sources s ON s.info_hash = t.info_hash "
    "WHERE t.info_hash > :after GROUP BY t.info_hash ORDER BY t.info_hash LIMIT :batch"
)
_FILES = text(
    'SELECT info_hash, "index", path, size FROM torrent_files '
    'WHERE info_hash = ANY(:hashes) AND "index" < :max_files ORDER BY info_hash, "index"'
)


async def read(
    url: str, *, batch: int = 1000, max_files: int = 1000, after: bytes = b""
) -> AsyncIterator[list[Metainfo]]:
    """Batches of torrents from the bitmagnet database at ``url`` (PostgreSQL)."""
    engine: AsyncEngine = db.create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            while True:
                rows = (await conn.execute(_TORRENTS, {"after": after, "batch": batch})).all()
                if not rows:
                    return
                hashes = [bytes(r.info_hash) for r in rows]
                files: dict[bytes, list[TorrentFile]] = defaultdict(list)
                for f in await conn.execute(_FILES, {"hashes": hashes, "max_files": max_files}):
                    files[bytes(f.info_hash)].append(
                        TorrentFile(f._mapping["index"], f.path, f.size)
                    )
                yield [_metainfo(r, files[bytes(r.info_hash)]) for r in rows]
                after = hashes[-1]
    finally:
        await engine.dispose()


def _metainfo(r: Row[Any], files: list[TorrentFile]) -> Metainfo:
    published: datetime | None = r.published_at or r.created_at
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return Metainfo(
        info_hash=bytes(r.info_hash),
        name=r.name,
        size=max(int(r.size), 0),
        files=tuple(files),
        files_count=max(r.files_count or 0, len(files), 1),
        private=bool(r.private),
        source="bitmagnet",
        published_at=published,
        seeders=r.seeders,
        leechers=r.leechers,
    )
