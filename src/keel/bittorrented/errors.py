"""Errors of bittorrented. Each has a stable ``code`` that clients may switch on.

BittorrentedError (KeelError)
├── MalformedTorrent         not valid bencode, or not a valid torrent info dict (400)
│   ├── UnsupportedTorrent   a valid torrent the index cannot key: v2-only, no v1 hash (400)
│   └── InfoHashMismatch     an info dict whose hash is not the one we asked for (400)
├── MalformedMagnet          not a magnet link with exactly one usable btih (400)
├── BadQuery                 a search query that cannot be parsed (400)
├── BadCursor                a pagination cursor we did not issue for this sort (400)
├── TorrentNotFound          no torrent with that info hash (404)
├── SavedSearchNotFound      no saved search with that id (404)
├── BannedTorrent            a torrent whose name is on the banned list (403)
├── MetadataTimeout          no peer sent a magnet's metadata in time (504)
├── SwarmUnavailable         our libtorrent session could not start, e.g. its port is taken (503)
└── SearchTimeout            the search ran past its statement timeout (503)

``MalformedTorrent`` carries ``offset``, the byte where decoding failed, when there is one.
Everything that parses untrusted torrent bytes raises only ``MalformedTorrent`` (or a subclass),
so a crawler can drop a bad peer's metadata with one ``except``.
"""

from __future__ import annotations

from keel.core import errors


class BittorrentedError(errors.KeelError):
    """A bittorrented error."""


class MalformedTorrent(BittorrentedError, errors.BadRequest):
    """The torrent data is not valid."""

    code = "malformed_torrent"

    def __init__(self, detail: str | None = None, *, offset: int | None = None) -> None:
        if offset is None:
            super().__init__(detail)
        else:
            super().__init__(f"{detail} at byte {offset}" if detail else None, offset=offset)
        self.offset = offset


class UnsupportedTorrent(MalformedTorrent):
    """The torrent is v2-only: the index keys torrents by their v1 (SHA-1) info hash."""

    code = "unsupported_torrent"


class InfoHashMismatch(MalformedTorrent):
    """The info dict does not hash to the expected info hash."""

    code = "info_hash_mismatch"


class MalformedMagnet(BittorrentedError, errors.BadRequest):
    """The magnet link is not valid."""

    code = "malformed_magnet"


class BadQuery(BittorrentedError, errors.BadRequest):
    """The search query cannot be parsed."""

    code = "bad_query"


class BadCursor(BittorrentedError, errors.BadRequest):
    """The pagination cursor is not valid for this search."""

    code = "bad_cursor"


class TorrentNotFound(BittorrentedError, errors.NotFound):
    """No torrent with that info hash is indexed."""

    code = "torrent_not_found"


class SearchTimeout(BittorrentedError, errors.Unavailable):
    """The search ran past its time limit; narrow the query."""

    code = "search_timeout"


class SwarmUnavailable(BittorrentedError, errors.Unavailable):
    """The peer network cannot be reached from here right now; retry later."""

    code = "swarm_unavailable"


class SavedSearchNotFound(BittorrentedError, errors.NotFound):
    """No saved search with that id."""

    code = "saved_search_not_found"


class BannedTorrent(BittorrentedError, errors.Forbidden):
    """This torrent is banned from the index."""

    code = "banned_torrent"


class MetadataTimeout(BittorrentedError):
    """No peer sent the torrent's metadata in time."""

    code = "metadata_timeout"
    status = 504
    title = "Gateway timeout"
