"""The outside view of a torrent: the JSON the API returns and the magnet link it advertises."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from keel.bittorrented.catalog.store import StoredTorrent
from keel.bittorrented.search.base import SearchHit
from keel.bittorrented.torrent import magnet


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hit(h: SearchHit) -> dict[str, Any]:
    return {
        "info_hash": h.info_hash.hex(),
        "name": h.name,
        "size": h.size,
        "seeders": h.seeders,
        "leechers": h.leechers,
        "published_at": iso(h.published_ts),
        "content_type": h.content_type,
        "year": h.year,
        "resolution": h.resolution,
        "magnet": magnet.build_magnet(h.info_hash, h.name),
    }


def torrent(t: StoredTorrent) -> dict[str, Any]:
    m = t.metainfo
    published = m.published_at or t.created_at
    return {
        "info_hash": m.info_hash.hex(),
        "name": m.name,
        "size": m.size,
        "private": m.private,
        "seeders": m.seeders or 0,
        "leechers": m.leechers or 0,
        "published_at": published.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files_status": t.files_status,
        "files_count": m.files_count,
        "files": [{"index": f.index, "path": f.path, "size": f.size} for f in m.files],
        "classification": {
            "content_type": t.content_type,
            "title": t.title,
            "year": t.year,
            "season": t.season,
            "episode": t.episode,
            "resolution": t.resolution,
            "video_codec": t.video_codec,
            "release_group": t.release_group,
        },
        "magnet": magnet.build_magnet(m.info_hash, m.name),
    }
