"""The value objects every part of bittorrented trades in: a torrent's metadata and a magnet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

INFO_HASH_BYTES = 20
MAX_PEERS = 2**31 - 1  # an INTEGER column on both engines


@dataclass(frozen=True, slots=True)
class TorrentFile:
    """One file of a torrent: its position in the info dict, '/'-joined path, size in bytes."""

    index: int
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Metainfo:
    """What an index keeps of a torrent's info dict, keyed by its v1 (SHA-1) info hash.

    ``files`` is capped by whoever built it; ``files_count`` is the true count, so
    ``files_over_cap`` says the list is partial. Pad files (BEP 47) are never listed or counted.
    """

    info_hash: bytes
    name: str
    size: int
    files: tuple[TorrentFile, ...]
    files_count: int
    private: bool = False
    source: str = "upload"
    published_at: datetime | None = None
    seeders: int | None = None
    leechers: int | None = None

    def __post_init__(self) -> None:
        if len(self.info_hash) != INFO_HASH_BYTES:
            raise ValueError("info_hash must be 20 bytes")
        if self.size < 0 or self.files_count < len(self.files):
            raise ValueError("size must be >= 0 and files_count >= len(files)")
        for count in (self.seeders, self.leechers):
            if count is not None and not 0 <= count <= MAX_PEERS:
                raise ValueError(f"seeders and leechers must be in [0, {MAX_PEERS}]")

    @property
    def files_over_cap(self) -> bool:
        return self.files_count > len(self.files)

    @property
    def info_hash_hex(self) -> str:
        return self.info_hash.hex()


@dataclass(frozen=True, slots=True)
class Magnet:
    """A parsed ``magnet:?xt=urn:btih:…`` link."""

    info_hash: bytes
    display_name: str | None = None
    trackers: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.info_hash) != INFO_HASH_BYTES:
            raise ValueError("info_hash must be 20 bytes")
