"""Read a torrent's info dict (BEP 3, 47, 52) into ``Metainfo``, keyed by its v1 info hash.

Two ways in: a whole .torrent file (``parse_torrent``), or a bare info dict fetched from peers
with ut_metadata (BEP 9, ``metainfo_from_info_dict``). The info hash is the SHA-1 of the info
value's raw bytes, never of a re-encoding, so torrents with unsorted keys keep their real hash.

Decisions:
- v1 and hybrid torrents are read from their v1 part; BEP 47 pad files (``attr`` holding
  ``p``, or a path under ``.pad/``) are neither listed nor counted, but do count towards the
  piece count. Pure v2 torrents raise ``UnsupportedTorrent``: the index, like bitmagnet, is
  keyed by the v1 SHA-1, which they do not have.
- ``name.utf-8`` / ``path.utf-8`` win over ``name`` / ``path``; bytes that are not UTF-8 become
  U+FFFD instead of failing the torrent.
- A multi-file torrent's file paths are relative to its root folder (the name is not repeated);
  a single-file torrent lists one file whose path is the name. ``TorrentFile.index`` is the
  position in the info dict's file list, pad files included, so it is libtorrent's file index.
- Refused: no or blank name, a name or path component that is empty, ``.``, ``..``, or holds
  ``/`` or NUL, negative lengths, a total over 2**63-1 bytes, a piece list whose length does not
  match the files, and anything over the bencode limits (which also caps the file count).
"""

from __future__ import annotations

import hashlib

from keel.bittorrented.errors import InfoHashMismatch, MalformedTorrent, UnsupportedTorrent
from keel.bittorrented.torrent import bencode
from keel.bittorrented.torrent.values import INFO_HASH_BYTES, Metainfo, TorrentFile

# Sizes are stored in signed 64-bit columns (bitmagnet's bigint).
MAX_SIZE_BYTES = 2**63 - 1
DEFAULT_MAX_FILES = 1000
_PIECE_HASH_BYTES = 20
_PAD_DIR = ".pad"


def parse_torrent(data: bytes, *, max_files: int = DEFAULT_MAX_FILES) -> Metainfo:
    """Parse a .torrent file; at most ``max_files`` files are listed, all are counted.

    Raises ``MalformedTorrent`` for anything that is not a valid v1 or hybrid torrent
    (``UnsupportedTorrent`` for v2-only); never another exception.
    """
    _check_max_files(max_files)
    # Lenient on key order only: creators in the wild write unsorted dicts.
    document = bencode.decode_document(data, strict=False)
    info = document.value.get(b"info")
    raw_info = document.raw(b"info")
    if not isinstance(info, dict) or raw_info is None:
        raise MalformedTorrent("the torrent has no info dictionary")
    return _metainfo(info, _sha1(raw_info), max_files)


def announce_urls(data: bytes) -> list[str]:
    """The tracker URLs a .torrent names (``announce-list`` tiers in order, then ``announce``),
    without duplicates; undecodable or non-text entries are skipped. MalformedTorrent only when
    the bytes are not bencode at all."""
    document = bencode.decode_document(data, strict=False)
    urls: list[bytes] = []
    tiers = document.value.get(b"announce-list") if isinstance(document.value, dict) else None
    if isinstance(tiers, list):
        for tier in tiers:
            if isinstance(tier, list):
                urls += [u for u in tier if isinstance(u, bytes)]
    single = document.value.get(b"announce") if isinstance(document.value, dict) else None
    if isinstance(single, bytes):
        urls.append(single)
    decoded = (u.decode("utf-8", "replace").strip() for u in urls)
    return [u for u in dict.fromkeys(decoded) if u and "\ufffd" not in u]


def metainfo_from_info_dict(
    raw_info: bytes, *, expected_info_hash: bytes, max_files: int = DEFAULT_MAX_FILES
) -> Metainfo:
    """Parse an info dict received from peers (BEP 9) after checking it hashes as expected.

    ``expected_info_hash`` may be the v1 SHA-1 or, for a hybrid torrent, the truncated v2
    SHA-256 that the DHT also carries; the result is keyed by the v1 hash either way.
    Raises ``InfoHashMismatch``, or ``MalformedTorrent`` as ``parse_torrent`` does.
    """
    _check_max_files(max_files)
    info_hash = _sha1(raw_info)
    truncated_v2 = hashlib.sha256(raw_info).digest()[:INFO_HASH_BYTES]
    if expected_info_hash not in (info_hash, truncated_v2):
        raise InfoHashMismatch(
            f"the info dict hashes to {info_hash.hex()}, not {expected_info_hash.hex()}"
        )
    info = bencode.decode(raw_info, strict=False)
    if not isinstance(info, dict):
        raise MalformedTorrent("the info value is not a dictionary", offset=0)
    return _metainfo(info, info_hash, max_files)


def _sha1(raw: bytes) -> bytes:
    # BEP 3 defines the v1 info hash as SHA-1; it is an identifier here, not a security choice.
    return hashlib.sha1(raw, usedforsecurity=False).digest()


def _check_max_files(max_files: int) -> None:
    if max_files < 0:
        raise ValueError("max_files must be >= 0")


def _metainfo(info: dict[bytes, bencode.Value], info_hash: bytes, max_files: int) -> Metainfo:
    name = _name(info)
    has_length, has_files = b"length" in info, b"files" in info
    if not has_length and not has_files:
        if info.get(b"meta version") == 2 or b"file tree" in info:
            raise UnsupportedTorrent()
        raise MalformedTorrent("the info dictionary has neither 'length' nor 'files'")
    if has_length and has_files:
        raise MalformedTorrent("the info dictionary has both 'length' and 'files'")

    if has_length:
        size = _length(info[b"length"], "length")
        files: tuple[TorrentFile, ...] = (TorrentFile(index=0, path=name, size=size),)
        files_count, v1_total = 1, size
    else:
        files, files_count, size, v1_total = _files(info[b"files"], max_files)

    _check_pieces(info, v1_total)
    return Metainfo(
        info_hash=info_hash,
        name=name,
        size=size,
        files=files,
        files_count=files_count,
        # BEP 27: only the integer 1 marks a private torrent.
        private=info.get(b"private") == 1,
    )


def _name(info: dict[bytes, bencode.Value]) -> str:
    raw = info.get(b"name.utf-8")
    if not isinstance(raw, bytes) or not raw:
        raw = info.get(b"name")
    if not isinstance(raw, bytes):
        raise MalformedTorrent("the info dictionary has no name")
    name = _text(raw)
    if not name.strip():
        raise MalformedTorrent("the torrent name is blank")
    _check_component(name, "the torrent name")
    return name


def _files(raw: bencode.Value, max_files: int) -> tuple[tuple[TorrentFile, ...], int, int, int]:
    """(listed files, real file count, real size, v1 size with pad files) of a 'files' list."""
    if not isinstance(raw, list) or not raw:
        raise MalformedTorrent("'files' is not a non-empty list")
    listed: list[TorrentFile] = []
    count = size = v1_total = 0
    for index, entry in enumerate(raw):
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            raise MalformedTorrent(f"{where} is not a dictionary")
        length = _length(entry.get(b"length"), f"{where}.length")
        components = _path(entry, where)
        v1_total += length
        attr = entry.get(b"attr")
        if (isinstance(attr, bytes) and b"p" in attr) or components[0] == _PAD_DIR:
            continue
        count += 1
        size += length
        if len(listed) < max_files:
            listed.append(TorrentFile(index=index, path="/".join(components), size=length))
    if count == 0:
        raise MalformedTorrent("the torrent has only pad files")
    if v1_total > MAX_SIZE_BYTES:
        raise MalformedTorrent(f"the files total {v1_total} bytes, over 2**63-1")
    return tuple(listed), count, size, v1_total


def _path(entry: dict[bytes, bencode.Value], where: str) -> list[str]:
    raw = entry.get(b"path.utf-8")
    if not _is_path(raw):
        raw = entry.get(b"path")
    if not isinstance(raw, list) or not _is_path(raw):
        raise MalformedTorrent(f"{where}.path is not a non-empty list of byte strings")
    components = [_text(part) for part in raw if isinstance(part, bytes)]
    for component in components:
        _check_component(component, f"{where}.path")
    return components


def _is_path(raw: bencode.Value | None) -> bool:
    return isinstance(raw, list) and bool(raw) and all(isinstance(p, bytes) for p in raw)


def _check_component(component: str, where: str) -> None:
    # An index must not hand a client a path that climbs out of, or renames, its folder.
    if component in ("", ".", "..") or "/" in component or "\x00" in component:
        raise MalformedTorrent(f"{where} has an invalid component {component[:64]!r}")


def _length(raw: bencode.Value | None, where: str) -> int:
    if not isinstance(raw, int):
        raise MalformedTorrent(f"{where} is not an integer")
    if not 0 <= raw <= MAX_SIZE_BYTES:
        raise MalformedTorrent(f"{where} is {raw}, outside 0..2**63-1")
    return raw


def _check_pieces(info: dict[bytes, bencode.Value], v1_total: int) -> None:
    """Refuse a piece list that cannot describe the files: no client could load the torrent."""
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int) or piece_length <= 0:
        raise MalformedTorrent("'piece length' is not a positive integer")
    pieces = info.get(b"pieces")
    if not isinstance(pieces, bytes) or len(pieces) % _PIECE_HASH_BYTES:
        raise MalformedTorrent("'pieces' is not a string of 20-byte hashes")
    needed = -(-v1_total // piece_length)
    if len(pieces) // _PIECE_HASH_BYTES != needed:
        raise MalformedTorrent(
            f"'pieces' holds {len(pieces) // _PIECE_HASH_BYTES} hashes; the files need {needed}"
        )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
